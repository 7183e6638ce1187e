"""monitoring/cloudwatch_to_opensearch.py on CloudWatch Logs payloads built as AWS builds them, into a real store."""

from __future__ import annotations

import base64
import gzip
import json
from collections import Counter
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace

import pytest
from opensearchpy import OpenSearch

from helpers.opensearch_server import OpenSearchServer, point_clis_at
from monitoring import cloudwatch_to_opensearch as forwarder
from monitoring.event_index import INDEX_PATTERN
from monitoring.event_store import RetryPolicy, connect

SENTENCES = [
    "The dogs are chasing a cat.",
    "The dogs is chasing a cat.",
    "Anna will helps the children.",
    "The children were reading a book.",
    "She have seen the film.",
]
LOG_GROUP = "/aws/lambda/cola-classifier"
LOG_STREAM = "2026/11/23/[$LATEST]0f1e2d3c4b5a69788796a5b4c3d2e1f0"


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenSearchServer]:
    with OpenSearchServer() as server:
        point_clis_at(server, monkeypatch)
        monkeypatch.setattr(forwarder, "RETRY", RetryPolicy(retries=1, first_delay_s=0.05))
        yield server


def invoke_lambda(lambda_module: ModuleType, capsys: pytest.CaptureFixture) -> tuple[list[str], list[str]]:
    """Each sentence through the classifier Lambda; (its stdout lines as CloudWatch gets them, the labels)."""
    lines, labels = [], []
    for number, sentence in enumerate(SENTENCES):
        request_id = f"5f0c6a3e-0000-4000-8000-{number:012d}"
        capsys.readouterr()
        answer = lambda_module.handler({"sentence": sentence}, SimpleNamespace(aws_request_id=request_id))
        labels.append(json.loads(answer["body"])["label"])
        printed = capsys.readouterr().out.splitlines()
        assert len(printed) == 1  # exactly one event line per prediction
        # What Lambda itself writes around each invocation, and a log line of the function.
        lines += [
            f"START RequestId: {request_id} Version: $LATEST",
            *printed,
            f"[INFO]\t2026-11-23T10:00:0{number}.000Z\t{request_id}\tclassified one sentence",
            f"END RequestId: {request_id}",
            f"REPORT RequestId: {request_id}\tDuration: 3.21 ms\tBilled Duration: 4 ms\tMemory Size: 1024 MB\t"
            "Max Memory Used: 180 MB\t",
        ]
    return lines, labels


def subscription_event(lines: list[str], message_type: str = "DATA_MESSAGE") -> dict:
    """What a CloudWatch Logs subscription filter sends: {"awslogs": {"data": base64(gzip(JSON))}}."""
    payload = {
        "messageType": message_type,
        "owner": "123456789012",
        "logGroup": LOG_GROUP,
        "logStream": LOG_STREAM,
        "subscriptionFilters": ["predictions-to-opensearch"],
        "logEvents": [
            {"id": f"3719{number:052d}", "timestamp": 1795449600000 + number, "message": line + "\n"}
            for number, line in enumerate(lines)
        ],
    }
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()}}


def labels_in(client: OpenSearch) -> Counter:
    client.indices.refresh(index=INDEX_PATTERN)
    body = {"size": 0, "aggs": {"labels": {"terms": {"field": "label"}}}}
    buckets = client.search(index=INDEX_PATTERN, body=body)["aggregations"]["labels"]["buckets"]
    return Counter({bucket["key"]: bucket["doc_count"] for bucket in buckets})


def test_events_from_the_lambda_logs_are_shipped_and_the_rest_skipped(
    lambda_module: ModuleType, store: OpenSearchServer, capsys: pytest.CaptureFixture
) -> None:
    lines, labels = invoke_lambda(lambda_module, capsys)
    event = subscription_event(lines)

    summary = forwarder.handler(event, None)
    assert summary == {
        "log_group": LOG_GROUP,
        "log_stream": LOG_STREAM,
        "message_type": "DATA_MESSAGE",
        "shipped": 5,
        "skipped": 20,  # START, [INFO], END and REPORT of each invocation
        "failed": 0,
    }
    client = connect(store.url)
    assert labels_in(client) == Counter(labels)
    sources = client.search(index=INDEX_PATTERN, body={"size": 0, "aggs": {"s": {"terms": {"field": "source"}}}})
    assert sources["aggregations"]["s"]["buckets"] == [{"key": "lambda", "doc_count": 5}]

    # Lambda delivers the same batch again after a failure: the events are overwritten, not doubled.
    assert forwarder.handler(event, None)["shipped"] == 5
    assert client.count(index=INDEX_PATTERN)["count"] == 5


