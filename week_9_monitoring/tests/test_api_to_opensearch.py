"""End to end: the API writes prediction events, the shipper ships them, OpenSearch counts what the API answered."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest

from conftest import run_script
from helpers.opensearch_server import OpenSearchServer
from monitoring.event_index import INDEX_PATTERN
from monitoring.event_store import connect
from source import read_split
from support.local_server import local_server


def terms(client, field: str) -> dict[str, int]:
    body = {"size": 0, "aggs": {"a": {"terms": {"field": field, "size": 100}}}}
    buckets = client.search(index=INDEX_PATTERN, body=body)["aggregations"]["a"]["buckets"]
    return {bucket["key"]: bucket["doc_count"] for bucket in buckets}


def test_every_prediction_the_api_made_is_counted_in_opensearch(
    exported: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events_file = tmp_path / "logs" / "events.jsonl"
    sentences = [row["sentence"] for row in read_split("validation")][:40]
    labels: list[str] = []
    request_ids: list[str] = []
    environment = {"EVENTS_FILE": str(events_file), "LOG_TEXT": "true"}
    with local_server(exported["export_dir"], env=environment) as url, httpx.Client(base_url=url) as http:
        for sentence in sentences[:20]:  # 20 single predictions
            answer = http.post("/predict", json={"text": sentence})
            assert answer.status_code == 200
            labels.append(answer.json()["label"])
            request_ids.append(answer.headers["X-Request-ID"])
        for start in range(0, 40, 10):  # 4 batches of 10: 40 more
            answer = http.post("/predict/batch", json={"texts": sentences[start : start + 10]})
            assert answer.status_code == 200
            labels += [prediction["label"] for prediction in answer.json()["predictions"]]
            request_ids.append(answer.headers["X-Request-ID"])
        # A client that reuses its request id: 10 predictions and a batch of 3 under one id, then 4 more.
        reused = {"X-Request-ID": "client-42"}
        for sentence in sentences[:10]:
            answer = http.post("/predict", json={"text": sentence}, headers=reused)
            assert answer.headers["X-Request-ID"] == "client-42"  # kept, and echoed
            labels.append(answer.json()["label"])
        answer = http.post("/predict/batch", json={"texts": sentences[10:13]}, headers=reused)
        labels += [prediction["label"] for prediction in answer.json()["predictions"]]
        for sentence in sentences[13:17]:
            labels.append(http.post("/predict", json={"text": sentence}).json()["label"])
    assert len(labels) == 77

    with OpenSearchServer() as store:
        monkeypatch.setenv("OPENSEARCH_URL", store.url)
        shipped = run_script("-m", "monitoring.shipper", "ship", str(events_file))
        assert shipped.returncode == 0, shipped.stderr
        assert "shipped 77 events" in shipped.stdout

        client = connect(store.url)
        client.indices.refresh(index=INDEX_PATTERN)
        assert client.count(index=INDEX_PATTERN)["count"] == 77  # one document per prediction, none overwritten
        assert terms(client, "label") == dict(Counter(labels))
        assert terms(client, "source") == {"api": 77}
        # A batch's events share its request id: 20 single requests and 4 batches, then the reused id.
        request_counts = terms(client, "request_id")
        assert request_counts["client-42"] == 13 and len(request_counts) == 20 + 4 + 1 + 4
        expected = {rid: 1 for rid in request_ids[:20]} | dict.fromkeys(request_ids[20:], 10)
        assert {rid: request_counts[rid] for rid in request_ids} == expected
        # LOG_TEXT=true: the sentences are searchable, and countable exactly through text.keyword.
        sent = Counter(sentences[:20] + sentences + sentences[:17])  # alone, in batches, then the last phase
        for sentence in sentences[:3]:
            query = {"query": {"term": {"text.keyword": sentence}}}
            assert client.count(index=INDEX_PATTERN, body=query)["count"] == sent[sentence]
