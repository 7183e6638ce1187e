"""The dead-letter file: what could not be shipped, kept with the reason, and `replay` that ships it again.

One JSON object per line, of one of two kinds:

    an event OpenSearch refused (its index is write-blocked, a field breaks the mapping):
    {"failed_at": "2026-11-23T15:04:05.123Z", "index": "predictions-2026.11.23", "status": 403,
     "reason": "cluster_block_exception: ...", "event": {...the event...}}

    a line of the events file that is not a prediction event (half a line left by a crash or a
    full disk, bytes that are not UTF-8, an unknown field):
    {"failed_at": "2026-11-23T15:04:05.123Z", "where": "logs/events.jsonl:17",
     "reason": "logs/events.jsonl:17 is not a prediction event (...)", "line": "{\\"timestamp\\": \\"2026-..."}

`line` is the raw text of the line (bytes that are not UTF-8 become U+FFFD). Fix the cause, or
edit `event` / `line` in the file, then replay it:

    python -m monitoring.shipper replay logs/dead-letter.jsonl

Replay ships every entry that now is a valid event (a `line` is parsed again) and writes the rest
back to the dead-letter file with their new reason: nothing is lost, and a line that is still broken
is reported with where it came from.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from opensearchpy import OpenSearch

from errors import CourseError
from monitoring.event_store import BATCH_SIZE, RetryPolicy, ShipResult, ship_events
from monitoring.prediction_events import BadLine, PredictionEvent, parse_event, utc_timestamp


def parse_line(raw: bytes, where: str) -> PredictionEvent | BadLine:
    """One complete line of an events file: the event, or a BadLine saying why it is not one."""
    try:
        return parse_event(raw.decode("utf-8"), where)
    except UnicodeDecodeError as error:
        reason = f"{where} is not UTF-8 ({error.reason} at byte {error.start})"
    except CourseError as error:
        reason = str(error)
    return BadLine(where=where, line=raw.decode("utf-8", errors="replace").rstrip("\r\n"), reason=reason)


def write_bad_lines(dead_letter: Path, bad_lines: list[BadLine]) -> None:
    """Append lines that are not events to `dead_letter`, each with where it was, why, and its text."""
    if not bad_lines:
        return
    dead_letter.parent.mkdir(parents=True, exist_ok=True)
    failed_at = utc_timestamp()
    text = "".join(
        json.dumps(
            {"failed_at": failed_at, "where": bad.where, "reason": bad.reason, "line": bad.line}, ensure_ascii=False
        )
        + "\n"
        for bad in bad_lines
    )
    with open(dead_letter, "a", encoding="utf-8") as handle:  # one write: never interleaved with another writer's
        handle.write(text)


def read_dead_letters(path: Path, shown_as: Path | None = None) -> tuple[list[PredictionEvent], list[BadLine]]:
    """The entries of a dead-letter file: those that are valid events now, and those that still are not.

    A line that is not an entry at all (not JSON, neither `event` nor `line`) is a CourseError
    naming file:line: the file was edited by hand and must be repaired first.
    """
    events: list[PredictionEvent] = []
    broken: list[BadLine] = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            here = f"{shown_as or path}:{number}"
            try:
                entry = json.loads(text)
            except json.JSONDecodeError as error:
                raise CourseError(
                    f"{here} is not JSON ({error.msg}): a dead-letter file holds one entry a line; repair it, "
                    "then replay again (the file is unchanged)"
                ) from error
            if isinstance(entry, dict) and isinstance(entry.get("event"), dict):
                line = json.dumps(entry["event"], ensure_ascii=False)
                where = here
            elif isinstance(entry, dict) and isinstance(entry.get("line"), str):
                line = entry["line"]
                where = str(entry.get("where") or here)  # where the line came from, for the person fixing it
            else:
                raise CourseError(
                    f'{here} has neither "event" nor "line": not a dead-letter entry written by monitoring/shipper.py'
                )
            parsed = parse_line(line.encode("utf-8"), where)
            (events if isinstance(parsed, PredictionEvent) else broken).append(parsed)
    return events, broken


def append_file(source: Path, target: Path) -> None:
    with open(source, encoding="utf-8", errors="replace") as lines, open(target, "a", encoding="utf-8") as handle:
        handle.write(lines.read())


def replay(
    client: OpenSearch,
    dead_letter: Path,
    *,
    batch_size: int = BATCH_SIZE,
    retry: RetryPolicy = RetryPolicy(),
    on_batch: Callable[[ShipResult], None] | None = None,
) -> ShipResult:
    """Ship the entries of `dead_letter` again; what fails again goes back into a fresh `dead_letter`.

    The result's `rejected` are the events refused again, its `bad_lines` the lines still not events.
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
        events, broken = read_dead_letters(claimed, shown_as=dead_letter)
        result = ship_events(
            client, events, dead_letter=dead_letter, batch_size=batch_size, retry=retry, on_batch=on_batch
        )
        write_bad_lines(dead_letter, broken)
    except BaseException:
        append_file(claimed, dead_letter)  # shipped ones come back too: replaying them again is harmless
        claimed.unlink()
        raise
    claimed.unlink()
    result.bad_lines.extend(broken)
    return result
