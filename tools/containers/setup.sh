#!/usr/bin/env bash
# Set up a local container engine for the course's Dockerfiles on a machine with no
# Docker daemon and no Docker Hub: podman (root, runc, cgroupfs) plus a locally built
# stand-in for the official base image docker.io/library/python:3.11.15-slim-bookworm.
#
#   bash tools/containers/setup.sh && source .containers/env
#
# Idempotent: a second run only checks and prints what is already there (a few seconds).
# State lives in $REPO/.containers/ (configs, image storage, env); the prepared root file
# system of the base image is cached in ${XDG_CACHE_HOME:-$HOME/.cache}/mlops-basics/ so
# that a fresh clone only has to import it. Learners with Docker don't need any of this.
# The Debian mirror is the one apt uses here; DEBIAN_MIRROR / DEBIAN_SECURITY_MIRROR
# override it.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="$REPO/.containers"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/mlops-basics"

# Bump RECIPE when the base image recipe below changes: the cached root file system and
# any image built from an older recipe are then rebuilt.
RECIPE=1
BASE_IMAGE="docker.io/library/python:3.11.15-slim-bookworm"
BASE_ALIASES=("docker.io/library/python:3.11-slim" "docker.io/library/python:3.11-slim-bookworm")
ROOTFS_TAR="$CACHE/python-3.11-slim-bookworm-standin-r$RECIPE.tar"
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

APT_REQUIRED=(podman buildah skopeo runc debootstrap fuse-overlayfs slirp4netns uidmap)
APT_OPTIONAL=(docker-registry) # the registry week 7 pushes to; installed, not started (the tests start their own)

log() { printf '== containers: %s\n' "$*"; }
die() { printf '== containers: ERROR: %s\n' "$*" >&2; exit 1; }

[[ "$(id -u)" == 0 ]] || die "run as root (podman here runs rootful with runc and cgroupfs)"
export DEBIAN_FRONTEND=noninteractive

# --- 1. packages ----------------------------------------------------------------------
missing_packages() {
  local package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
      || printf '%s\n' "$package"
  done
}

