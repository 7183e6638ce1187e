"""Prometheus metrics of the model itself, beside the HTTP metrics of prometheus-fastapi-instrumentator.

    cola_prediction_score      histogram of the predicted label's probability (the model's confidence)
    cola_predictions_total     counter of predictions, one series per predicted label
    cola_prediction_events_write_errors_total   failed writes of prediction events to EVENTS_FILE

The score distribution is an early warning that needs no labels: when inputs drift away from
the training data, a classifier's confidence usually drops before anyone measures its accuracy.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from prometheus_client import Counter, Histogram
from prometheus_fastapi_instrumentator import Instrumentator, metrics

# The score of the predicted label of a 2-class model is never below 0.5: finer buckets near 1.0.
SCORE_BUCKETS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.975, 0.99, 1.0)

PREDICTION_SCORE = Histogram(
    "cola_prediction_score",
    "Probability of the predicted label, per prediction.",
    buckets=SCORE_BUCKETS,
)
PREDICTIONS = Counter("cola_predictions_total", "Predictions made, by predicted label.", ["label"])
# Serving goes on when EVENTS_FILE cannot be written (app.py), so this counter is how to notice.
EVENT_WRITE_ERRORS = Counter(
    "cola_prediction_events_write_errors_total",
    "Writes of a request's prediction events to EVENTS_FILE that failed (those events are missing from the file).",
)
# The instrumentator's default latency buckets start at 10 ms; a prediction takes 1-3 ms here.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def observe(label: str, score: float) -> None:
    """Count one prediction and record its score."""
    PREDICTIONS.labels(label=label).inc()
    PREDICTION_SCORE.observe(score)


def count_event_write_error(error: OSError) -> None:
    """EventSink's on_error: one failed write of prediction events."""
    EVENT_WRITE_ERRORS.inc()


def instrument(app: FastAPI) -> None:
    """Add request metrics (count, latency, sizes per handler) and GET /metrics to `app`."""
    instrumentator = Instrumentator(excluded_handlers=["/metrics"])
    instrumentator.add(metrics.default(latency_highr_buckets=LATENCY_BUCKETS))
    # Documented as what it is, Prometheus's text format (the default would say application/json).
    documented = {200: {"description": "Prometheus text exposition format", "content": {"text/plain": {}}}}
    instrumentator.instrument(app).expose(
        app, endpoint="/metrics", response_class=PlainTextResponse, responses=documented
    )


def start_label_series(labels: list[str]) -> None:
    """Create every label's counter at 0, so a label not predicted yet reads 0, not a missing series."""
    for label in labels:
        PREDICTIONS.labels(label=label)
