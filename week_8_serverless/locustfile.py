"""Load-test the running API with Locust: virtual users each POST one validation sentence after another.

Start the service (`uvicorn app:app --port 8000 --no-access-log`), then, headless, with CSV output:

    locust -f locustfile.py --headless --host http://127.0.0.1:8000 -u 32 -r 32 -t 30s \\
        --csv artifacts/locust/dynamic --endpoint /predict/dynamic

-u users (concurrent clients), -r how many start per second, -t how long. --endpoint picks /predict
(the plain `def` endpoint) or /predict/dynamic (the batching one). Locust writes
artifacts/locust/dynamic_stats.csv (requests, failures, percentiles, requests/s) and prints the same
table. Leave out --headless to watch it live at http://localhost:8089.

Each user sends its next request as soon as the answer arrives (no think time): a closed loop, so
N users means at most N requests in flight, the load bench/bench_batching.py measures.
A non-200 answer, or one for another text, counts as a failure.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant, events, task

from source import read_split

ENDPOINTS = ("/predict", "/predict/dynamic")
SENTENCES = [row["sentence"] for row in read_split("validation")]
# Every response time in ms, unrounded: Locust's own percentiles round to whole ms below 100 ms,
# too coarse to compare endpoints that differ by fractions of a millisecond. And Locust's own CPU
# time while the users run (its start-up left out): what the load costs the machine it runs on.
RESPONSE_TIMES_MS: list[float] = []
CPU_S = {"test_start": 0.0, "test_stop": 0.0}


@events.init_command_line_parser.add_listener
def add_arguments(parser: Any) -> None:  # Locust's own (configargparse) parser
    parser.add_argument("--endpoint", choices=ENDPOINTS, default="/predict", help="the endpoint to load")
    parser.add_argument(
        "--summary-file", default="", help="also write every response time (ms) and Locust's CPU seconds here (JSON)"
    )


@events.request.add_listener
def record(response_time: float, exception: BaseException | None, **_: object) -> None:
    if exception is None:
        RESPONSE_TIMES_MS.append(response_time)


@events.test_start.add_listener
def cpu_at_start(**_: object) -> None:
    CPU_S["test_start"] = time.process_time()


@events.test_stop.add_listener
def cpu_at_stop(**_: object) -> None:
    CPU_S["test_stop"] = time.process_time()


@events.quitting.add_listener
def write_summary(environment: Any, **_: object) -> None:
    path = environment.parsed_options.summary_file if environment.parsed_options else ""
    if path:
        summary = {"response_times_ms": RESPONSE_TIMES_MS, "cpu_s": CPU_S["test_stop"] - CPU_S["test_start"]}
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(summary))


class PredictUser(FastHttpUser):
    """One client with a keep-alive connection, classifying the validation sentences in turn."""

    wait_time = constant(0)

    def on_start(self) -> None:
        # Users start at different sentences, so concurrent batches mix sentence lengths.
        self.sentences = itertools.islice(itertools.cycle(SENTENCES), id(self) % len(SENTENCES), None)

    @task
    def predict(self) -> None:
        text = next(self.sentences)
        endpoint = self.environment.parsed_options.endpoint
        with self.client.post(endpoint, json={"text": text}, name=endpoint, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text}")
            elif response.json().get("text") != text:
                response.failure("the answer is for another text")
