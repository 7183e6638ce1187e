"""Ships prediction events (JSON lines, monitoring/prediction_events.py) from a file into OpenSearch.

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

How a batch reaches OpenSearch (ids, retries, refusals, reading back) is monitoring/event_store.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from opensearchpy import OpenSearch

from errors import CourseError, run_cli
from monitoring.event_store import (
    BATCH_SIZE,
    RetryPolicy,
    ShipResult,
    StoreUnavailable,
    connect,
    ship_events,
    store_url,
)
from monitoring.prediction_events import PredictionEvent, parse_event, read_events

log = logging.getLogger("shipper")

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
