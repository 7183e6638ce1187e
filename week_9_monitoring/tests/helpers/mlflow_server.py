"""A real MLflow tracking server on loopback for the registry tests: SQLite backend, artifacts on S3 (moto).

It is started as a learner starts one (`mlflow server --backend-store-uri sqlite:///... --artifacts-destination
s3://BUCKET/registry`), with MLFLOW_S3_ENDPOINT_URL pointing at moto's server; its process group is
stopped when the block ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from helpers.aws_calls import LOG_VARIABLE

# moto accepts any credentials: the word "testing" for both, as the week's other S3 tests use.
CREDENTIALS = dict.fromkeys(("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"), "testing") | {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(s3_endpoint: str) -> dict[str, str]:
    """The server's environment: moto's endpoint and credentials. Its S3 calls are infrastructure, not the
    course's code, so they stay out of the AWS-call log that test_iam.py checks against the IAM policies."""
    env = {key: value for key, value in os.environ.items() if key != LOG_VARIABLE and not key.startswith("MLFLOW_")}
    return {**env, **CREDENTIALS, "MLFLOW_S3_ENDPOINT_URL": s3_endpoint}


@contextlib.contextmanager
def mlflow_server(workdir: Path, s3_endpoint: str, bucket: str) -> Iterator[str]:
    """Serve MLflow on 127.0.0.1 until the block ends; yields its URI, http://127.0.0.1:PORT."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "mlflow"), "server",
        "--backend-store-uri", f"sqlite:///{workdir / 'registry.db'}",
        "--artifacts-destination", f"s3://{bucket}/registry",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    log_path = workdir / "mlflow-server.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env=server_env(s3_endpoint), start_new_session=True
    )
    uri = f"http://127.0.0.1:{port}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        deadline = time.monotonic() + 120  # the first start creates the SQLite schema (its migrations)
        while True:
            try:
                with opener.open(f"{uri}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError as error:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the MLflow server did not start: {log_path.read_text()[-3000:]}") from error
                time.sleep(0.2)
        yield uri
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # the server and the uvicorn worker it started
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