def test_a_control_message_is_ignored(store: OpenSearchServer) -> None:
    control = subscription_event(["CWL CONTROL MESSAGE: Checking health of destination Firehose."], "CONTROL_MESSAGE")
    summary = forwarder.handler(control, None)
    assert summary["message_type"] == "CONTROL_MESSAGE"
    assert (summary["shipped"], summary["skipped"], summary["failed"]) == (0, 0, 0)
    assert connect(store.url).count(index=INDEX_PATTERN)["count"] == 0


def gzip_base64(data: bytes) -> str:
    return base64.b64encode(gzip.compress(data)).decode()


MALFORMED = [
    ({}, 'no "awslogs"."data"'),
    ({"awslogs": {"data": "not base64!"}}, "not base64-encoded gzipped JSON"),
    ({"awslogs": {"data": base64.b64encode(b'{"messageType": "DATA_MESSAGE"}').decode()}}, "not base64-encoded"),
    ({"awslogs": {"data": gzip_base64(b"START RequestId: x")}}, "not base64-encoded gzipped JSON"),
    ({"awslogs": {"data": gzip_base64(b'{"logEvents": []}')}}, "holds no messageType"),
    ({"awslogs": {"data": gzip_base64(b'{"messageType": "DATA_MESSAGE"}')}}, "without a logEvents list"),
]


@pytest.mark.parametrize(
    ("event", "message"), MALFORMED, ids=["no-awslogs", "not-base64", "not-gzip", "not-json", "no-type", "no-events"]
)
def test_a_malformed_payload_is_a_clear_error(event: dict, message: str) -> None:
    with pytest.raises(forwarder.BadPayload, match=message):
        forwarder.handler(event, None)


def test_failed_events_are_reported_then_raised_so_lambda_retries(
    lambda_module: ModuleType, store: OpenSearchServer, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    lines, labels = invoke_lambda(lambda_module, capsys)
    broken = '{"event_id": "cut-short", "label": "acceptable"}'  # an event line that lost its fields
    with pytest.raises(forwarder.ShippingFailed, match="1 of 6 events failed"):
        forwarder.handler(subscription_event([*lines, broken]), None)
    assert "cut-short" in caplog.text and '"failed": 1' in caplog.text
    assert labels_in(connect(store.url)) == Counter(labels)  # the good ones are in; the retry rewrites them

    store.stop()  # OpenSearch unreachable: nothing is acknowledged, Lambda must retry the whole batch
    with pytest.raises(forwarder.ShippingFailed, match="5 events not shipped: OpenSearch at .* did not answer"):
        forwarder.handler(subscription_event(lines), None)


def test_an_event_with_an_unknown_field_fails_the_batch_and_is_not_stripped_and_shipped(
    lambda_module: ModuleType, store: OpenSearchServer, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    lines, labels = invoke_lambda(lambda_module, capsys)
    event_lines = [line for line in lines if line.startswith("{")]
    odd = json.loads(event_lines[0])
    odd.update(event_id="with-extra-0", user_id="u-17")  # a field the index's strict mapping does not have
    with pytest.raises(
        forwarder.ShippingFailed, match=r"1 of 6 events failed: .*user_id: Extra inputs are not permitted"
    ):
        forwarder.handler(subscription_event([*lines, json.dumps(odd)]), None)
    assert "with-extra-0" in caplog.text and '"failed": 1' in caplog.text
    client = connect(store.url)
    assert labels_in(client) == Counter(labels)  # the 5 valid events are in, for Lambda's retry to overwrite
    hits = client.search(index=INDEX_PATTERN, body={"size": 100, "query": {"match_all": {}}})["hits"]["hits"]
    assert "with-extra-0" not in {hit["_id"] for hit in hits}  # refused, not shipped without its field
    assert all("user_id" not in hit["_source"] for hit in hits)