mapfile -t missing < <(missing_packages "${APT_REQUIRED[@]}" "${APT_OPTIONAL[@]}")
if ((${#missing[@]})); then
  log "apt-get install ${missing[*]}"
  apt-get update -qq
  mapfile -t missing_required < <(missing_packages "${APT_REQUIRED[@]}")
  if ((${#missing_required[@]})); then
    apt-get install -y -qq --no-install-recommends "${missing_required[@]}" >/dev/null
  fi
  mapfile -t missing_optional < <(missing_packages "${APT_OPTIONAL[@]}")
  if ((${#missing_optional[@]})); then
    # policy-rc.d 101 keeps the package's init script from starting the service.
    policy_rc=/usr/sbin/policy-rc.d
    policy_rc_added=0
    if [[ ! -e "$policy_rc" ]]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy_rc" && chmod +x "$policy_rc" && policy_rc_added=1
    fi
    apt-get install -y -qq --no-install-recommends "${missing_optional[@]}" >/dev/null \
      || log "optional packages ${missing_optional[*]} failed to install (only a later week needs them)"
    if ((policy_rc_added)); then rm -f "$policy_rc"; fi
  fi
else
  log "packages present: ${APT_REQUIRED[*]} ${APT_OPTIONAL[*]}"
fi

# --- 2. engine configuration ----------------------------------------------------------
# Run-time state (runroot, libpod tmp_dir) must not survive a reboot, or podman believes
# dead containers are still running: keep it on a tmpfs, one folder per state folder.
mkdir -p "$STATE" "$CACHE"
state_key="$(printf '%s' "$STATE" | cksum | cut -d' ' -f1)"
if [[ "$(findmnt -n -o FSTYPE -T /run 2>/dev/null || true)" == tmpfs ]]; then
  RUNTIME_BASE="/run/mlops-basics-containers/$state_key"
else
  RUNTIME_BASE="/dev/shm/mlops-basics-containers/$state_key"
fi

# write_if_changed FILE: stdin becomes FILE's content; says whether anything changed.
write_if_changed() {
  local file="$1" tmp
  tmp="$(mktemp "$file.XXXXXX")"
  cat >"$tmp"
  if [[ -f "$file" ]] && cmp -s "$tmp" "$file"; then
    rm -f "$tmp"
  else
    mv -f "$tmp" "$file" && chmod 644 "$file"
    log "wrote ${file#"$REPO"/}"
  fi
}

write_if_changed "$STATE/containers.conf" <<EOF
# Written by tools/containers/setup.sh; selected with CONTAINERS_CONF.
[containers]
# podman's default ulimits need CAP_SYS_RESOURCE, which root lacks in this sandbox.
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
# crun fails on this machine's hybrid cgroups; runc with cgroupfs works.
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$RUNTIME_BASE/libpod"
EOF

write_if_changed "$STATE/storage.conf" <<EOF
# Written by tools/containers/setup.sh; selected with CONTAINERS_STORAGE_CONF.
[storage]
driver = "overlay"
graphroot = "$STATE/storage"
runroot = "$RUNTIME_BASE/run"
EOF

export CONTAINERS_CONF="$STATE/containers.conf"
export CONTAINERS_STORAGE_CONF="$STATE/storage.conf"

# --- 3. pip inside builds ---------------------------------------------------------------
# A Dockerfile's `RUN pip install ...` must resolve packages the way pip does on this
# machine: same CA bundle (HTTPS goes through an intercepting proxy), same extra indexes
# and wheel folders. pip.conf is generated from `pip config list` here; local folders it
# names are mounted read-only at the same paths. Mounts used by `podman build -v` exist
# only while a RUN step runs: their contents never reach an image layer (podman 4.3 does
# leave the empty mount points, e.g. a 0-byte /etc/pip.conf, in the first RUN's layer).
mapfile -t build_mounts < <(
  STATE="$STATE" CA_BUNDLE="$CA_BUNDLE" python3 - <<'PY'
import os
import subprocess
from pathlib import Path
from urllib.parse import urlparse

state = Path(os.environ["STATE"])
ca_bundle = Path(os.environ["CA_BUNDLE"])
try:
    listing = subprocess.run(
        ["python3", "-m", "pip", "config", "list"],
        capture_output=True, text=True, timeout=60, check=False,
    ).stdout
except (OSError, subprocess.TimeoutExpired):
    listing = ""

settings: dict[str, str] = {}
for line in listing.splitlines():  # e.g. global.extra-index-url='file:///opt/pypi/simple'
    key, sep, value = line.partition("=")
    if sep:
        settings[key.split(".", 1)[-1]] = value.strip().strip("'\"")

mounts: list[str] = []

def local_path(location: str) -> str | None:
    """The folder behind a file:// URL or a plain path, if it exists here."""
    path = urlparse(location).path if location.startswith("file:") else location
    return path if path.startswith("/") and Path(path).exists() else None

def keep(locations: str) -> list[str]:
    """Index URLs / find-links reachable from inside a build (local ones get mounted)."""
    kept = []
    for location in locations.split():
        if location.startswith(("http://", "https://")):
            kept.append(location)
        elif (path := local_path(location)) is not None:
            root = str(Path(path).parent) if path.rstrip("/").endswith("/simple") else path
            mounts.append(root)
            kept.append(location)
    return kept

lines = ["# Written by tools/containers/setup.sh; mounted at /etc/pip.conf during builds.", "[global]"]
if ca_bundle.is_file():
    lines.append(f"cert = {ca_bundle}")
if settings.get("index-url"):
    lines += [f"index-url = {url}" for url in keep(settings["index-url"])[:1]]
for key in ("extra-index-url", "find-links"):
    if settings.get(key) and (kept := keep(settings[key])):
        lines.append(f"{key} = " + " ".join(kept))
if settings.get("trusted-host"):
    lines.append(f"trusted-host = {settings['trusted-host']}")
lines.append(f"default-timeout = {settings.get('default-timeout', '180')}")
lines.append("disable-pip-version-check = true")
(state / "pip.conf.new").write_text("\n".join(lines) + "\n")
for path in dict.fromkeys(mounts):
    print(path)
PY
)
write_if_changed "$STATE/pip.conf" <"$STATE/pip.conf.new"
rm -f "$STATE/pip.conf.new"

build_args=(--format docker --volume "$STATE/pip.conf:/etc/pip.conf:ro")
[[ -f "$CA_BUNDLE" ]] && build_args+=(--volume "$CA_BUNDLE:$CA_BUNDLE:ro")
for path in "${build_mounts[@]}"; do
  build_args+=(--volume "$path:$path:ro")
done
# Nothing needed at run time: the default bridge network publishes ports (-p) like Docker.
run_args=()

# --- 4. the stand-in base image ---------------------------------------------------------
image_recipe() { podman image inspect --format '{{ index .Config.Labels "org.mlops-basics.standin-recipe" }}' "$1" 2>/dev/null || true; }

debian_mirror() {
  local kind="$1" url # kind: debian | debian-security
  url="$(grep -rhoE "https?://[^ ]+/$kind/?( |$)" /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | head -n1 | tr -d ' ' || true)"
  printf '%s\n' "${url:-http://deb.debian.org/$kind}"
}

build_rootfs() {
  local work root mirror security
  mirror="${DEBIAN_MIRROR:-$(debian_mirror debian)}"
  security="${DEBIAN_SECURITY_MIRROR:-$(debian_mirror debian-security)}"
  work="$(mktemp -d "$CACHE/rootfs.XXXXXX")"
  root="$work/root"
  # shellcheck disable=SC2064 # expand now: $root is local
  trap "umount '$root/proc' 2>/dev/null || true; rm -rf '$work'" EXIT
  log "debootstrap --variant=minbase bookworm from $mirror (about a minute)"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }

  # Like debian:bookworm-slim: no docs, man pages or translations, now or later.
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$root"/usr/share/{man,groff,info,lintian,linda,locale}/*
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

  log "installing python3 python3-venv python3-pip ca-certificates into the root file system"
  mount -t proc proc "$root/proc"
  # shellcheck disable=SC2016 # the script's $variables expand inside the chroot
  chroot "$root" /bin/sh -euc '
    export DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
    apt-get update -qq
    apt-get upgrade -y -qq
    apt-get install -y -qq --no-install-recommends python3 python3-venv python3-pip ca-certificates
    apt-get clean
    rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/lib/dpkg/*-old /var/log/*.log /var/log/apt/*
    # Behave like the official image: python/pip on PATH, pip installs allowed as root.
    rm -f /usr/lib/python3*/EXTERNALLY-MANAGED
    for name in python:python3 pip:pip3 pip3:pip3 pydoc:pydoc3 python3-config:python3-config; do
      target="/usr/bin/${name#*:}"
      [ -e "$target" ] && ln -sf "$target" "/usr/local/bin/${name%%:*}"
    done
    python3 -c "import platform; print(platform.python_version())" >/tmp/python-version
  ' >"$work/chroot.log" 2>&1 || { tail -n 30 "$work/chroot.log" >&2; die "installing python into the root file system failed"; }
  umount "$root/proc"
  mv "$root/tmp/python-version" "$work/python-version"
  : >"$root/etc/resolv.conf"
  echo localhost >"$root/etc/hostname"
  find "$root/tmp" "$root/var/tmp" -mindepth 1 -delete
  tar --numeric-owner --xattrs -C "$root" -cf "$work/rootfs.tar" .
  printf 'PYTHON_VERSION=%s\n' "$(cat "$work/python-version")" >"$ROOTFS_TAR.info"
  mv -f "$work/rootfs.tar" "$ROOTFS_TAR"
  rm -rf "$work"
  trap - EXIT
}

if [[ "$(image_recipe "$BASE_IMAGE")" == "$RECIPE" ]]; then
  log "base image present: $BASE_IMAGE (local stand-in, recipe $RECIPE)"
else
  if [[ -f "$ROOTFS_TAR" && -f "$ROOTFS_TAR.info" ]]; then
    log "using cached root file system $ROOTFS_TAR"
  else
    build_rootfs
  fi
  python_version="$(sed -n 's/^PYTHON_VERSION=//p' "$ROOTFS_TAR.info")"
  log "podman import -> $BASE_IMAGE (Debian python3 $python_version)"
  podman import --quiet \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "ENV PYTHON_VERSION=$python_version" \
    --change 'CMD ["python3"]' \
    --change "LABEL org.mlops-basics.standin-recipe=$RECIPE" \
    --change "LABEL org.opencontainers.image.description=Local stand-in for $BASE_IMAGE: Debian bookworm minbase with Debian's python3 $python_version (built by tools/containers/setup.sh)" \
    --message "local stand-in for $BASE_IMAGE" \
    "$ROOTFS_TAR" "$BASE_IMAGE" >/dev/null
  for alias in "${BASE_ALIASES[@]}"; do
    podman tag "$BASE_IMAGE" "$alias"
  done
fi
for alias in "${BASE_ALIASES[@]}"; do
  podman image exists "$alias" || podman tag "$BASE_IMAGE" "$alias"
done

# --- 5. the env file ----------------------------------------------------------------------
# shell_join ARG...: one string that both `shlex.split` and `eval` split back into ARGs;
# words are quoted only where needed, so plain `podman build $CONTAINER_BUILD_ARGS` works
# too as long as no path has a space in it.
shell_join() {
  local arg out=()
  for arg in "$@"; do
    if [[ "$arg" =~ ^[A-Za-z0-9_./:=,@+-]+$ ]]; then out+=("$arg"); else out+=("$(printf '%q' "$arg")"); fi
  done
  printf '%s' "${out[*]}"
}
# single_quoted STRING: STRING as one single-quoted shell word.
single_quoted() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

write_if_changed "$STATE/env" <<EOF
# Written by tools/containers/setup.sh. Use: source .containers/env
export CONTAINERS_CONF=$(single_quoted "$CONTAINERS_CONF")
export CONTAINERS_STORAGE_CONF=$(single_quoted "$CONTAINERS_STORAGE_CONF")
export CONTAINER_ENGINE=podman
# podman build keeps HEALTHCHECK (and other Docker-only instructions) only in docker format.
export BUILDAH_FORMAT=docker
# Extra flags for \`podman build\`: Docker format (keeps HEALTHCHECK), and the CA bundle,
# pip.conf and local package folders mounted read-only for RUN steps (contents never in a layer).
export CONTAINER_BUILD_ARGS=$(single_quoted "$(shell_join "${build_args[@]}")")
# Extra flags for \`podman run\` (none needed: -p 127.0.0.1::PORT works as with Docker).
export CONTAINER_RUN_ARGS=$(single_quoted "$(shell_join "${run_args[@]}")")
EOF

log "ready: source .containers/env, then: podman build \$CONTAINER_BUILD_ARGS -t NAME .   (podman $(podman version --format '{{.Client.Version}}'))"
