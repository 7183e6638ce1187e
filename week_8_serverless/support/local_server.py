"""Start the API with uvicorn in a child process on loopback, for the tests and the benchmark.

    with local_server(model_dir=Path("artifacts/onnx")) as url:
        httpx.post(url + "/predict", json={"text": "The dog sleeps."})

It is the same command a learner types (`uvicorn app:app`), on a free port of 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO

WEEK_DIR = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, output: IO[str], timeout_s: float = 60) -> None:
    """Wait until GET url answers 200; fail at once, with the server's `output`, if it exits."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            output.seek(0)
            raise RuntimeError(
                f"the server exited with code {process.returncode} before {url} answered:\n{output.read()}"
            )
        try:
            with opener.open(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout_s:g} s")
        time.sleep(0.1)


def stop(process: subprocess.Popen, timeout_s: float = 10) -> None:
    """Ask a server to stop (SIGTERM, so it shuts down cleanly); kill it if it has not within timeout_s."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def server_command(port: int, workers: int = 1, app: str = "app:app") -> list[str]:
    """`uvicorn app:app` on 127.0.0.1:port, without per-request access logs (they cost time under load)."""
    return [
        sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--no-access-log",
    ]  # fmt: skip


@contextlib.contextmanager
def local_server(
    model_dir: Path,
    env: Mapping[str, str] | None = None,
    workers: int = 1,
    timeout_s: float = 60,
    app: str = "app:app",
) -> Iterator[str]:
    """Run the API (or another `module:attribute` ASGI app) on a free loopback port until the block ends.

    Yields its base URL once GET /ready answers 200.
    """
    port = free_port()
    environment = {**os.environ, "MODEL_DIR": str(model_dir), **(env or {})}
    # A file, not a pipe: nobody reads the output while the server runs, and a full pipe would block it.
    with tempfile.TemporaryFile(mode="w+") as output:
        process = subprocess.Popen(
            server_command(port, workers, app),
            cwd=WEEK_DIR,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url + "/ready", process, output, timeout_s)
            yield url
        finally:
            stop(process)
