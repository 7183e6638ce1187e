"""The OpenSearch side of shipping: connect, bulk-index a batch with retries, dead letters, read back.

monitoring/shipper.py uses it to ship a file of events; the CloudWatch forwarder to ship a Lambda's.

- Each event goes into its day's index (monitoring/event_index.py) with `_id = event_id`. Shipping an event
  twice overwrites it, so a replay, a restart or a retried batch never makes a duplicate.
- A request that fails for a passing reason (no connection, a timeout, 429, 502, 503, 504) is
  retried with exponential back-off: 0.5, 1, 2, 4, 8 s by default, then shipping stops with an error.
- An event OpenSearch answers "no" to (it breaks the mapping, its index is write-blocked) is
  returned as rejected, with its reason, for the dead-letter file.

    from monitoring.event_store import connect, fetch_events
    events = fetch_events(connect(), since="2026-11-23T00:00:00Z")   # what the drift job reads
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from opensearchpy import ConnectionError, ConnectionTimeout, OpenSearch, TransportError

from errors import CourseError
from monitoring.event_index import INDEX_PATTERN, ensure_template, index_name
from monitoring.prediction_events import BadLine, PredictionEvent, utc_timestamp

log = logging.getLogger("shipper")


DEFAULT_URL = "http://127.0.0.1:9200"
BATCH_SIZE = 500
# Statuses that say "not now" rather than "no": the cluster is overloaded or a proxy lost it.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


class StoreUnavailable(CourseError):
    """OpenSearch did not answer (or only with 'not now') after every retry; the events were not shipped."""


@dataclass(frozen=True)
class RetryPolicy:
    """`retries` more tries after the first: wait first_delay_s, then twice as long each time, up to max_delay_s."""

    retries: int = 5
    first_delay_s: float = 0.5
    max_delay_s: float = 8.0

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (0 for the first retry)."""
        return min(self.first_delay_s * 2**retry, self.max_delay_s)


@dataclass
class Rejected:
    """One event OpenSearch refused: the document sent, where, and why."""

    document: dict
    index: str
    status: int | None
    reason: str


@dataclass
class ShipResult:
    """What one call shipped: the count acknowledged, every refused event, every line that was not an event."""

    shipped: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    bad_lines: list[BadLine] = field(default_factory=list)  # read from a file, never sent: see dead_letter.py

    def add(self, other: ShipResult) -> None:
        self.shipped += other.shipped
        self.rejected.extend(other.rejected)
        self.bad_lines.extend(other.bad_lines)

    def reasons(self, first: int = 3) -> str:
        """The distinct reasons of the first refusals, e.g. `403 cluster_block_exception: ...`."""
        distinct = dict.fromkeys(f"{r.status or '-'} {r.reason}" for r in self.rejected)
        return "; ".join(list(distinct)[:first])


# ----------------------------------------------------------------------------- connecting


def connect(url: str | None = None, user: str | None = None, password: str | None = None) -> OpenSearch:
    """A client for OPENSEARCH_URL (or `url`), logged in when OPENSEARCH_USER/OPENSEARCH_PASSWORD are set."""
    url = url or os.environ.get("OPENSEARCH_URL") or DEFAULT_URL
    user = user or os.environ.get("OPENSEARCH_USER")
    password = password or os.environ.get("OPENSEARCH_PASSWORD")
    if bool(user) != bool(password):
        raise CourseError("set both OPENSEARCH_USER and OPENSEARCH_PASSWORD, or neither")
    # max_retries=0: the client's own retries do not wait between tries; ship_batch retries with back-off.
    return OpenSearch(
        hosts=[url], http_auth=(user, password) if user else None, timeout=10, max_retries=0, retry_on_timeout=False
    )


def store_url(client: OpenSearch) -> str:
    """The URL the client talks to, without credentials (for messages)."""
    return client.transport.connection_pool.connections[0].host


def is_transient(error: TransportError) -> bool:
    return isinstance(error, ConnectionError) or error.status_code in RETRYABLE_STATUSES


def explain(error: TransportError) -> str:
    """A short reason: `connection refused`, `timed out`, `503 ...`."""
    if isinstance(error, ConnectionTimeout):
        return "timed out"
    if isinstance(error, ConnectionError):
        return "connection refused" if "refused" in str(error).lower() else str(error.info)
    return f"{error.status_code} {error.error}"


def request_failed(client: OpenSearch, error: TransportError, tries: int) -> CourseError:
    """The CourseError for a request that failed for good."""
    where = store_url(client)
    if is_transient(error):
        return StoreUnavailable(
            f"OpenSearch at {where} did not answer after {tries} tries ({explain(error)}): "
            "start it (see the README), or set OPENSEARCH_URL to where it runs"
        )
    if error.status_code == 401:
        return CourseError(
            f"OpenSearch at {where} refused the login (401): check OPENSEARCH_USER and OPENSEARCH_PASSWORD"
        )
    if error.status_code == 403:
        return CourseError(
            f"OpenSearch at {where} forbids this user to write {INDEX_PATTERN} (403): grant it write access"
        )
    return CourseError(f"OpenSearch at {where} answered {explain(error)}: the request was refused as a whole")


# ----------------------------------------------------------------------------- shipping


def reason_of(error: dict | str) -> str:
    """`type: reason` from a bulk item's error object."""
    if isinstance(error, dict):
        return f"{error.get('type', 'error')}: {error.get('reason', '')}"
    return str(error)


