"""Run the images that helpers/container_engine.py built: start, wait, read logs, stop.

Typical use in a test::

    with running_container("mlops-week5:test", port=8000, env={"LOG_LEVEL": "info"}) as app:
        response = urllib.request.urlopen(app.url + "/health")

Every container started here carries TEST_LABEL, so leftovers can be found and removed.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from helpers.container_engine import TEST_LABEL, ContainerError, default_engine, engine_command, env_args, tail_of


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
    command += [*env_args("CONTAINER_RUN_ARGS"), *extra_args, tag]
    result = engine_command(engine, *command, timeout_s=300)
    return result.stdout.strip().splitlines()[-1]


def host_port(cid: str, port: int, engine: str | None = None) -> int:
    """The port of 127.0.0.1 that the container's ``port`` is published on."""
    output = engine_command(engine, "port", cid, f"{port}/tcp").stdout
    for line in output.splitlines():  # e.g. "127.0.0.1:49153"
        host, _, published = line.strip().rpartition(":")
        if host == "127.0.0.1" and published.isdigit():
            return int(published)
    raise ContainerError(f"container {cid[:12]} does not publish port {port}: {output!r}")


def is_running(cid: str, engine: str | None = None) -> bool:
    """Whether the container exists and is running."""
    result = engine_command(engine, "inspect", "--format", "{{.State.Running}}", cid, check=False)
    return result.returncode == 0 and result.stdout.strip() == "true"


def logs(cid: str, engine: str | None = None) -> str:
    """Everything the container wrote to stdout and stderr (stdout first)."""
    result = engine_command(engine, "logs", cid, check=False)
    return result.stdout + result.stderr


def stop(cid: str, engine: str | None = None, timeout_s: int = 5) -> None:
    """Stop the container (SIGTERM, then SIGKILL after ``timeout_s``) and remove it.

    Does nothing for a container that is already gone.
    """
    engine_command(engine, "stop", "--time", str(timeout_s), cid, check=False, timeout_s=timeout_s + 60)
    engine_command(engine, "rm", "--force", cid, check=False)


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
    command += [*env_args("CONTAINER_RUN_ARGS"), tag, *args]
    return engine_command(engine, *command, timeout_s=timeout_s, check=False)


def exec_in(cid: str, *args: str, engine: str | None = None) -> str:
    """Run a command inside the running container ``cid``; returns its stdout."""
    return engine_command(engine, "exec", cid, *args).stdout


def remove_test_containers(engine: str | None = None) -> list[str]:
    """Remove every container started by this module (found by its label); return their ids."""
    output = engine_command(engine, "ps", "--all", "--quiet", "--no-trunc", "--filter", f"label={TEST_LABEL}").stdout
    ids = output.split()
    if ids:
        engine_command(engine, "rm", "--force", *ids, check=False)
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
                f"its logs:\n{tail_of(logs(cid, engine))}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout_s:g} s: {last_error}")
        time.sleep(0.25)


def health_status(cid: str, engine: str | None = None) -> str | None:
    """The container's ``HEALTHCHECK`` status (``starting``, ``healthy``, ``unhealthy``).

    ``None`` when the image has no ``HEALTHCHECK`` (or the container is gone).
    """
    result = engine_command(engine, "inspect", "--format", "{{json .State.Health}}", cid, check=False)
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
            engine_command(engine, "healthcheck", "run", cid, check=False)
        status = health_status(cid, engine)
        if status == "healthy":
            return
        if status is None:
            raise ContainerError(f"container {cid[:12]} has no HEALTHCHECK (or is gone)")
        if not is_running(cid, engine):
            raise ContainerError(f"container {cid[:12]} stopped; its logs:\n{tail_of(logs(cid, engine))}")
        if time.monotonic() > deadline:
            raise ContainerError(
                f"container {cid[:12]} not healthy within {timeout_s:g} s (status {status}); "
                f"its logs:\n{tail_of(logs(cid, engine))}"
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
                f"container {cid[:12]} of {tag} stopped right after starting; its logs:\n{tail_of(logs(cid, engine))}"
            ) from error
        container = RunningContainer(cid=cid, engine=engine, port=published)
        if ready_path is not None:
            try:
                wait_http(container.url + ready_path, timeout_s, cid=cid, engine=engine)
            except TimeoutError as error:
                raise ContainerError(f"{error}; container logs:\n{tail_of(logs(cid, engine))}") from error
        yield container
    finally:
        stop(cid, engine)
