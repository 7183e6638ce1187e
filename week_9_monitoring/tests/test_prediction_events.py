"""Prediction events: one JSON line per prediction from the API and the Lambda, text only when allowed."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from fastapi.testclient import TestClient

from app import app
from conftest import import_lambda_handler
from errors import CourseError
from helpers.sample_events import make_event
from inference_onnx import ColaOnnxPredictor
from monitoring.prediction_events import (
    BadLine,
    EventSink,
    PredictionEvent,
    describe_bad_lines,
    parse_event,
    read_events,
    to_json_line,
    utc_timestamp,
)
from settings import read_settings
from source import WEEK_DIR
from support.local_server import free_port, server_command, stop, wait_ready

SENTENCES = ["The dogs are chasing a cat.", "The dogs is chasing a cat.", "Anna will helps the children."]


def started_app(exported: dict, tmp_path: Path, log_text: bool) -> tuple[TestClient, Path]:
    events_file = tmp_path / f"events-{log_text}.jsonl"
    patch = pytest.MonkeyPatch()
    patch.setenv("MODEL_DIR", str(exported["export_dir"]))
    patch.setenv("EVENTS_FILE", str(events_file))
    patch.setenv("LOG_TEXT", "true" if log_text else "false")
    client = TestClient(app)
    client.__enter__()  # runs the lifespan, which reads the settings
    patch.undo()
    return client, events_file


@pytest.fixture(scope="module")
def model_config(exported: dict) -> dict:
    return json.loads((exported["export_dir"] / "model_config.json").read_text())


def test_every_api_prediction_is_one_event_in_the_file_and_on_stdout(
    exported: dict, tmp_path: Path, model_config: dict, capsys: pytest.CaptureFixture
) -> None:
    client, events_file = started_app(exported, tmp_path, log_text=True)
    try:
        single = client.post("/predict", json={"text": SENTENCES[0]}, headers={"X-Request-ID": "req-42"})
        batch = client.post("/predict/batch", json={"texts": SENTENCES[1:]})
    finally:
        client.__exit__(None, None, None)
    assert single.headers["X-Request-ID"] == "req-42"
    events = list(read_events(events_file))
    assert len(events) == 3
    answers = [single.json(), *batch.json()["predictions"]]
    for event, answer, text in zip(events, answers, SENTENCES, strict=True):
        assert event.source == "api" and event.text == text
        assert event.label == answer["label"] and event.score == pytest.approx(answer["score"])
        assert event.probabilities == pytest.approx(answer["probabilities"])
        assert event.text_length == len(text) and event.word_count == len(text.split())
        assert event.text_sha256 == hashlib.sha256(text.encode()).hexdigest()
        assert event.model_version == model_config["model_version"] and event.latency_ms > 0
    # The client's id is kept as request_id; the event id is the server's, so reusing the header is harmless.
    assert events[0].request_id == "req-42" and not events[0].event_id.startswith("req-42")
    # A batch shares its request id; every prediction has its own event id (its document id in OpenSearch).
    assert events[1].request_id == events[2].request_id == batch.headers["X-Request-ID"]
    assert len({e.event_id for e in events}) == 3
    stdout_events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [e["event_id"] for e in stdout_events] == [e.event_id for e in events]


def test_the_text_is_logged_only_when_allowed(exported: dict, tmp_path: Path) -> None:
    client, events_file = started_app(exported, tmp_path, log_text=False)
    try:
        client.post("/predict", json={"text": SENTENCES[0]})
    finally:
        client.__exit__(None, None, None)
    line = events_file.read_text()
    assert SENTENCES[0] not in line and "chasing" not in line
    event = json.loads(line)
    assert "text" not in event and event["text_sha256"] == hashlib.sha256(SENTENCES[0].encode()).hexdigest()


def test_a_bad_request_id_is_replaced_and_a_bad_request_logs_nothing(exported: dict, tmp_path: Path) -> None:
    client, events_file = started_app(exported, tmp_path, log_text=True)
    try:
        answer = client.post("/predict", json={"text": "The dog sleeps."}, headers={"X-Request-ID": "a b\tc" * 50})
        rejected = client.post("/predict", json={"text": "   "})
    finally:
        client.__exit__(None, None, None)
    assert len(answer.headers["X-Request-ID"]) == 32  # a fresh uuid4, not the client's unsafe value
    assert rejected.status_code == 422
    assert len(list(read_events(events_file))) == 1


@pytest.fixture(scope="module")
def lambda_module(exported: dict) -> ModuleType:
    """The conftest's lambda_module, but logging the sentence text too (LOG_TEXT=true)."""
    return import_lambda_handler(exported["export_dir"], LOG_TEXT="true")


