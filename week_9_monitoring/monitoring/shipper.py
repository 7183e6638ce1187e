"""Ships prediction events (JSON lines, monitoring/prediction_events.py) into OpenSearch, and reads them back.

    python -m monitoring.shipper ship logs/events.jsonl           # every event in the file, then exit
    python -m monitoring.shipper follow logs/events.jsonl         # keep shipping what the API appends (Ctrl-C stops)
    python -m monitoring.shipper follow logs/events.jsonl --once  # ship what is new since the last run, then exit
    python -m monitoring.shipper replay logs/dead-letter.jsonl    # ship again the events OpenSearch refused

OPENSEARCH_URL (default http://127.0.0.1:9200) says where; OPENSEARCH_USER and OPENSEARCH_PASSWORD,
when set, log in (basic auth).

What it promises:
- Each event goes into its day's index (monitoring/event_index.py) with `_id = event_id`. Shipping an event
  twice overwrites it, so a replay, a restart or a retried batch never makes a duplicate.
- A request that fails for a passing reason (no connection, a timeout, 429, 502, 503, 504) is
  retried with exponential back-off: 0.5, 1, 2, 4, 8 s by default, then the shipper gives up.
- When OpenSearch does not answer, the shipper stops with an error and nothing is lost: the
  events are still in the file. `follow` keeps its read position in a state file
  (EVENTS.offset.json) and moves it only after OpenSearch acknowledged a batch, so stopping
  OpenSearch (or the shipper) in the middle of a burst loses nothing.
- An event OpenSearch answers "no" to (it breaks the mapping, its index is write-blocked) is
  reported, count and reasons, and appended with its reason to the dead-letter file
  (dead-letter.jsonl next to the events file). Fix the cause, then `replay` that file.

    from monitoring.shipper import connect, fetch_events
    events = fetch_events(connect(), since="2026-11-23T00:00:00Z")   # what the drift job reads
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from opensearchpy import ConnectionError, ConnectionTimeout, OpenSearch, TransportError

from errors import CourseError, run_cli
from monitoring.event_index import INDEX_PATTERN, ensure_template, index_name
from monitoring.prediction_events import PredictionEvent, parse_event, read_events, utc_timestamp

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
    """What one call shipped: the count acknowledged and every refused event."""

    shipped: int = 0
    rejected: list[Rejected] = field(default_factory=list)

    def add(self, other: ShipResult) -> None:
        self.shipped += other.shipped
        self.rejected.extend(other.rejected)

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


# ----------------------------------------------------------------------------- replaying


def read_dead_letters(path: Path, shown_as: Path | None = None) -> list[PredictionEvent]:
    """The events of a dead-letter file; CourseError naming file:line for a line that is not an entry."""
    events = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{shown_as or path}:{number}"
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as error:
                raise CourseError(
                    f"{where} is not JSON ({error.msg}): a dead-letter file holds one entry a line"
                ) from error
            if not isinstance(entry, dict) or not isinstance(entry.get("event"), dict):
                raise CourseError(f'{where} has no "event": not a dead-letter entry written by monitoring/shipper.py')
            events.append(parse_event(json.dumps(entry["event"]), where))
    return events


def append_file(source: Path, target: Path) -> None:
    with open(source, encoding="utf-8") as lines, open(target, "a", encoding="utf-8") as handle:
        handle.write(lines.read())


def replay(
    client: OpenSearch,
    dead_letter: Path,
    *,
    batch_size: int = BATCH_SIZE,
    retry: RetryPolicy = RetryPolicy(),
    on_batch: Callable[[ShipResult], None] | None = None,
) -> ShipResult:
    """Ship the events of `dead_letter` again; those refused again are appended to a fresh `dead_letter`.

    The file is first renamed to DEAD_LETTER.replaying, so a `follow` that appends to the
    dead-letter file meanwhile writes a new one, and no line is lost between reading and removing.
    If the replay fails (OpenSearch down), its lines go back into the dead-letter file.
    """
    dead_letter = Path(dead_letter)
    claimed = dead_letter.with_name(dead_letter.name + ".replaying")
    if claimed.exists():  # left by a replay that was killed: give its lines back first
        append_file(claimed, dead_letter)
        claimed.unlink()
    if not dead_letter.exists():
        raise CourseError(f"no dead-letter file {dead_letter}: nothing was refused, or the path is wrong")
    dead_letter.rename(claimed)
    try:
        events = read_dead_letters(claimed, shown_as=dead_letter)
        result = ship_events(
            client, events, dead_letter=dead_letter, batch_size=batch_size, retry=retry, on_batch=on_batch
        )
    except BaseException:
        append_file(claimed, dead_letter)  # shipped ones come back too: replaying them again is harmless
        claimed.unlink()
        raise
    claimed.unlink()
    return result


# ----------------------------------------------------------------------------- following


class EventsFileMissing(CourseError):
    """The events file does not exist (yet)."""


@dataclass(frozen=True)
class Position:
    """How far the events file has been shipped: bytes (to seek) and lines (to name file:line in errors)."""

    offset: int = 0
    line: int = 0


def default_state_file(events_file: Path) -> Path:
    return events_file.with_name(events_file.name + ".offset.json")


def read_position(state_file: Path) -> Position:
    """The saved position; the start of the file when there is no state file yet."""
    try:
        saved = json.loads(state_file.read_text(encoding="utf-8"))
        return Position(offset=int(saved["offset"]), line=int(saved["line"]))
    except FileNotFoundError:
        return Position()
    except (ValueError, KeyError, TypeError) as error:
        raise CourseError(
            f"{state_file} is not a shipper state file ({error}): delete it to ship the events file from the start "
            "(already shipped events are overwritten, not duplicated)"
        ) from error


def save_position(state_file: Path, position: Position) -> None:
    """Write the position atomically: a crash leaves the old state or the new one, never half a file."""
    temporary = state_file.with_name(state_file.name + ".tmp")
    temporary.write_text(json.dumps({"offset": position.offset, "line": position.line}) + "\n", encoding="utf-8")
    os.replace(temporary, state_file)


def read_new_events(events_file: Path, start: Position, limit: int) -> tuple[list[PredictionEvent], Position]:
    """Up to `limit` events from the complete lines after `start`, and the position after them.

    A last line without its newline is still being written: it is left for the next call.
    """
    try:
        handle = open(events_file, "rb")
    except FileNotFoundError as error:
        raise EventsFileMissing(
            f"no events file {events_file}: start the API with EVENTS_FILE={events_file}"
        ) from error
    events: list[PredictionEvent] = []
    offset, line = start.offset, start.line
    with handle:
        if os.fstat(handle.fileno()).st_size < start.offset:
            raise CourseError(
                f"{events_file} is shorter than the {start.offset} bytes already shipped: it was truncated or "
                "replaced. Delete its .offset.json state file to ship it from the start (no duplicates)"
            )
        handle.seek(start.offset)
        while len(events) < limit:
            raw = handle.readline()
            if not raw.endswith(b"\n"):
                break
            offset += len(raw)
            line += 1
            text = raw.decode("utf-8", errors="replace")
            if text.strip():
                events.append(parse_event(text, f"{events_file}:{line}"))
    return events, Position(offset, line)


def follow_once(
    client: OpenSearch,
    events_file: Path,
    *,
    state_file: Path | None = None,
    dead_letter: Path | None = None,
    batch_size: int = BATCH_SIZE,
    retry: RetryPolicy = RetryPolicy(),
    on_batch: Callable[[ShipResult], None] | None = None,
) -> ShipResult:
    """Ship every complete line after the saved position; the position moves after each acknowledged batch."""
    events_file = Path(events_file)
    state_file = Path(state_file) if state_file else default_state_file(events_file)
    dead_letter = Path(dead_letter) if dead_letter else events_file.with_name("dead-letter.jsonl")
    total = ShipResult()
    position = read_position(state_file)
    while True:
        events, after = read_new_events(events_file, position, batch_size)
        if after == position:
            return total
        result = ship_events(client, events, dead_letter=dead_letter, batch_size=batch_size, retry=retry)
        # Only now: refused events are in the dead-letter file, the others acknowledged.
        save_position(state_file, after)
        position = after
        total.add(result)
        if on_batch is not None:
            on_batch(result)


def follow(
    client: OpenSearch,
    events_file: Path,
    *,
    state_file: Path | None = None,
    dead_letter: Path | None = None,
    batch_size: int = BATCH_SIZE,
    retry: RetryPolicy = RetryPolicy(),
    poll_s: float = 1.0,
    stop: threading.Event | None = None,
    on_batch: Callable[[ShipResult], None] | None = None,
) -> ShipResult:
    """follow_once every `poll_s` seconds until `stop` is set; an unreachable store is waited for, not fatal."""
    stop = stop or threading.Event()
    total = ShipResult()
    waiting_for_file = False
    while not stop.is_set():
        try:
            total.add(
                follow_once(
                    client,
                    events_file,
                    state_file=state_file,
                    dead_letter=dead_letter,
                    batch_size=batch_size,
                    retry=retry,
                    on_batch=on_batch,
                )
            )
            waiting_for_file = False
        except EventsFileMissing as error:
            if not waiting_for_file:  # once, not every poll
                log.warning("%s; waiting for it", error)
                waiting_for_file = True
        except StoreUnavailable as error:
            log.warning("%s; the position is kept, trying again in %g s", error, poll_s)
        stop.wait(poll_s)
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


# ----------------------------------------------------------------------------- command line


def report(result: ShipResult, client: OpenSearch, dead_letter: Path | None) -> None:
    """Print what was shipped; exit 1 when some events were refused (they are in the dead-letter file)."""
    print(f"shipped {result.shipped} events to {store_url(client)}")
    if result.rejected:
        where = f", appended to {dead_letter}" if dead_letter else ""
        print(
            f"{len(result.rejected)} events refused by OpenSearch{where} ({result.reasons()}); "
            f"fix the cause, then: python -m monitoring.shipper replay {dead_letter}",
            file=sys.stderr,
        )
        sys.exit(1)


def progress_bar(total: int | None, description: str):
    from tqdm import tqdm  # the CLI's only: library calls stay quiet

    return tqdm(total=total, unit="event", desc=description, disable=None)  # None: off when not a terminal


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    ship_cmd = commands.add_parser("ship", help="ship every event of a JSON-lines file, then exit")
    follow_cmd = commands.add_parser("follow", help="ship what is appended to the events file, as it comes")
    replay_cmd = commands.add_parser("replay", help="ship the events of a dead-letter file again")
    for command in (ship_cmd, follow_cmd):
        command.add_argument("events_file", type=Path, help="the API's EVENTS_FILE, e.g. logs/events.jsonl")
        command.add_argument(
            "--dead-letter", type=Path, help="where refused events go (default: dead-letter.jsonl beside the events)"
        )
    replay_cmd.add_argument("dead_letter", type=Path, help="a dead-letter file written by ship or follow")
    follow_cmd.add_argument("--state", type=Path, help="the read position (default: EVENTS_FILE.offset.json)")
    follow_cmd.add_argument("--once", action="store_true", help="ship what is new, then exit")
    follow_cmd.add_argument("--poll", type=float, default=1.0, help="seconds between looks at the file (default 1)")
    for command in (ship_cmd, follow_cmd, replay_cmd):
        command.add_argument(
            "--batch-size", type=int, default=BATCH_SIZE, help=f"events a request (default {BATCH_SIZE})"
        )
        command.add_argument("--retries", type=int, default=RetryPolicy.retries, help="retries of a failed request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    # The client logs each failed request with a traceback; the shipper reports failures itself, in one line.
    logging.getLogger("opensearch").setLevel(logging.CRITICAL)
    retry = RetryPolicy(retries=args.retries)
    client = connect()

    if args.command == "replay":
        count = len(read_dead_letters(args.dead_letter)) if args.dead_letter.exists() else None
        with progress_bar(count, "replaying") as bar:
            result = replay(
                client,
                args.dead_letter,
                batch_size=args.batch_size,
                retry=retry,
                on_batch=lambda r: bar.update(r.shipped),
            )
        report(result, client, args.dead_letter)
        return

    dead_letter = args.dead_letter or args.events_file.with_name("dead-letter.jsonl")
    if args.command == "ship":
        # A first pass checks every line (a bad one stops here, before anything is shipped) and counts them.
        count = sum(1 for _ in read_events(args.events_file))
        with progress_bar(count, "shipping") as bar:
            result = ship_events(
                client,
                read_events(args.events_file),
                dead_letter=dead_letter,
                batch_size=args.batch_size,
                retry=retry,
                on_batch=lambda r: bar.update(r.shipped + len(r.rejected)),
            )
        report(result, client, dead_letter)
        return

    options = dict(state_file=args.state, dead_letter=dead_letter, batch_size=args.batch_size, retry=retry)
    if args.once:
        report(follow_once(client, args.events_file, **options), client, dead_letter)
        return
    print(f"following {args.events_file} into {store_url(client)} (Ctrl-C stops; the position is kept)")

    def on_batch(result: ShipResult) -> None:
        bar.update(result.shipped)
        if result.rejected:
            log.warning("%d events refused, appended to %s (%s)", len(result.rejected), dead_letter, result.reasons())

    with progress_bar(None, "shipped") as bar:
        try:
            follow(client, args.events_file, poll_s=args.poll, on_batch=on_batch, **options)
        except KeyboardInterrupt:
            print("stopped; the next `follow` goes on from the saved position")


if __name__ == "__main__":
    run_cli(main)
