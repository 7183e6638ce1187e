"""Prediction events: one JSON line per prediction from the API and the Lambda, text only when allowed."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from types import ModuleType

import pytest
from fastapi.testclient import TestClient

from app import app
from conftest import import_lambda_handler
from errors import CourseError
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


def sample_event(number: int) -> PredictionEvent:
    return PredictionEvent(
        timestamp=utc_timestamp(),
        event_id=f"e-{number}",
        request_id="r",
        source="api",
        model_version="v1-12345678",
        label="acceptable",
        score=0.9,
        probabilities={"unacceptable": 0.1, "acceptable": 0.9},
        latency_ms=1.0,
        text_length=3,
        word_count=1,
        text_sha256="0" * 64,
    )


def test_a_broken_line_is_reported_with_its_line_and_the_events_after_it_are_read(tmp_path: Path) -> None:
    # What a crash or a full disk leaves: half an event, then the API goes on writing whole ones.
    first, second, third = (to_json_line(sample_event(n)) for n in range(3))
    path = tmp_path / "events.jsonl"
    with open(path, "wb") as handle:
        handle.write(f"{first}\n{second[:72]}{third}\n".encode())
        handle.write(b"\xff\xfe not text\n")
        handle.write(f"{to_json_line(sample_event(3))}\n".encode())
    bad: list[BadLine] = []
    assert [event.event_id for event in read_events(path, bad)] == ["e-0", "e-3"]
    assert [line.where for line in bad] == [f"{path}:2", f"{path}:3"]
    assert bad[0].line == second[:72] + third and "is not a prediction event" in bad[0].reason
    assert "is not UTF-8" in bad[1].reason
    summary = describe_bad_lines(bad)
    assert summary.startswith("skipped 2 line(s) that are not prediction events") and f"{path}:2" in summary
    with pytest.raises(CourseError, match=r"events.jsonl:2 is not a prediction event"):
        list(read_events(path))  # without a list to collect them, a broken line stops the read


def test_an_unfinished_last_line_is_left_for_later(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    whole, half = to_json_line(sample_event(0)), to_json_line(sample_event(1))[:40]
    path.write_text(f"{whole}\n{half}")
    bad: list[BadLine] = []
    assert [event.event_id for event in read_events(path, bad)] == ["e-0"] and bad == []


def test_an_event_with_an_unknown_field_is_refused_not_stripped() -> None:
    line = json.loads(to_json_line(sample_event(0)))
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
