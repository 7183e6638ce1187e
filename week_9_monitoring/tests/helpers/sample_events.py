"""Made-up prediction events with known labels, scores and times, for the OpenSearch tests (no model needed).

make_events(150)        # one a minute from 2026-11-23 22:00 UTC: two days, two daily indices
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitoring.prediction_events import PredictionEvent, build_event, to_json_line, utc_timestamp

MODEL_CONFIG = {"model_version": "v2-test", "data_version": "v2"}
START = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)


def make_event(number: int, start: datetime = START, request_id: str = "req", **fields: object) -> PredictionEvent:
    """Event `number`: made `number` minutes after `start`; every third unacceptable; scores 0.55, 0.65 ... 0.95.

    `fields` replace fields without validation, to make events OpenSearch should refuse.
    """
    label = "unacceptable" if number % 3 == 0 else "acceptable"
    score = round(0.55 + 0.1 * (number % 5), 2)  # mid-bucket: a 0.1 histogram puts each in a known bucket
    other = "acceptable" if label == "unacceptable" else "unacceptable"
    result = {"label": label, "score": score, "probabilities": {label: score, other: round(1 - score, 2)}}
    event = build_event(
        result,
        f"Sentence number {number} is here.",
        request_id=request_id,
        index=number,
        source="api",
        model_config=MODEL_CONFIG,
        latency_ms=1.0 + number % 7,
        log_text=True,
        timestamp=utc_timestamp(start + timedelta(minutes=number)),
    )
    return event.model_copy(update=fields)


def make_events(count: int, first: int = 0, **kwargs: object) -> list[PredictionEvent]:
    """Events number `first` to `first + count - 1`."""
    return [make_event(number, **kwargs) for number in range(first, first + count)]


def write_events(path: Path, events: list[PredictionEvent]) -> None:
    """Append `events` to a JSON-lines file as the API does."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(to_json_line(event) + "\n" for event in events))
