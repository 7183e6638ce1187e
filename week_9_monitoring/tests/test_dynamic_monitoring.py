"""Week 9's POST /predict/dynamic is monitored as /predict is: one event per prediction, X-Request-ID, /metrics."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from test_prediction_events import SENTENCES, started_app
from test_prometheus import requests_by_handler_and_status, values_of

from monitoring.prediction_events import read_events


def test_dynamic_predictions_are_events_and_metrics_like_predict(exported: dict, tmp_path: Path) -> None:
    client, events_file = started_app(exported, tmp_path, log_text=True)
    texts = SENTENCES * 4
    try:
        before = client.get("/metrics").text

        def post(index: int) -> object:
            headers = {"X-Request-ID": f"dynamic-{index}"}
            return client.post("/predict/dynamic", json={"text": texts[index]}, headers=headers)

        with ThreadPoolExecutor(max_workers=len(texts)) as pool:  # concurrent: they share batches
            answers = list(pool.map(post, range(len(texts))))
        refused = client.post("/predict/dynamic", json={"text": " "})
        after = client.get("/metrics").text
    finally:
        client.__exit__(None, None, None)
    assert [a.status_code for a in answers] == [200] * len(texts) and refused.status_code == 422
    assert [a.headers["X-Request-ID"] for a in answers] == [f"dynamic-{i}" for i in range(len(texts))]
    events = {event.request_id: event for event in read_events(events_file)}
    assert len(events) == len(texts)  # one per prediction, none for the refused request
    for index, answer in enumerate(answers):
        event = events[f"dynamic-{index}"]
        assert event.source == "api" and event.text == texts[index] and event.latency_ms > 0
        assert event.label == answer.json()["label"] and event.score == pytest.approx(answer.json()["score"])
    labels = Counter(answer.json()["label"] for answer in answers)
    counted = {
        label: values_of(after, "cola_predictions_total", by="label")[label]
        - values_of(before, "cola_predictions_total", by="label")[label]
        for label in labels
    }
    assert counted == dict(labels)
    requests = requests_by_handler_and_status(after) - requests_by_handler_and_status(before)
    assert requests[("/predict/dynamic", "2xx")] == len(texts) and requests[("/predict/dynamic", "4xx")] == 1