class Context:
    aws_request_id = "8f5e0c4d-lambda"


def test_the_lambda_prints_one_event_per_prediction_for_cloudwatch(
    lambda_module: ModuleType, exported: dict, capsys: pytest.CaptureFixture
) -> None:
    capsys.readouterr()
    answer = lambda_module.handler({"sentence": SENTENCES[2]}, Context())
    bad = lambda_module.handler({"sentence": ""}, Context())
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert answer["statusCode"] == 200 and bad["statusCode"] == 400
    assert len(lines) == 1  # the bad event is logged by the handler's logger, not as a prediction
    event = parse_event(lines[0])
    expected = ColaOnnxPredictor(exported["export_dir"]).predict(SENTENCES[2])
    assert event.source == "lambda" and event.request_id == "8f5e0c4d-lambda" and event.text == SENTENCES[2]
    assert event.label == expected["label"] and event.score == pytest.approx(expected["score"], abs=1e-6)


def test_events_round_trip_and_bad_lines_name_file_and_line(tmp_path: Path) -> None:
    event = PredictionEvent(
        timestamp=utc_timestamp(),
        event_id="r-0",
        request_id="r",
        source="api",
        model_version="v2-12345678",
        data_version="v2",
        label="acceptable",
        score=0.9,
        probabilities={"unacceptable": 0.1, "acceptable": 0.9},
        latency_ms=1.5,
        text_length=15,
        word_count=3,
        text_sha256="0" * 64,
        text="The dog sleeps.",
    )
    path = tmp_path / "events.jsonl"
    stream = io.StringIO()
    EventSink(path, stream=stream).emit([event, event])
    assert stream.getvalue() == path.read_text() and path.read_text().count("\n") == 2
    assert list(read_events(path)) == [event, event]
    with open(path, "a") as handle:
        handle.write('{"label": "acceptable"}\n')
    with pytest.raises(CourseError, match=r"events.jsonl:3 is not a prediction event"):
        list(read_events(path))
    with pytest.raises(CourseError, match="start the API with EVENTS_FILE="):
        list(read_events(tmp_path / "missing.jsonl"))


def test_a_broken_line_is_reported_with_its_line_and_the_events_after_it_are_read(tmp_path: Path) -> None:
    # What a crash or a full disk leaves: half an event, then the API goes on writing whole ones.
    first, second, third = (to_json_line(make_event(n)) for n in range(3))
    path = tmp_path / "events.jsonl"
    with open(path, "wb") as handle:
        handle.write(f"{first}\n{second[:72]}{third}\n".encode())
        handle.write(b"\xff\xfe not text\n")
        handle.write(f"{to_json_line(make_event(3))}\n".encode())
    bad: list[BadLine] = []
    assert [event.event_id for event in read_events(path, bad)] == [make_event(0).event_id, make_event(3).event_id]
    assert [line.where for line in bad] == [f"{path}:2", f"{path}:3"]
    assert bad[0].line == second[:72] + third and "is not a prediction event" in bad[0].reason
    assert "is not UTF-8" in bad[1].reason
    summary = describe_bad_lines(bad)
    assert summary.startswith("skipped 2 line(s) that are not prediction events") and f"{path}:2" in summary
    with pytest.raises(CourseError, match=r"events.jsonl:2 is not a prediction event"):
        list(read_events(path))  # without a list to collect them, a broken line stops the read


