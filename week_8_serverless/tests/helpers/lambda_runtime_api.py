"""A stand-in for AWS Lambda's Runtime API on loopback, so the real image runs its real runtime client.

In Lambda, the runtime client in the image (awslambdaric) asks the Runtime API for the next event
(GET .../invocation/next), calls the handler, and posts the result (POST .../invocation/ID/response).
This server plays Lambda's side of those calls, as documented in the Lambda Runtime API reference,
for one function: `invoke(event)` queues an event and waits for the handler's answer. AWS's own
emulator (aws-lambda-rie) does the same, but it is a download from GitHub, which this machine
cannot reach.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:eu-west-1:000000000000:function:cola-classifier"


class RuntimeApi:
    """Serve the Runtime API on 127.0.0.1:port until `close()`; `invoke()` runs one event through the function."""

    def __init__(self) -> None:
        self.events: queue.Queue[tuple[str, object]] = queue.Queue()
        self.results: dict[str, queue.Queue[tuple[str, object]]] = {}
        self.init_error: object | None = None
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep pytest's output clean
                pass

            def reply(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 (the http.server naming)
                if self.path != f"{PREFIX}/invocation/next":
                    self.reply(404, {"errorMessage": f"unknown path {self.path}"})
                    return
                request_id, event = api.events.get()  # long poll: blocks until there is an event
                deadline_ms = int((time.time() + 30) * 1000)
                self.reply(
                    200,
                    event,
                    {
                        "Lambda-Runtime-Aws-Request-Id": request_id,
                        "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                        "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                        "Lambda-Runtime-Trace-Id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}",
                    },
                )

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length) or b"null")
                parts = self.path.removeprefix(PREFIX).strip("/").split("/")
                if parts == ["init", "error"]:
                    api.init_error = payload
                elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    api.results.setdefault(parts[1], queue.Queue()).put((parts[2], payload))
                else:
                    self.reply(404, {"errorMessage": f"unknown path {self.path}"})
                    return
                self.reply(202, {"status": "OK"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def invoke(self, event: object, timeout_s: float = 60) -> tuple[str, object]:
        """Send one event; returns ("response", what the handler returned) or ("error", the error report)."""
        request_id = str(uuid.uuid4())
        results = self.results.setdefault(request_id, queue.Queue())
        self.events.put((request_id, event))
        try:
            return results.get(timeout=timeout_s)
        except queue.Empty:
            raise TimeoutError(f"no answer to invocation {request_id} within {timeout_s:g} s "
                               f"(init error: {self.init_error})") from None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
