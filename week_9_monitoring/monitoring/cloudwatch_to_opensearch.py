"""A Lambda function that forwards the classifier Lambda's prediction events from CloudWatch Logs to OpenSearch.

    CloudWatch Logs group /aws/lambda/cola-classifier
        --subscription filter--> this function (handler) --bulk--> OpenSearch predictions-YYYY.MM.DD

A subscription filter delivers batches of log lines as {"awslogs": {"data": "<base64 of gzip of JSON>"}};
the JSON holds messageType, logGroup, logStream and logEvents [{id, timestamp, message}].
lambda_handler.py prints one event line per prediction (prediction_events.to_json_line), so each
log event whose message is such a line is shipped with monitoring/shipper.py (_id = event_id). Everything
else in the group (Lambda's START / END / REPORT lines, log lines) is counted as skipped.

Failure policy: OpenSearch refusing an event, or not answering, or a line that looks like an event
(JSON with an event_id) but is not a valid one, is a failure. An event with a field the event does
not define is such a line: it is refused, never shipped without that field (PredictionEvent
forbids unknown fields, as the index's `dynamic: strict` mapping does). The function logs the count and the
first reasons, then raises. A subscription invokes it asynchronously, so Lambda retries the same
batch twice; the events that were shipped are overwritten, not duplicated. If it still fails, Lambda
sends the batch to the function's on-failure destination: configure one (an SQS queue) so that
nothing is lost; replay from there once the cause is fixed.

Settings (environment): OPENSEARCH_URL, OPENSEARCH_USER, OPENSEARCH_PASSWORD, as for monitoring/shipper.py.
Test it locally: tests/test_cloudwatch_to_opensearch.py builds the payload the way AWS does.
"""

from __future__ import annotations

import base64
import binascii
import functools
import gzip
import json
import logging
import os
import zlib
from typing import Any

from opensearchpy import OpenSearch

from errors import CourseError
from monitoring.event_store import DEFAULT_URL, RetryPolicy, connect, ship_events
from monitoring.prediction_events import PredictionEvent, parse_event

log = logging.getLogger(__name__)
log.setLevel(logging.INFO)

# Lambda bills the wait: retry briefly (0.5 + 1 + 2 s), then let Lambda's own retries take over.
RETRY = RetryPolicy(retries=3)


class BadPayload(CourseError):
    """The invocation event is not a CloudWatch Logs subscription payload."""


class ShippingFailed(RuntimeError):
    """Some events were not shipped; raised so that Lambda retries the batch (and keeps it if retries fail)."""


def decode_payload(event: Any) -> dict:
    """The JSON inside {"awslogs": {"data": base64(gzip(json))}}; BadPayload naming what is wrong."""
    try:
        data = event["awslogs"]["data"]
    except (TypeError, KeyError) as error:
        raise BadPayload(
            'the event has no "awslogs"."data": invoke this function from a CloudWatch Logs subscription filter'
        ) from error
    try:
        payload = json.loads(gzip.decompress(base64.b64decode(data, validate=True)))
    except (binascii.Error, OSError, EOFError, zlib.error, ValueError) as error:
        # in that order: not base64; not gzip; cut short; corrupt; not JSON
        raise BadPayload(f"awslogs.data is not base64-encoded gzipped JSON ({error})") from error
    if not isinstance(payload, dict) or "messageType" not in payload:
        raise BadPayload("awslogs.data holds no messageType: not a CloudWatch Logs subscription payload")
    if payload["messageType"] == "DATA_MESSAGE" and not isinstance(payload.get("logEvents"), list):
        raise BadPayload("a DATA_MESSAGE without a logEvents list: not a CloudWatch Logs subscription payload")
    return payload


def event_candidate(message: str) -> dict | None:
    """The JSON object of a line meant to be a prediction event (it has an event_id), else None."""
    try:
        candidate = json.loads(message)
    except ValueError:
        return None
    return candidate if isinstance(candidate, dict) and "event_id" in candidate else None


def split_messages(payload: dict) -> tuple[list[PredictionEvent], int, list[str]]:
    """(events, count of other lines skipped, reasons of event-like lines that are not valid events)."""
    events: list[PredictionEvent] = []
    skipped = 0
    broken: list[str] = []
    for log_event in payload["logEvents"]:
        message = str(log_event.get("message", "")).strip()
        candidate = event_candidate(message)
        if candidate is None:
            skipped += 1  # START / END / REPORT, log lines, anything that is not an event
            continue
        where = f"event_id {candidate['event_id']!r} (log event {log_event.get('id')})"
        try:
            events.append(parse_event(message, where))
        except CourseError as error:
            broken.append(str(error))
    return events, skipped, broken


@functools.lru_cache(maxsize=4)
def client_for(url: str, user: str | None, password: str | None) -> OpenSearch:
    """One client per execution environment (per setting), reused by every invocation."""
    return connect(url, user, password)


def forward(payload: dict, client: OpenSearch) -> dict:
    """Ship the events of one decoded payload; the summary, or ShippingFailed after logging what failed."""
    summary = {"log_group": payload.get("logGroup"), "log_stream": payload.get("logStream")}
    if payload["messageType"] != "DATA_MESSAGE":  # CONTROL_MESSAGE: CloudWatch checking it can reach us
        return {**summary, "message_type": payload["messageType"], "shipped": 0, "skipped": 0, "failed": 0}
    events, skipped, broken = split_messages(payload)
    try:
        result = ship_events(client, events, retry=RETRY)
    except CourseError as error:  # OpenSearch unreachable or refusing the login: nothing or part shipped
        log.error("cannot ship %d events from %s: %s", len(events), payload.get("logStream"), error)
        raise ShippingFailed(f"{len(events)} events not shipped: {error}") from error
    reasons = broken[:3] + [f"{r.status} {r.reason}" for r in result.rejected[:3]]
    summary.update(
        message_type="DATA_MESSAGE", shipped=result.shipped, skipped=skipped, failed=len(broken) + len(result.rejected)
    )
    if summary["failed"]:
        log.error("summary %s; first reasons: %s", json.dumps(summary), " | ".join(reasons))
        raise ShippingFailed(f"{summary['failed']} of {len(events) + len(broken)} events failed: {reasons[0]}")
    log.info("summary %s", json.dumps(summary))
    return summary


def handler(event: Any, context: Any) -> dict:
    """Lambda entry point: decode the subscription payload and forward its prediction events."""
    client = client_for(
        os.environ.get("OPENSEARCH_URL") or DEFAULT_URL,
        os.environ.get("OPENSEARCH_USER"),
        os.environ.get("OPENSEARCH_PASSWORD"),
    )
    return forward(decode_payload(event), client)
