"""Test helper: prediction events made the way the API makes them, from sentences and the exported model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from inference_onnx import ColaOnnxPredictor
from monitoring.prediction_events import PredictionEvent, build_event, to_json_line, utc_timestamp

START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def predict_events(
    predictor: ColaOnnxPredictor,
    sentences: list[str],
    *,
    log_text: bool = True,
    first_second: int = 0,
    request_id: str = "test",
) -> list[PredictionEvent]:
    """One event per sentence, as app.py would log it; event i is stamped START + first_second + i seconds."""
    results = predictor.predict_batch(sentences)
    return [
        build_event(
            result,
            sentence,
            request_id=request_id,
            index=first_second + i,
            source="api",
            model_config=predictor.config,
            latency_ms=1.0,
            log_text=log_text,
            timestamp=utc_timestamp(START + timedelta(seconds=first_second + i)),
        )
        for i, (result, sentence) in enumerate(zip(results, sentences, strict=True))
    ]


def write_events(path: Path, events: list[PredictionEvent]) -> Path:
    """A JSON-lines events file, as EventSink writes it."""
    path.write_text("".join(to_json_line(event) + "\n" for event in events), encoding="utf-8")
    return path