def ship_batch(client: OpenSearch, events: list[PredictionEvent], retry: RetryPolicy = RetryPolicy()) -> ShipResult:
    """Index `events` in one bulk request, retrying transient failures; StoreUnavailable if they never stop.

    Items OpenSearch refuses for good come back in `rejected`; items it keeps answering 429 for
    are refused too once the retries are spent. Nothing is dropped: every event is either
    acknowledged, in `rejected`, or the call raises (and the caller still has the events).
    """
    result = ShipResult()
    pending: list[tuple[str, dict]] = []  # (index, document) still to be acknowledged
    for event in events:
        document = event.model_dump(exclude_none=True)
        try:
            pending.append((index_name(event.timestamp), document))
        except CourseError as error:
            result.rejected.append(Rejected(document, "", None, str(error)))
    last_error: TransportError | None = None
    last_reasons: dict[str, str] = {}
    for attempt in range(retry.retries + 1):
        if not pending:
            break
        if attempt > 0:
            time.sleep(retry.delay(attempt - 1))
        body: list[dict] = []
        for index, document in pending:
            body += [{"index": {"_index": index, "_id": document["event_id"]}}, document]
        try:
            # Every time, not once: a store that restarted empty has lost the template too.
            ensure_template(client)
            response = client.bulk(body=body)
        except TransportError as error:
            if not is_transient(error):
                raise request_failed(client, error, attempt + 1) from error
            last_error = error
            continue
        last_error = None
        again = []
        for (index, document), item in zip(pending, response["items"], strict=True):
            outcome = item["index"]
            status = outcome["status"]
            if status < 300:
                result.shipped += 1
            elif status in RETRYABLE_STATUSES:
                again.append((index, document))
                last_reasons[document["event_id"]] = reason_of(outcome.get("error", ""))
            else:
                result.rejected.append(Rejected(document, index, status, reason_of(outcome.get("error", ""))))
        pending = again
    if last_error is not None:  # the last try did not get an answer at all
        raise request_failed(client, last_error, retry.retries + 1) from last_error
    for index, document in pending:  # answered, but "not now" to the very end
        reason = f"still refused after {retry.retries + 1} tries ({last_reasons[document['event_id']]})"
        result.rejected.append(Rejected(document, index, 429, reason))
    return result


def write_dead_letters(dead_letter: Path, rejected: list[Rejected]) -> None:
    """Append refused events, one JSON line each with why, to `dead_letter` (replay reads them)."""
    dead_letter.parent.mkdir(parents=True, exist_ok=True)
    failed_at = utc_timestamp()
    lines = "".join(
        json.dumps(
            {"failed_at": failed_at, "index": r.index, "status": r.status, "reason": r.reason, "event": r.document},
            ensure_ascii=False,
        )
        + "\n"
        for r in rejected
    )
    # One write in append mode: a line is never interleaved with another writer's.
    with open(dead_letter, "a", encoding="utf-8") as handle:
        handle.write(lines)


def batched(events: Iterable[PredictionEvent], size: int) -> Iterator[list[PredictionEvent]]:
    batch: list[PredictionEvent] = []
    for event in events:
        batch.append(event)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def ship_events(
    client: OpenSearch,
    events: Iterable[PredictionEvent],
    *,
    dead_letter: Path | None = None,
    batch_size: int = BATCH_SIZE,
    retry: RetryPolicy = RetryPolicy(),
    on_batch: Callable[[ShipResult], None] | None = None,
) -> ShipResult:
    """Ship `events` batch by batch; refused ones are appended to `dead_letter` when given (and always returned).

    With dead_letter=None the caller owns the refused events in the result (the CloudWatch Lambda
    raises so that Lambda retries). StoreUnavailable says how many were shipped before it.
    """
    total = ShipResult()
    for batch in batched(events, batch_size):
        try:
            result = ship_batch(client, batch, retry)
        except StoreUnavailable as error:
            if total.shipped:
                raise StoreUnavailable(
                    f"{error}; {total.shipped} events were shipped before, shipping them again is safe (_id = event_id)"
                ) from error
            raise
        if dead_letter is not None and result.rejected:
            write_dead_letters(dead_letter, result.rejected)
        total.add(result)
        if on_batch is not None:
            on_batch(result)
    return total


# ----------------------------------------------------------------------------- reading back


def fetch_events(
    client: OpenSearch,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    size: int | None = None,
    index: str = INDEX_PATTERN,
    page_size: int = 1000,
) -> list[PredictionEvent]:
    """The events with since <= timestamp < until, oldest first; with `size`, only the newest `size` of them.

    Pages with search_after (newest first, event_id breaking ties), so any number of events can
    be read without the 10,000-hit window or a scroll context to clean up.
    """
    bounds = {}
    if since is not None:
        bounds["gte"] = since.isoformat() if isinstance(since, datetime) else since
    if until is not None:
        bounds["lt"] = until.isoformat() if isinstance(until, datetime) else until
    query = {"range": {"timestamp": bounds}} if bounds else {"match_all": {}}
    events: list[PredictionEvent] = []
    search_after = None
    while size is None or len(events) < size:
        wanted = page_size if size is None else min(page_size, size - len(events))
        body = {"query": query, "size": wanted, "sort": [{"timestamp": "desc"}, {"event_id": "desc"}]}
        if search_after is not None:
            body["search_after"] = search_after
        try:
            hits = client.search(index=index, body=body)["hits"]["hits"]
        except TransportError as error:
            raise request_failed(client, error, 1) from error
        events += [PredictionEvent.model_validate(hit["_source"]) for hit in hits]
        if len(hits) < wanted:
            break
        search_after = hits[-1]["sort"]
    events.reverse()
    return events
