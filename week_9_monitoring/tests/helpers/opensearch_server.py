"""Real HTTP servers the OpenSearch tests talk to: osmem-server, and a gateway that fails on purpose.

    with OpenSearchServer() as server:           # osmem-server on a free loopback port, answering
        client = OpenSearch(hosts=[server.url])
        server.stop()                            # connection refused from now on
        server.start()                           # the SAME port again, and empty: it keeps data in memory

    with FlakyGateway(server.url, [503, 429]) as gateway:   # answers 503, then 429, then forwards
        client = OpenSearch(hosts=[gateway.url])

osmem-server (pip package osmem-server) is an in-memory server of the OpenSearch REST API:
index templates, bulk, search, aggregations, in milliseconds and without a JVM.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from typing import IO

import pytest
from opensearchpy import OpenSearch

from monitoring.event_index import INDEX_PATTERN
from support.local_server import free_port, stop

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy


def osmem_binary() -> str:
    """The osmem-server binary of the installed wheel; the test is skipped, with the reason, without one."""
    from osmem_server import OsmemError, resolve_binary

    try:
        return resolve_binary()
    except OsmemError as error:
        pytest.skip(f"no osmem-server binary: {error}")


class OpenSearchServer:
    """osmem-server on 127.0.0.1:port; stop() and start() again keep the port (but not the data)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.output: IO[str] | None = None

    def start(self, timeout_s: float = 30) -> None:
        """Start it and wait until GET / answers; retried while the port is still held by the last run."""
        deadline = time.monotonic() + timeout_s
        while True:
            # A file, not a pipe: nobody reads the output while it runs, and a full pipe would block it.
            self.output = tempfile.TemporaryFile(mode="w+")
            self.process = subprocess.Popen(
                # -no-stdin-watch: it would exit when stdin closes; -parent-pid: it exits with pytest;
                # -no-ja: no Japanese analyser, whose dictionary costs a second on the first index.
                [
                    osmem_binary(),
                    "-addr",
                    f"127.0.0.1:{self.port}",
                    "-no-stdin-watch",
                    "-no-ja",
                    "-parent-pid",
                    str(os.getpid()),
                ],  # fmt: skip
                stdin=subprocess.DEVNULL,
                stdout=self.output,
                stderr=subprocess.STDOUT,
                text=True,
            )
            if self._wait_answering(deadline):
                return
            self.output.seek(0)
            said = self.output.read()
            self.output.close()
            if "address already in use" not in said or time.monotonic() > deadline:
                raise RuntimeError(f"osmem-server on port {self.port} did not start:\n{said}")
            time.sleep(0.1)

    def _wait_answering(self, deadline: float) -> bool:
        """True once GET / answers 200; False if the process exited first."""
        while self.process.poll() is None:
            try:
                with NO_PROXY.open(self.url + "/", timeout=2) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"osmem-server on port {self.port} did not answer in time")
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        """Stop the process (its data is gone); the port refuses connections until start()."""
        if self.process is not None and self.process.poll() is None:
            stop(self.process, timeout_s=5)
        if self.output is not None:
            self.output.close()
            self.output = None

    def __enter__(self) -> OpenSearchServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FlakyGateway:
    """A proxy in front of `upstream` that answers the first requests with `failures` (e.g. 503, 429), then forwards.

    What a load balancer in front of a busy or restarting cluster does. `failed` lists the statuses
    it answered, `forwarded` counts the requests it passed on.
    """

    def __init__(self, upstream: str, failures: list[int], always: int | None = None) -> None:
        self.upstream = upstream
        self.failures = list(failures)
        self.always = always  # fail every request with this status (a cluster that never recovers)
        self.failed: list[int] = []
        self.forwarded = 0
        self.authorizations: list[str] = []  # the Authorization header of each request, as received
        self._lock = threading.Lock()
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet: pytest shows failures, not traffic
                pass

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with gateway._lock:
                    gateway.authorizations.append(self.headers.get("Authorization", ""))
                    status = gateway.always or (gateway.failures.pop(0) if gateway.failures else None)
                    if status:
                        gateway.failed.append(status)
                    else:
                        gateway.forwarded += 1
                if status:
                    reply = json.dumps({"error": {"type": "gateway", "reason": f"answering {status} on purpose"}})
                    self._reply(status, "application/json", reply.encode())
                    return
                # Without Accept-Encoding: the body is passed on as it comes, so it must not be compressed.
                headers = {k: v for k, v in self.headers.items() if k.lower() != "accept-encoding"}
                request = urllib.request.Request(
                    gateway.upstream + self.path, data=body or None, method=self.command, headers=headers
                )
                try:
                    with NO_PROXY.open(request, timeout=10) as response:
                        self._reply(response.status, response.headers.get("Content-Type", ""), response.read())
                except urllib.error.HTTPError as error:
                    self._reply(error.code, error.headers.get("Content-Type", ""), error.read())

            def _reply(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type or "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FlakyGateway:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def point_clis_at(server: OpenSearchServer, monkeypatch: pytest.MonkeyPatch) -> OpenSearchServer:
    """Set OPENSEARCH_URL to `server` and unset the login variables, so a CLI a test runs ships there."""
    monkeypatch.setenv("OPENSEARCH_URL", server.url)
    for name in ("OPENSEARCH_USER", "OPENSEARCH_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    return server


def stored_ids(client: OpenSearch) -> list[str]:
    """Every document id in predictions-*, duplicates kept (a duplicate would be a second document)."""
    client.indices.refresh(index=INDEX_PATTERN)
    hits = client.search(index=INDEX_PATTERN, body={"size": 10_000, "query": {"match_all": {}}})["hits"]["hits"]
    return [hit["_id"] for hit in hits]
