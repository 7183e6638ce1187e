"""Ships prediction events (JSON lines, monitoring/prediction_events.py) from a file into OpenSearch.

    python -m monitoring.shipper ship logs/events.jsonl           # every event in the file, then exit
    python -m monitoring.shipper follow logs/events.jsonl         # keep shipping what the API appends (Ctrl-C stops)
    python -m monitoring.shipper follow logs/events.jsonl --once  # ship what is new since the last run, then exit
    python -m monitoring.shipper replay logs/dead-letter.jsonl    # ship again what was dead-lettered

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
- The state file also records which file it was (monitoring/follow_state.py): when logrotate renames
  the file or copies and truncates it, `follow` finishes the old one, then ships the new one from
  its start. One `follow` per events file: a second one is refused (a lock beside the state file).
- An event OpenSearch answers "no" to (it breaks the mapping, its index is write-blocked) is
  reported, count and reasons, and appended with its reason to the dead-letter file
  (dead-letter.jsonl next to the events file); the run exits 1. Fix the cause, then `replay` that file.
- A complete line that is not an event (half a line left by a crash, bytes that are not UTF-8, an
  unknown field) is appended to the dead-letter file with its file:line, reason and text, and skipped:
  the lines after it are shipped, and the run does not fail for it (a restarting `follow` would
  otherwise stop on it again and again). The format of both kinds of entry: monitoring/dead_letter.py.

How a batch reaches OpenSearch (ids, retries, refusals, reading back) is monitoring/event_store.py.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from opensearchpy import OpenSearch

from errors import run_cli
from monitoring.dead_letter import read_dead_letters, replay, write_bad_lines
from monitoring.event_store import (
    BATCH_SIZE,
    RetryPolicy,
    ShipResult,
    StoreUnavailable,
    connect,
    ship_events,
    store_url,
)
from monitoring.follow_state import (
    Chunk,
    EventsFileMissing,
    FileReplaced,
    Position,
    default_state_file,
    find_previous_file,
    follow_lock,
    read_new_events,
    read_position,
    save_position,
    why_not_the_same,
)
from monitoring.prediction_events import BadLine, describe_bad_lines, read_events

__all__ = ["follow", "follow_once", "read_position", "replay", "ship_file"]  # replay lives in dead_letter.py

log = logging.getLogger("shipper")

# ----------------------------------------------------------------------------- following


@dataclass
class Shipping:
    """Where a follow ships to and how: the arguments every step passes on."""

    client: OpenSearch
    state_file: Path
    dead_letter: Path
    batch_size: int
    retry: RetryPolicy
    on_batch: Callable[[ShipResult], None] | None


def ship_chunk(shipping: Shipping, chunk: Chunk) -> ShipResult:
    """Ship a chunk, dead-letter its bad lines, then (only then) save the position after it."""
    result = ship_events(
        shipping.client, chunk.events, dead_letter=shipping.dead_letter, batch_size=shipping.batch_size,
        retry=shipping.retry,
    )  # fmt: skip
    write_bad_lines(shipping.dead_letter, chunk.bad_lines)
    result.bad_lines.extend(chunk.bad_lines)
    # Only now: refused events and bad lines are in the dead-letter file, the others acknowledged.
    save_position(shipping.state_file, chunk.after)
    if shipping.on_batch is not None:
        shipping.on_batch(result)
    return result


def finish_previous_file(shipping: Shipping, events_file: Path, saved: Position, current: Position) -> ShipResult:
    """The events file was replaced: ship the rest of the old one if it is still there, then start the new one."""
    total = ShipResult()
    previous = find_previous_file(events_file, saved, shipping.state_file)
    if previous is not None:
        log.info(
            "%s was rotated or truncated (%s): finishing %s from line %d, then the new file from its start",
            events_file, why_not_the_same(saved, current), previous, saved.line + 1,
        )  # fmt: skip
        position = saved
        while True:
            chunk = read_new_events(previous, position, shipping.batch_size, finish=True)
            if chunk.after.offset == position.offset:
                break
            total.add(ship_chunk(shipping, chunk))
            position = chunk.after
    elif saved.offset > 0:
        log.warning(
            "%s was rotated or truncated (%s) and the file shipped until now is not beside it as %s.*: "
            "what it held after line %d was not shipped; shipping the new file from its start",
            events_file, why_not_the_same(saved, current), events_file.name, saved.line,
        )  # fmt: skip
    save_position(shipping.state_file, current)  # offset 0 of the new file
    return total


def ship_new_lines(shipping: Shipping, events_file: Path) -> ShipResult:
    """Ship every complete line after the saved position; the position moves after each acknowledged batch."""
    total = ShipResult()
    position = read_position(shipping.state_file)
    while True:
        try:
            chunk = read_new_events(events_file, position, shipping.batch_size)
        except FileReplaced as replaced:
            total.add(finish_previous_file(shipping, events_file, position, replaced.current))
            position = replaced.current
            continue
        if chunk.after.offset == position.offset:
            if position.inode is None:  # record which file this is, so a rotation before the next line is seen
                save_position(shipping.state_file, chunk.after)
            return total
        total.add(ship_chunk(shipping, chunk))
        position = chunk.after


def shipping_for(
    client: OpenSearch,
    events_file: Path,
    state_file: Path | None,
    dead_letter: Path | None,
    batch_size: int,
    retry: RetryPolicy,
    on_batch: Callable[[ShipResult], None] | None,
) -> Shipping:
    state_file = Path(state_file) if state_file else default_state_file(events_file)
    dead_letter = Path(dead_letter) if dead_letter else events_file.with_name("dead-letter.jsonl")
    return Shipping(client, state_file, dead_letter, batch_size, retry, on_batch)


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
    """Ship what is new since the saved position, under the lock (CourseError if another shipper holds it)."""
    events_file = Path(events_file)
    shipping = shipping_for(client, events_file, state_file, dead_letter, batch_size, retry, on_batch)
    with follow_lock(shipping.state_file, events_file):
        return ship_new_lines(shipping, events_file)


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
    """Ship new lines every `poll_s` seconds until `stop` is set, under the lock; an unreachable store is waited for."""
    events_file = Path(events_file)
    shipping = shipping_for(client, events_file, state_file, dead_letter, batch_size, retry, on_batch)
    stop = stop or threading.Event()
    total = ShipResult()
    waiting_for_file = False
    with follow_lock(shipping.state_file, events_file):
        while not stop.is_set():
            try:
                total.add(ship_new_lines(shipping, events_file))
                waiting_for_file = False
            except EventsFileMissing as error:
                if not waiting_for_file:  # once, not every poll
                    log.warning("%s; waiting for it", error)
                    waiting_for_file = True
            except StoreUnavailable as error:
                log.warning("%s; the position is kept, trying again in %g s", error, poll_s)
            stop.wait(poll_s)
    return total


def ship_file(
    client: OpenSearch,
    events_file: Path,
    *,
    dead_letter: Path,
    batch_size: int = BATCH_SIZE,
    retry: RetryPolicy = RetryPolicy(),
    on_batch: Callable[[ShipResult], None] | None = None,
) -> ShipResult:
    """Ship every event of a file (no saved position); lines that are not events go to the dead letter."""
    bad_lines: list[BadLine] = []
    result = ship_events(
        client, read_events(events_file, bad_lines), dead_letter=dead_letter, batch_size=batch_size, retry=retry,
        on_batch=on_batch,
    )  # fmt: skip
    write_bad_lines(dead_letter, bad_lines)
    result.bad_lines.extend(bad_lines)
    return result


# ----------------------------------------------------------------------------- command line


def report(result: ShipResult, client: OpenSearch, dead_letter: Path, *, replaying: bool = False) -> None:
    """Print what was shipped and what was dead-lettered; exit 1 when OpenSearch refused events.

    Lines that are not events are reported but do not fail `ship` or `follow`: they are kept in the
    dead-letter file, and failing would make a restarting follower stop on them forever. A replay
    that leaves such lines in the dead-letter file exits 1: they still need a person.
    """
    print(f"shipped {result.shipped} events to {store_url(client)}")
    failed = bool(result.rejected)
    if result.bad_lines:
        if replaying:
            failed = True
            reasons = "; ".join(bad.reason for bad in result.bad_lines[:3])
            print(
                f"{len(result.bad_lines)} dead-letter entries are still not prediction events, kept in {dead_letter} "
                f'({reasons}): fix their "line" there, then replay again',
                file=sys.stderr,
            )
        else:
            print(
                f"{describe_bad_lines(result.bad_lines)}; appended to {dead_letter} with their text "
                f"(fix them there if they matter, then: python -m monitoring.shipper replay {dead_letter})",
                file=sys.stderr,
            )
    if result.rejected:
        print(
            f"{len(result.rejected)} events refused by OpenSearch, appended to {dead_letter} ({result.reasons()}); "
            f"fix the cause, then: python -m monitoring.shipper replay {dead_letter}",
            file=sys.stderr,
        )
    if failed:
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
        count = len(read_dead_letters(args.dead_letter)[0]) if args.dead_letter.exists() else None
        with progress_bar(count, "replaying") as bar:
            result = replay(
                client,
                args.dead_letter,
                batch_size=args.batch_size,
                retry=retry,
                on_batch=lambda r: bar.update(r.shipped),
            )
        report(result, client, args.dead_letter, replaying=True)
        return

    dead_letter = args.dead_letter or args.events_file.with_name("dead-letter.jsonl")
    if args.command == "ship":
        count = sum(1 for _ in read_events(args.events_file, []))  # a first pass, for the progress bar
        with progress_bar(count, "shipping") as bar:
            result = ship_file(
                client,
                args.events_file,
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
        if result.bad_lines:
            log.warning("%s; appended to %s", describe_bad_lines(result.bad_lines), dead_letter)

    with progress_bar(None, "shipped") as bar:
        try:
            follow(client, args.events_file, poll_s=args.poll, on_batch=on_batch, **options)
        except KeyboardInterrupt:
            print("stopped; the next `follow` goes on from the saved position")


if __name__ == "__main__":
    run_cli(main)
