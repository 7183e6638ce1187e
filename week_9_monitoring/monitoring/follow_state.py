"""The file `shipper follow` reads: its saved position and identity, the lines after it, the lock (one shipper a file).

The state file (EVENTS.offset.json) holds the position and the identity of the file it belongs to:

    {"offset": 48210, "line": 97, "inode": 1311813, "device": 2049, "size": 48950,
     "first_line_sha256": "9b1f..."}

A byte offset alone is not enough: logrotate may rename the file (a new file, a new inode, under
the old name) or copy and truncate it (the same inode, new content from byte 0). The identity tells
the shipper whether the file it sees is still the one it was shipping:

- the same file:   same inode and device, not shorter than the offset, the same first line;
- otherwise the old one is looked for among its siblings (EVENTS.*): the same inode (renamed,
  e.g. events.jsonl.1) or the same first line (a copy made before a truncation). The shipper
  finishes it from the saved offset, then ships the new file from its start.

A state file written before identities were recorded has only offset and line: the file counts as
the same while it is at least `offset` bytes long.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from errors import CourseError
from monitoring.dead_letter import parse_line
from monitoring.prediction_events import BadLine, PredictionEvent

# The first line's hash reads at most this much: an event line is well under 1 KiB.
FIRST_LINE_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Position:
    """How far a file has been shipped (bytes to seek, lines to name file:line) and which file that was."""

    offset: int = 0
    line: int = 0
    inode: int | None = None
    device: int | None = None
    size: int | None = None  # the file's size when the position was saved
    first_line_sha256: str | None = None  # None while the file has no complete first line


def identity_of(handle) -> Position:
    """The identity of an open file (inode, device, size, hash of its first complete line), at offset 0."""
    status = os.fstat(handle.fileno())
    head = os.pread(handle.fileno(), FIRST_LINE_LIMIT, 0)
    end = head.find(b"\n")
    if end >= 0:
        first_line = head[: end + 1]
    elif len(head) == FIRST_LINE_LIMIT:
        first_line = head  # a very long first line: its first 64 KiB identify it
    else:
        first_line = None  # not written completely yet
    digest = hashlib.sha256(first_line).hexdigest() if first_line is not None else None
    return Position(inode=status.st_ino, device=status.st_dev, size=status.st_size, first_line_sha256=digest)


def identity_of_path(path: Path) -> Position | None:
    try:
        with open(path, "rb") as handle:
            return identity_of(handle)
    except OSError:
        return None


def same_file(saved: Position, current: Position) -> bool:
    """Whether `current` (an identity) is the file `saved` was shipping, as the module docstring says."""
    if current.size < saved.offset:
        return False  # shorter than what was shipped: truncated
    if saved.inode is None:
        return True  # an old state file without identity: the size is all there is to check
    if (saved.inode, saved.device) != (current.inode, current.device):
        return False
    return saved.first_line_sha256 is None or saved.first_line_sha256 == current.first_line_sha256


def why_not_the_same(saved: Position, current: Position) -> str:
    """A few words for the log: what changed."""
    if current.size < saved.offset:
        return f"it is {current.size} bytes, shorter than the {saved.offset} already shipped"
    if saved.inode is not None and (saved.inode, saved.device) != (current.inode, current.device):
        return f"it is a new file (inode {current.inode}, was {saved.inode})"
    return "its first line changed (truncated and written again)"


def find_previous_file(events_file: Path, saved: Position, state_file: Path) -> Path | None:
    """The file `saved` was shipping, if it is still beside `events_file` under another name (EVENTS.*).

    Renamed (logrotate's default): the same inode and device. Copied before a truncation
    (logrotate's copytruncate): the same first line. Either way at least `offset` bytes long.
    """
    if saved.inode is None and saved.first_line_sha256 is None:
        return None  # an old state file: nothing to recognise the file by
    ours = {state_file.name, lock_file(state_file).name}
    siblings = sorted(
        path
        for path in events_file.parent.glob(events_file.name + ".*")
        if path.name not in ours and not path.name.endswith(".tmp") and path.is_file()
    )
    candidates = [(path, identity_of_path(path)) for path in siblings]
    candidates = [(path, found) for path, found in candidates if found is not None and found.size >= saved.offset]
    for path, found in candidates:  # renamed: the inode says it for sure
        if saved.inode is not None and (found.inode, found.device) == (saved.inode, saved.device):
            if saved.first_line_sha256 in (None, found.first_line_sha256):
                return path
    for path, found in candidates:  # copied: the first line says it
        if saved.first_line_sha256 is not None and found.first_line_sha256 == saved.first_line_sha256:
            return path
    return None


# ----------------------------------------------------------------------------- reading the events file


class EventsFileMissing(CourseError):
    """The events file does not exist (yet)."""


class FileReplaced(Exception):
    """The events file is not the one the saved position belongs to (rotated or truncated)."""

    def __init__(self, current: Position) -> None:
        super().__init__("the events file was replaced")
        self.current = current


@dataclass
class Chunk:
    """What one read found after a position: events, lines that are not events, and the position after them."""

    events: list[PredictionEvent]
    bad_lines: list[BadLine]
    after: Position


def read_new_events(events_file: Path, start: Position, limit: int, *, finish: bool = False) -> Chunk:
    """Up to `limit` lines after `start`: the events, the lines that are not events, and the position after them.

    A last line without its newline is still being written: it is left for the next call, unless
    `finish` (a rotated file nobody writes to any more: such a line is a crash's leftover, a bad line).
    FileReplaced when the file is not the one `start` belongs to (checked unless `finish`).
    """
    try:
        handle = open(events_file, "rb")
    except FileNotFoundError as error:
        raise EventsFileMissing(
            f"no events file {events_file}: start the API with EVENTS_FILE={events_file}"
        ) from error
    events: list[PredictionEvent] = []
    bad_lines: list[BadLine] = []
    offset, line = start.offset, start.line
    with handle:
        identity = identity_of(handle)
        if not finish and not same_file(start, identity):
            raise FileReplaced(identity)
        handle.seek(start.offset)
        while len(events) + len(bad_lines) < limit:
            raw = handle.readline()
            if not raw or (not raw.endswith(b"\n") and not finish):
                break
            offset += len(raw)
            line += 1
            where = f"{events_file}:{line}"
            if not raw.endswith(b"\n"):
                text = raw.decode("utf-8", errors="replace")
                reason = f"{where} is the unfinished last line of a rotated file (its writer stopped mid-line)"
                bad_lines.append(BadLine(where=where, line=text, reason=reason))
                break
            if raw.strip():
                parsed = parse_line(raw, where)
                (events if isinstance(parsed, PredictionEvent) else bad_lines).append(parsed)
    after = replace(identity, offset=offset, line=line, size=max(identity.size, offset))
    return Chunk(events, bad_lines, after)


# ----------------------------------------------------------------------------- the state file


def default_state_file(events_file: Path) -> Path:
    return events_file.with_name(events_file.name + ".offset.json")


def read_position(state_file: Path) -> Position:
    """The saved position; the start of the file when there is no state file yet."""
    try:
        saved = json.loads(state_file.read_text(encoding="utf-8"))
        identity = {
            name: saved.get(name) for name in ("inode", "device", "size", "first_line_sha256")
        }  # absent in old state files
        for name in ("inode", "device", "size"):
            if identity[name] is not None:
                identity[name] = int(identity[name])
        return Position(offset=int(saved["offset"]), line=int(saved["line"]), **identity)
    except FileNotFoundError:
        return Position()
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise CourseError(
            f"{state_file} is not a shipper state file ({error}): delete it to ship the events file from the start "
            "(already shipped events are overwritten, not duplicated)"
        ) from error


def save_position(state_file: Path, position: Position) -> None:
    """Write the position atomically: a crash leaves the old state or the new one, never half a file.

    The temporary file has a name of its own (mkstemp), so two processes never write the same one.
    """
    descriptor, temporary = tempfile.mkstemp(dir=state_file.parent, prefix=state_file.name + ".", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(asdict(position)) + "\n")
        os.replace(temporary, state_file)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------- one shipper per file


def lock_file(state_file: Path) -> Path:
    return state_file.with_name(state_file.name + ".lock")


@contextmanager
def follow_lock(state_file: Path, events_file: Path) -> Iterator[Path]:
    """Hold an exclusive lock next to the state file; CourseError at once when another shipper holds it.

    flock is released by the kernel when the process ends, however it ends (even SIGKILL), so a
    crashed shipper never leaves a stale lock behind. The lock file itself stays: removing it
    while another process waits on it would let two shippers in.
    """
    path = lock_file(state_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise CourseError(
                f"another shipper is already following {events_file} (it holds the lock {path}): "
                "stop it first; one shipper per events file"
            ) from error
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")  # who holds it, for a person looking
        handle.flush()
        yield path
    finally:
        handle.close()  # closing releases the lock
