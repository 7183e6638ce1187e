"""detect-secrets over what an image's own build steps put in it: every file of its layers above the base image,
and its configuration (Env, Labels, Cmd, history), as the repository's `make lint` scans the repository.

A key a Dockerfile edit bakes in (a COPY of a .env, an ENV or ARG, a RUN that writes a credentials file) is in
one of those layers or in the configuration. The base image's layers are Debian's and Python's own files, and
files of installed Python packages (site-packages, dist-packages) come from their wheels: neither is scanned,
which keeps the scan to seconds and free of the false alarms of packages' own test data.

    findings = scan_image("mlops-basics/cola-api:test", base="python:3.11.15-slim-bookworm", engine="podman")
"""

from __future__ import annotations

import json
import re
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from detect_secrets.core import scan
from detect_secrets.settings import default_settings

from helpers.container_engine import engine_command, inspect_image

# Installed packages' files: from their wheels, not from the course's build steps.
PACKAGE_FOLDERS = {"site-packages", "dist-packages", "__pycache__"}
# A SHA-256 digest under a key that says so (model_config.json's source_checkpoint_sha256) is not a secret.
LABELLED_DIGEST = re.compile(r'"\w*sha256"\s*:\s*"[0-9a-f]{64}"')


def own_layers(image: str, base: str, engine: str, archive: Path) -> list[tarfile.TarFile]:
    """The layer tars of `image` above those of `base`, oldest first, from `ENGINE save` into `archive`."""
    engine_command(engine, "save", "--output", str(archive), image, timeout_s=600)
    outer = tarfile.open(archive)
    manifest = json.load(outer.extractfile("manifest.json"))[0]
    base_layers = inspect_image(base, engine)["inspect"]["RootFS"]["Layers"]
    layers = manifest["Layers"]
    if len(base_layers) >= len(layers):
        raise AssertionError(f"{image} has no layer above {base}'s {len(base_layers)}: is {base} its base?")
    return [tarfile.open(fileobj=outer.extractfile(name)) for name in layers[len(base_layers) :]]


def is_package_file(name: str) -> bool:
    return bool(PACKAGE_FOLDERS.intersection(PurePosixPath(name).parts))


def scan_image(image: str, base: str, engine: str) -> list[str]:
    """`path:line: type` for every potential secret in `image`'s own layers and configuration (never the value)."""
    with tempfile.TemporaryDirectory(prefix="image-secrets-") as tmp:
        root = Path(tmp) / "files"
        for layer in own_layers(image, base, engine, Path(tmp) / "image.tar"):
            for member in layer.getmembers():
                if member.isfile() and not is_package_file(member.name) and ".wh." not in member.name:
                    target = root / member.name.lstrip("/")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(layer.extractfile(member).read())  # a later layer's version wins
        config = root / "image-configuration.json"
        config.parent.mkdir(parents=True, exist_ok=True)
        details = inspect_image(image, engine)
        config.write_text(json.dumps({k: details.get(k) for k in ("config", "history")}, indent=1))
        findings = []
        with default_settings():
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                relative = path.relative_to(root).as_posix()
                for secret in scan.scan_file(str(path)):
                    line = path.read_text(errors="replace").splitlines()[secret.line_number - 1]
                    if not (secret.type == "Hex High Entropy String" and LABELLED_DIGEST.search(line)):
                        findings.append(f"{relative}:{secret.line_number}: {secret.type}")
        return findings