def test_an_unfinished_last_line_is_left_for_later(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    whole, half = to_json_line(make_event(0)), to_json_line(make_event(1))[:40]
    path.write_text(f"{whole}\n{half}")
    bad: list[BadLine] = []
    assert [event.event_id for event in read_events(path, bad)] == [make_event(0).event_id] and bad == []


def test_an_event_with_an_unknown_field_is_refused_not_stripped() -> None:
    line = json.loads(to_json_line(make_event(0)))
    line["user_email"] = "someone@example.com"
    with pytest.raises(CourseError, match=r"user_email: Extra inputs are not permitted"):
        parse_event(json.dumps(line), "events.jsonl:1")


def test_timestamps_are_utc_with_milliseconds() -> None:
    stamp = utc_timestamp()
    assert len(stamp) == 24 and stamp.endswith("Z") and stamp[10] == "T" and stamp[19] == "."


def test_log_text_setting_is_validated() -> None:
    assert read_settings({"LOG_TEXT": "true"}).log_text is True
    assert read_settings({}).log_text is False
    with pytest.raises(CourseError, match="LOG_TEXT='maybe' is not true or false"):
        read_settings({"LOG_TEXT": "maybe"})


# ------------------------------------------------- an events file that cannot be written (row 7)

WRITE_ERRORS = re.compile(r"^cola_prediction_events_write_errors_total (\S+)$", re.MULTILINE)
CANNOT_WRITE = "cannot write prediction events to"


@contextlib.contextmanager
def api_with_log(exported: dict, log_path: Path, env: dict, wrapper: list[str] | None = None) -> Iterator[tuple]:
    """`uvicorn app:app` on loopback (inside `wrapper`, e.g. a mount namespace); yields (client, pid).

    Everything the server prints (events on stdout, its log on stderr) goes to `log_path`.
    """
    port = free_port()
    environment = {**os.environ, "MODEL_DIR": str(exported["export_dir"]), **env}
    with open(log_path, "w+") as output:
        process = subprocess.Popen(
            [*(wrapper or []), *server_command(port)],
            cwd=WEEK_DIR, env=environment, stdout=output, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url + "/ready", process, output)
            with httpx.Client(base_url=url, trust_env=False) as client:
                yield client, process.pid
        finally:
            stop(process)


def in_mount_namespace(setup: str) -> list[str]:
    """A command prefix: run `setup` (mounts) in a private mount namespace, then the command.

    A user namespace makes the mounts possible without privileges, and they are real: root
    cannot write to a read-only mount, and a full tmpfs is a full disk.
    """
    if subprocess.run(["unshare", "--map-root-user", "--mount", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare cannot make a user and mount namespace here (the kernel or a seccomp profile forbids it)")
    return ["unshare", "--map-root-user", "--mount", "sh", "-c", f'{setup} && exec "$@"', "sh"]


def write_errors(client: httpx.Client) -> float:
    return float(WRITE_ERRORS.search(client.get("/metrics").text).group(1))


def test_a_full_device_is_counted_and_logged_once_and_predictions_are_still_answered(
    exported: dict, tmp_path: Path
) -> None:
    predictor = ColaOnnxPredictor(exported["export_dir"], "fp32")
    with api_with_log(exported, tmp_path / "server.log", {"EVENTS_FILE": "/dev/full"}) as (client, _):
        singles = [client.post("/predict", json={"text": sentence}) for sentence in SENTENCES]
        batch = client.post("/predict/batch", json={"texts": SENTENCES})
        ready = client.get("/ready")
        errors = write_errors(client)
    assert [answer.status_code for answer in [*singles, batch]] == [200] * 4
    expected = [predictor.predict(sentence) for sentence in SENTENCES]
    assert [answer.json()["label"] for answer in singles] == [e["label"] for e in expected]
    assert [p["label"] for p in batch.json()["predictions"]] == [e["label"] for e in expected]
    assert errors == 4  # one failed write per request
    assert ready.status_code == 200
    assert ready.json()["events"] == {
        "file": "/dev/full",
        "status": "failing",
        "write_errors": 4,
        "last_error": "No space left on device",
    }
    log = (tmp_path / "server.log").read_text()
    assert log.count(CANNOT_WRITE) == 1
    assert f"{CANNOT_WRITE} /dev/full (No space left on device)" in log
    assert sum(line.startswith('{"timestamp"') for line in log.splitlines()) == 6  # still on stdout


def test_a_read_only_directory_is_counted_and_logged_once_and_the_file_is_untouched(
    exported: dict, tmp_path: Path
) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    events_file = folder / "events.jsonl"
    earlier = to_json_line(make_event(1)) + "\n"
    events_file.write_text(earlier, encoding="utf-8")
    read_only = in_mount_namespace(f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder}")
    with api_with_log(exported, tmp_path / "server.log", {"EVENTS_FILE": str(events_file)}, read_only) as (client, _):
        answers = [client.post("/predict", json={"text": sentence}) for sentence in SENTENCES]
        ready = client.get("/ready").json()
        errors = write_errors(client)
    assert [answer.status_code for answer in answers] == [200] * 3
    assert errors == 3
    assert ready["events"]["status"] == "failing"
    assert ready["events"]["last_error"] == "Read-only file system"
    log = (tmp_path / "server.log").read_text()
    assert log.count(CANNOT_WRITE) == 1
    assert f"{CANNOT_WRITE} {events_file} (Read-only file system)" in log
    assert events_file.read_text(encoding="utf-8") == earlier


def test_a_disk_that_fills_up_leaves_only_whole_lines_and_the_recovery_is_logged(
    exported: dict, tmp_path: Path
) -> None:
    folder = tmp_path / "disk"
    folder.mkdir()
    # A tmpfs of two pages, one taken by a filler: the events file gets 4096 bytes, about ten events.
    full_disk = in_mount_namespace(
        f"mount -t tmpfs -o size=8k tmpfs {folder} && head -c 4096 /dev/zero > {folder}/filler"
    )
    events_file = folder / "events.jsonl"
    sent = 30
    with api_with_log(exported, tmp_path / "server.log", {"EVENTS_FILE": str(events_file)}, full_disk) as (client, pid):
        inside = Path(f"/proc/{pid}/root") / folder.relative_to("/")  # the disk as the server sees it
        answers = [client.post("/predict", json={"text": f"The dog number {n} sleeps."}) for n in range(sent)]
        failed = write_errors(client)
        when_full = (inside / "events.jsonl").read_bytes()
        (inside / "filler").unlink()  # space again
        again = client.post("/predict", json={"text": "The dog wakes up."})
        ready = client.get("/ready").json()
        after = (inside / "events.jsonl").read_bytes()
    assert [answer.status_code for answer in [*answers, again]] == [200] * (sent + 1)
    lines = when_full.decode("utf-8").splitlines(keepends=True)
    assert all(line.endswith("\n") for line in lines)  # no half line: the short write was cut back
    written = [parse_event(line) for line in lines]
    assert 1 <= len(written) < sent
    assert len(written) + failed == sent  # every request either wrote its event whole or was counted
    assert after.startswith(when_full)
    assert parse_event(after[len(when_full) :].decode("utf-8")).text_length == len("The dog wakes up.")
    assert ready["events"] == {"file": str(events_file), "status": "ok", "write_errors": failed, "last_error": None}
    log = (tmp_path / "server.log").read_text()
    assert log.count(CANNOT_WRITE) == 1
    assert f"prediction events are written to {events_file} again ({failed:.0f} failed writes" in log
