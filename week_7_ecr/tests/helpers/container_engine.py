"""Build and run the week's images from tests, with Docker or podman.

The tests use whichever container engine this machine has:

* Docker, when ``docker info`` answers (a learner's laptop, most CI services);
* podman, when Docker is not running and podman works. On the course's own machines
  there is no Docker daemon: ``bash tools/containers/setup.sh`` installs podman, builds a
  local stand-in for the ``python:3.11-slim`` base image and writes ``.containers/env``
  (which this module reads by itself when nothing has been sourced).

Set ``CONTAINER_ENGINE=docker`` or ``CONTAINER_ENGINE=podman`` to choose explicitly. Extra
flags come from the environment, split like a shell would: ``CONTAINER_BUILD_ARGS`` for
``build`` and ``CONTAINER_RUN_ARGS`` for ``run``.

Only the standard library is used, so the module works unchanged wherever pytest runs.

Typical use in a test::

    engine, why = find_engine()
    if engine is None:
        pytest.skip(why)
    build(WEEK_DIR, "mlops-week5:test")
    with running_container("mlops-week5:test", port=8000, env={"LOG_LEVEL": "info"}) as app:
        response = urllib.request.urlopen(app.url + "/health")
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shlex
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[3]
ENV_FILE = REPO_ROOT / ".containers" / "env"
"""Written by ``tools/containers/setup.sh``: the podman configuration of this repo."""

ENGINES = ("docker", "podman")
TEST_LABEL = "org.mlops-basics.test=1"
"""Label put on every container started here, so leftovers can be found and removed."""

NO_ENGINE = "no container engine: start Docker, or run `bash tools/containers/setup.sh` and `source .containers/env`"


class ContainerError(RuntimeError):
    """A container engine command failed; the message carries the command's output."""


@dataclass(frozen=True)
class RunningContainer:
    """A container started by :func:`running_container`."""

    cid: str
    """Full container id."""
    engine: str
    """``"docker"`` or ``"podman"``."""
    port: int
    """The port on 127.0.0.1 that the container's port is published on."""

    @property
    def url(self) -> str:
        """Base URL of the published port, e.g. ``http://127.0.0.1:49153``."""
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        """Everything the container has written to stdout and stderr so far."""
        return logs(self.cid, engine=self.engine)


# --- finding an engine -------------------------------------------------------------------


def load_env_file(path: Path = ENV_FILE) -> bool:
    """Apply the ``export NAME=value`` lines of ``.containers/env`` to ``os.environ``.

    Variables already set in the environment win. Returns whether the file existed.
    """
    if not path.is_file():
        return False
    for line in path.read_text().splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, value = words[1].split("=", 1)
            os.environ.setdefault(name, value)
    return True


