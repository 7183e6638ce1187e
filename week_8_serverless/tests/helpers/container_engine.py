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

Typical use in a test (running the image is helpers/containers.py)::

    engine, why = find_engine()
    if engine is None:
        pytest.skip(why)
    build(WEEK_DIR, "mlops-week5:test")
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import shutil
import subprocess
import threading
from collections.abc import Mapping
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


def env_args(variable: str) -> list[str]:
    """Extra engine flags from an environment variable, split like a shell would."""
    return shlex.split(os.environ.get(variable, ""))


def tail_of(text: str, lines: int = 60) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def engine_command(
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
            f"{tail_of(result.stdout + result.stderr)}"
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
    command = [engine, "build", *env_args("CONTAINER_BUILD_ARGS")]
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
        raise ContainerError(f"building {tag} timed out after {timeout_s:g} s; last output:\n{tail_of(''.join(lines))}")
    if returncode != 0:
        raise ContainerError(
            f"building {tag} failed (exit code {returncode}): `{shlex.join(command)}`\n"
            f"--- last lines of the build log ---\n{tail_of(''.join(lines))}"
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
    details = json.loads(engine_command(engine, "image", "inspect", tag).stdout)[0]
    output = engine_command(engine, "history", "--no-trunc", "--format", "{{json .}}", tag).stdout
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
    details = json.loads(engine_command(engine, "image", "inspect", tag).stdout)[0]
    return int(details["Size"])


def remove_image(tag: str, engine: str | None = None) -> None:
    """Remove the image ``tag`` if it exists."""
    engine_command(engine, "image", "rm", "-f", tag, check=False)
