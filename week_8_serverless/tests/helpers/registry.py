"""A real OCI registry on loopback for the tests: Debian's `docker-registry` (distribution 2.8).

It plays the part of the registry behind ECR: moto answers ECR's API (repositories, login
tokens) but stores no images, so the image itself is pushed here and pulled back.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


def registry_binary() -> str | None:
    """The registry server: Debian names it docker-registry, upstream `registry`."""
    return shutil.which("docker-registry") or shutil.which("registry")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def local_registry(workdir: Path) -> Iterator[str]:
    """Serve a registry on 127.0.0.1 (plain HTTP) until the block ends; yields `127.0.0.1:PORT`."""
    binary = registry_binary()
    if binary is None:
        raise RuntimeError("no registry server: apt-get install docker-registry (tools/containers/setup.sh does)")
    port = free_port()
    config = workdir / "registry.yml"
    config.write_text(CONFIG.format(root=workdir / "data", port=port))
    log = (workdir / "registry.log").open("w")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    address = f"127.0.0.1:{port}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with opener.open(f"http://{address}/v2/", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError as error:
                if process.poll() is not None or time.monotonic() > deadline:
                    log_text = (workdir / "registry.log").read_text()
                    raise RuntimeError(f"the registry did not start: {log_text}") from error
                time.sleep(0.1)
        yield address
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