def _probe(engine: str, timeout_s: float) -> tuple[bool, str]:
    """Run ``ENGINE info``: (whether it worked, a short reason when it did not)."""
    if shutil.which(engine) is None:
        return False, f"{engine} is not installed"
    try:
        result = subprocess.run(
            [engine, "info"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, f"`{engine} info` did not answer within {timeout_s:g} s"
    if result.returncode != 0:
        last_line = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        return False, f"`{engine} info` failed: {last_line}"
    return True, ""


def find_engine() -> tuple[str | None, str]:
    """Pick the container engine to use: ``(engine or None, why)``.

    Order: an explicit ``CONTAINER_ENGINE``; else Docker when ``docker info`` answers
    within 10 s; else podman when ``podman info`` works (with the repo's
    ``.containers/env`` applied if no ``CONTAINERS_CONF`` is set). When nothing works
    the reason says what to install or run.
    """
    requested = os.environ.get("CONTAINER_ENGINE", "").strip().lower()
    if requested and requested not in ENGINES:
        return None, f"CONTAINER_ENGINE={requested!r} is not one of {', '.join(ENGINES)}"

    docker_problem = ""
    if requested in ("", "docker"):
        ok, docker_problem = _probe("docker", timeout_s=10)
        if ok:
            return "docker", "`docker info` answers: using Docker"
        if requested == "docker":
            return None, f"CONTAINER_ENGINE=docker but {docker_problem}; {NO_ENGINE}"

    if shutil.which("podman") is None:
        return None, f"{NO_ENGINE} ({docker_problem or 'podman is not installed'})"
    loaded = "CONTAINERS_CONF" not in os.environ and load_env_file()
    ok, podman_problem = _probe("podman", timeout_s=30)
    if not ok:
        problems = "; ".join(filter(None, [docker_problem, podman_problem]))
        return None, f"{NO_ENGINE} ({problems})"
    conf = os.environ.get("CONTAINERS_CONF", "podman's defaults")
    source = f" (read {ENV_FILE})" if loaded else ""
    why = "CONTAINER_ENGINE=podman" if requested == "podman" else docker_problem
    return "podman", f"using podman with CONTAINERS_CONF={conf}{source}: {why}"


@functools.cache
def default_engine() -> str:
    """The engine :func:`find_engine` picks, found once per process.

    Raises :class:`ContainerError` with the reason when there is none.
    """
    engine, why = find_engine()
    if engine is None:
        raise ContainerError(why)
    return engine


# --- running engine commands ---------------------------------------------------------------


def _extra_args(variable: str) -> list[str]:
    """Extra engine flags from an environment variable, split like a shell would."""
    return shlex.split(os.environ.get(variable, ""))


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _engine_command(
    engine: str | None,
    *args: str,
    timeout_s: float = 120,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``ENGINE ARGS...``, capturing output; raise :class:`ContainerError` on failure."""
    command = [engine or default_engine(), *args]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as error:
        raise ContainerError(f"`{shlex.join(command)}` timed out after {timeout_s:g} s") from error
    if check and result.returncode != 0:
        raise ContainerError(
            f"`{shlex.join(command)}` failed with exit code {result.returncode}:\n"
            f"{_tail(result.stdout + result.stderr)}"
        )
    return result


# --- images ---------------------------------------------------------------------------------


def build(
    context: Path,
    tag: str,
    dockerfile: str = "Dockerfile",
    engine: str | None = None,
    *,
    build_args: Mapping[str, str] | None = None,
    stream: bool = False,
    timeout_s: float = 1800,
) -> None:
    """Build the image ``tag`` from ``context / dockerfile``.

    ``CONTAINER_BUILD_ARGS`` is added to the command line. With podman the image is
    written in Docker format, which keeps ``HEALTHCHECK`` (the OCI format drops it).
    With ``stream=True`` the build output is printed while it runs (see it with
    ``pytest -s``); on failure the error carries the last lines of the build log.
    """
    engine = engine or default_engine()
    context = Path(context)
    command = [engine, "build", *_extra_args("CONTAINER_BUILD_ARGS")]
    if engine == "podman" and not any(arg.startswith("--format") for arg in command):
        command += ["--format", "docker"]
    for name, value in (build_args or {}).items():
        command += ["--build-arg", f"{name}={value}"]
    command += ["-f", str(context / dockerfile), "-t", tag, str(context)]

    lines: list[str] = []
    timed_out = threading.Event()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:

        def kill() -> None:
            timed_out.set()
            process.kill()

        timer = threading.Timer(timeout_s, kill)
        timer.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                if stream:
                    print(line, end="", flush=True)
            returncode = process.wait()
        finally:
            timer.cancel()
    if timed_out.is_set():
        raise ContainerError(f"building {tag} timed out after {timeout_s:g} s; last output:\n{_tail(''.join(lines))}")
    if returncode != 0:
        raise ContainerError(
            f"building {tag} failed (exit code {returncode}): `{shlex.join(command)}`\n"
            f"--- last lines of the build log ---\n{_tail(''.join(lines))}"
        )


def inspect_image(tag: str, engine: str | None = None) -> dict[str, Any]:
    """The image's configuration and history, for checks such as secret scanning.

    Returns ``{"config": {...}, "history": [...], "inspect": {...}}``: ``config`` is the
    image config (``Env``, ``Cmd``, ``User``, ``Labels``, ``ExposedPorts``,
    ``Healthcheck``...), ``history`` one entry per build step, newest first, each
    ``{"created_by": str, "comment": str, "size": int | str}`` (``created_by`` shows the
    instruction, including build-arg values used by ``RUN``), ``inspect`` the engine's
    full ``image inspect`` object.
    """
    details = json.loads(_engine_command(engine, "image", "inspect", tag).stdout)[0]
    output = _engine_command(engine, "history", "--no-trunc", "--format", "{{json .}}", tag).stdout
    history: list[dict[str, Any]] = []
    for line in output.splitlines():
        if not line.strip():
            continue
        parsed = json.loads(line)  # Docker: one object a line; podman: one list
        for step in parsed if isinstance(parsed, list) else [parsed]:
            history.append(
                {
                    "created_by": step.get("CreatedBy", step.get("created_by", "")),
                    "comment": step.get("Comment", step.get("comment", "")),
                    "size": step.get("Size", step.get("size", 0)),
                }
            )
    config = dict(details.get("Config") or {})
    if "Healthcheck" not in config and details.get("Healthcheck"):
        config["Healthcheck"] = details["Healthcheck"]  # podman reports it beside Config
    return {"config": config, "history": history, "inspect": details}


def image_size_bytes(tag: str, engine: str | None = None) -> int:
    """Uncompressed size of the image, all layers included, in bytes."""
    details = json.loads(_engine_command(engine, "image", "inspect", tag).stdout)[0]
    return int(details["Size"])


def remove_image(tag: str, engine: str | None = None) -> None:
    """Remove the image ``tag`` if it exists."""
    _engine_command(engine, "image", "rm", "-f", tag, check=False)


# --- containers -----------------------------------------------------------------------------


def run_detached(
    tag: str,
    *,
    env: Mapping[str, str] | None = None,
    port: int,
    extra_args: Sequence[str] = (),
    engine: str | None = None,
) -> str:
    """Start ``tag`` in the background and return the container id.

    The container's ``port`` is published on a free port of 127.0.0.1 only; ask
    :func:`host_port` which one. ``CONTAINER_RUN_ARGS`` is added to the command line.
    The container is not started with ``--rm``, so its logs stay readable after it
    exits: call :func:`stop` (or use :func:`running_container`) to remove it.
    """
    command = ["run", "--detach", "--label", TEST_LABEL, "--publish", f"127.0.0.1::{port}"]
    for name, value in (env or {}).items():
        command += ["--env", f"{name}={value}"]
    command += [*_extra_args("CONTAINER_RUN_ARGS"), *extra_args, tag]
    result = _engine_command(engine, *command, timeout_s=300)
    return result.stdout.strip().splitlines()[-1]


def host_port(cid: str, port: int, engine: str | None = None) -> int:
    """The port of 127.0.0.1 that the container's ``port`` is published on."""
    output = _engine_command(engine, "port", cid, f"{port}/tcp").stdout
    for line in output.splitlines():  # e.g. "127.0.0.1:49153"
        host, _, published = line.strip().rpartition(":")
        if host == "127.0.0.1" and published.isdigit():
            return int(published)
    raise ContainerError(f"container {cid[:12]} does not publish port {port}: {output!r}")


def is_running(cid: str, engine: str | None = None) -> bool:
    """Whether the container exists and is running."""
    result = _engine_command(engine, "inspect", "--format", "{{.State.Running}}", cid, check=False)
    return result.returncode == 0 and result.stdout.strip() == "true"


def logs(cid: str, engine: str | None = None) -> str:
    """Everything the container wrote to stdout and stderr (stdout first)."""
    result = _engine_command(engine, "logs", cid, check=False)
    return result.stdout + result.stderr


def stop(cid: str, engine: str | None = None, timeout_s: int = 5) -> None:
    """Stop the container (SIGTERM, then SIGKILL after ``timeout_s``) and remove it.

    Does nothing for a container that is already gone.
    """
    _engine_command(engine, "stop", "--time", str(timeout_s), cid, check=False, timeout_s=timeout_s + 60)
    _engine_command(engine, "rm", "--force", cid, check=False)


def run_to_completion(
    tag: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    user: str | None = None,
    engine: str | None = None,
    timeout_s: float = 300,
) -> subprocess.CompletedProcess[str]:
    """``ENGINE run --rm [--env ...] [--user ...] tag args...`` until it exits, whatever its exit code."""
    command = ["run", "--rm", "--label", TEST_LABEL]
    for name, value in (env or {}).items():
        command += ["--env", f"{name}={value}"]
    if user is not None:
        command += ["--user", user]
    command += [*_extra_args("CONTAINER_RUN_ARGS"), tag, *args]
    return _engine_command(engine, *command, timeout_s=timeout_s, check=False)


def exec_in(cid: str, *args: str, engine: str | None = None) -> str:
    """Run a command inside the running container ``cid``; returns its stdout."""
    return _engine_command(engine, "exec", cid, *args).stdout


def remove_test_containers(engine: str | None = None) -> list[str]:
    """Remove every container started by this module (found by its label); return their ids."""
    output = _engine_command(engine, "ps", "--all", "--quiet", "--no-trunc", "--filter", f"label={TEST_LABEL}").stdout
    ids = output.split()
    if ids:
        _engine_command(engine, "rm", "--force", *ids, check=False)
    return ids


def wait_http(
    url: str,
    timeout_s: float = 60,
    *,
    cid: str | None = None,
    engine: str | None = None,
) -> None:
    """Wait until ``GET url`` answers with a 2xx status.

    Raises ``TimeoutError`` after ``timeout_s`` with the last error. Given the
    container id ``cid``, fails at once (with the container's logs) if the container
    stops instead of serving. Proxy variables are ignored: the URL is local.
    """
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout_s
    last_error = "no attempt"
    while True:
        try:
            with opener.open(url, timeout=5) as response:
                if 200 <= response.status < 300:
                    return
                last_error = f"HTTP {response.status}"
        except urllib.error.HTTPError as error:
            last_error = f"HTTP {error.code}"
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as error:
            last_error = str(getattr(error, "reason", error))
        if cid is not None and not is_running(cid, engine):
            raise ContainerError(
                f"container {cid[:12]} stopped before {url} answered ({last_error}); "
                f"its logs:\n{_tail(logs(cid, engine))}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout_s:g} s: {last_error}")
        time.sleep(0.25)


def health_status(cid: str, engine: str | None = None) -> str | None:
    """The container's ``HEALTHCHECK`` status (``starting``, ``healthy``, ``unhealthy``).

    ``None`` when the image has no ``HEALTHCHECK`` (or the container is gone).
    """
    result = _engine_command(engine, "inspect", "--format", "{{json .State.Health}}", cid, check=False)
    if result.returncode != 0:
        return None
    health = json.loads(result.stdout or "null")
    return (health or {}).get("Status") or None


def wait_healthy(cid: str, timeout_s: float = 60, engine: str | None = None) -> None:
    """Wait until the container's ``HEALTHCHECK`` reports ``healthy``.

    Docker runs the check on its own schedule. podman schedules it with systemd timers,
    which machines without systemd lack, so with podman the check is run here, once a
    second, with ``podman healthcheck run``. Raises :class:`ContainerError` when the image
    has no ``HEALTHCHECK``, the container stops, or ``timeout_s`` passes.
    """
    engine = engine or default_engine()
    deadline = time.monotonic() + timeout_s
    while True:
        if engine == "podman":
            _engine_command(engine, "healthcheck", "run", cid, check=False)
        status = health_status(cid, engine)
        if status == "healthy":
            return
        if status is None:
            raise ContainerError(f"container {cid[:12]} has no HEALTHCHECK (or is gone)")
        if not is_running(cid, engine):
            raise ContainerError(f"container {cid[:12]} stopped; its logs:\n{_tail(logs(cid, engine))}")
        if time.monotonic() > deadline:
            raise ContainerError(
                f"container {cid[:12]} not healthy within {timeout_s:g} s (status {status}); "
                f"its logs:\n{_tail(logs(cid, engine))}"
            )
        time.sleep(1)


@contextlib.contextmanager
def running_container(
    tag: str,
    *,
    port: int,
    env: Mapping[str, str] | None = None,
    extra_args: Sequence[str] = (),
    ready_path: str | None = "/health",
    timeout_s: float = 60,
    engine: str | None = None,
) -> Iterator[RunningContainer]:
    """Run ``tag`` for the duration of a ``with`` block; it is always stopped and removed.

    Waits until ``GET ready_path`` answers 2xx (``ready_path=None`` skips the wait).
    On a failed start the error includes the container's logs.
    """
    engine = engine or default_engine()
    cid = run_detached(tag, env=env, port=port, extra_args=extra_args, engine=engine)
    try:
        try:
            published = host_port(cid, port, engine)
        except ContainerError as error:
            if is_running(cid, engine):
                raise
            raise ContainerError(
                f"container {cid[:12]} of {tag} stopped right after starting; its logs:\n{_tail(logs(cid, engine))}"
            ) from error
        container = RunningContainer(cid=cid, engine=engine, port=published)
        if ready_path is not None:
            try:
                wait_http(container.url + ready_path, timeout_s, cid=cid, engine=engine)
            except TimeoutError as error:
                raise ContainerError(f"{error}; container logs:\n{_tail(logs(cid, engine))}") from error
        yield container
    finally:
        stop(cid, engine)
