"""One structured JSON event per prediction: what monitoring, drift detection and labelling read.

Both serving paths emit the same event, one JSON object per line:
  the API (app.py)                 on stdout, and appended to EVENTS_FILE when it is set
  the Lambda (lambda_handler.py)   on stdout, which Lambda sends to CloudWatch Logs

    {"timestamp": "2026-11-23T15:04:05.123Z", "event_id": "5b7d...-0", "request_id": "9f0c...",
     "source": "api", "model_version": "v2-4a02ff46", "data_version": "v2",
     "label": "acceptable", "score": 0.93, "probabilities": {"unacceptable": 0.07, "acceptable": 0.93},
     "latency_ms": 1.8, "text_length": 27, "word_count": 6, "text_sha256": "5c1e...", "text": "..."}

`text` is there only when LOG_TEXT=true (settings.py): sentences a user typed can be personal
data, so by default an event carries their SHA-256 and length, never the words. Drift tests on
the words and the labelling queue need the text, so a deployment that wants them opts in.

    grep '"label": "unacceptable"' events.jsonl      # the events are plain JSON lines
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from errors import CourseError


class PredictionEvent(BaseModel):
    """The fields of one event; the OpenSearch index template maps exactly these."""

    # An unknown field is refused, not silently dropped: the index's `dynamic: strict` would refuse
    # it too, so an event that carries one is a writer's bug to see in the dead letter.
    model_config = ConfigDict(extra="forbid")

    timestamp: str = Field(description="when the prediction was made, ISO 8601 in UTC")
    event_id: str = Field(
        description="unique per prediction, always made by the server; the document id in OpenSearch, "
        "so a replay never duplicates"
    )
    request_id: str = Field(
        description="the HTTP request (the client's X-Request-ID when it sent one) or Lambda invocation; "
        "a batch shares one, and a client may reuse it"
    )
    source: Literal["api", "lambda"]
    model_version: str = Field(description="data version + checkpoint hash, from the export's model_config.json")
    data_version: str | None = None
    label: str
    score: float = Field(ge=0.0, le=1.0)
    probabilities: dict[str, float]
    latency_ms: float = Field(ge=0.0, description="model time for the request this prediction belongs to")
    text_length: int = Field(ge=0, description="characters")
    word_count: int = Field(ge=0)
    text_sha256: str
    text: str | None = None


def utc_timestamp(moment: datetime | None = None) -> str:
    """`2026-11-23T15:04:05.123Z`: millisecond precision, the format OpenSearch's date type reads."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def new_request_id() -> str:
    return uuid.uuid4().hex


def build_event(
    result: dict,
    text: str,
    *,
    request_id: str,
    index: int,
    source: Literal["api", "lambda"],
    model_config: dict,
    latency_ms: float,
    log_text: bool,
    timestamp: str | None = None,
    event_prefix: str | None = None,
) -> PredictionEvent:
    """The event for one prediction `result` (as ColaOnnxPredictor returns it) of `text`.

    event_id is `<event_prefix>-<index>`. The prefix must be made by the server for each request
    (default: the request id, which is server-made only where no client can choose it, as Lambda's
    invocation id): a client that reuses its X-Request-ID must never make two predictions share a
    document id, or OpenSearch keeps only the last of them.
    """
    return PredictionEvent(
        timestamp=timestamp or utc_timestamp(),
        event_id=f"{event_prefix or request_id}-{index}",
        request_id=request_id,
        source=source,
        model_version=str(model_config.get("model_version") or "unknown"),
        data_version=model_config.get("data_version"),
        label=result["label"],
        score=result["score"],
        probabilities=result["probabilities"],
        latency_ms=round(latency_ms, 3),
        text_length=len(text),
        word_count=len(text.split()),
        text_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        text=text if log_text else None,
    )


def to_json_line(event: PredictionEvent) -> str:
    """One line of JSON (no newline inside), fields in a fixed order; `text` left out when not logged."""
    return json.dumps(event.model_dump(exclude_none=True), ensure_ascii=False, separators=(", ", ": "))


class EventSink:
    """Writes events as JSON lines to stdout and, optionally, appends them to a file.

    The lines of one emit() reach the file in one os.write() on an O_APPEND descriptor, under a
    lock (a thread lock, and flock for the other uvicorn workers), so the shipper
    (monitoring/shipper.py) following the file never sees lines of two requests interleaved.

    Serving never fails because the file cannot be written (a full disk, a read-only mount,
    /dev/full): emit() still prints the events on stdout, undoes a short write (the file is cut
    back to its old size, so no half line is left in it), counts the failure, calls `on_error`
    (the API counts it in Prometheus) and logs once per outage: one line when writing starts to
    fail, one when it works again. state() tells /ready how the file is doing.
    """

    def __init__(
        self,
        events_file: Path | None = None,
        stream=None,
        on_error: Callable[[OSError], None] | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.events_file = Path(events_file) if events_file else None
        self.stream = stream
        self.on_error = on_error
        self.log = log or logging.getLogger(__name__)
        self.write_errors = 0  # failed writes to the file since start-up
        self.last_error: str | None = None  # set while the file cannot be written
        self._lock = threading.Lock()
        if self.events_file is not None:
            try:
                self.events_file.parent.mkdir(parents=True, exist_ok=True)
            except OSError:
                pass  # the first emit() reports it, counted and logged like any failed write

    def emit(self, events: list[PredictionEvent]) -> None:
        lines = "".join(to_json_line(event) + "\n" for event in events)
        with self._lock:
            stream = self.stream or sys.stdout  # looked up late: pytest and Lambda swap sys.stdout
            stream.write(lines)
            stream.flush()
            if self.events_file is None:
                return
            try:
                append_whole(self.events_file, lines.encode("utf-8"))
            except OSError as error:
                self._failed(error)
            else:
                self._written()

    def state(self) -> dict:
        """For /ready: where events go and whether the file is being written."""
        if self.events_file is None:
            status = "stdout only"
        else:
            status = "failing" if self.last_error else "ok"
        return {
            "file": str(self.events_file) if self.events_file else None,
            "status": status,
            "write_errors": self.write_errors,
            "last_error": self.last_error,
        }

    def _failed(self, error: OSError) -> None:
        self.write_errors += 1
        if self.last_error is None:  # the first failure of an outage: log it, once
            self.log.error(
                "cannot write prediction events to %s (%s): predictions are still answered and the "
                "events printed on stdout, but they are missing from the file until it can be written "
                "again (counted in prediction_events_write_errors_total)",
                self.events_file,
                error.strerror or error,
            )
        self.last_error = error.strerror or str(error)
        if self.on_error is not None:
            self.on_error(error)

    def _written(self) -> None:
        if self.last_error is not None:
            self.log.warning(
                "prediction events are written to %s again (%d failed writes since start-up)",
                self.events_file,
                self.write_errors,
            )
            self.last_error = None


def append_whole(path: Path, data: bytes) -> None:
    """Append `data` to `path` in one write, or leave the file as it was and raise OSError.

    A write that stops short (the disk filled up half-way) is cut back to the file's old size:
    a half line would be a broken event for every reader. flock keeps other processes (uvicorn
    workers) from appending between the size read here and the cut.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released by os.close
        size_before = os.fstat(fd).st_size
        try:
            written = os.write(fd, data)
        except OSError:
            cut_back(fd, size_before)  # a failed write can still have left bytes behind
            raise
        if written != len(data):
            cut_back(fd, size_before)
            raise OSError(errno.ENOSPC, f"short write, {written} of {len(data)} bytes (disk full?)")
    finally:
        os.close(fd)


def cut_back(fd: int, size: int) -> None:
    """Truncate to `size` where the file allows it (a regular file does; /dev/full or a pipe does not)."""
    with contextlib.suppress(OSError):
        if os.fstat(fd).st_size > size:
            os.ftruncate(fd, size)


def parse_event(line: str, where: str = "") -> PredictionEvent:
    """One event from one JSON line; CourseError naming `where` (file:line) when it is not one."""
    try:
        return PredictionEvent.model_validate_json(line)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'line'}: {e['msg']}" for e in error.errors())
        raise CourseError(f"{where or 'event'} is not a prediction event ({problems})") from error


@dataclass(frozen=True)
class BadLine:
    """A line of an events file that is not a prediction event, with where it was and why."""

    where: str  # file:line
    line: str
    reason: str


def read_events(path: Path, bad_lines: list[BadLine] | None = None) -> Iterator[PredictionEvent]:
    """Every event in a JSON-lines file, in order; blank lines are skipped.

    A last line without its newline is still being written (the API is mid-write): it is left out.
    A complete line that is not an event (half a line left by a crash or a full disk, a hand edit)
    is appended to `bad_lines` and skipped, so one broken line never hides the events after it;
    without a `bad_lines` list it stops the read with a CourseError naming file:line.
    """
    path = Path(path)
    try:
        handle = open(path, "rb")
    except OSError as error:
        raise CourseError(
            f"cannot read events from {path} ({error.strerror}): start the API with EVENTS_FILE={path}"
        ) from error
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):
                return  # unfinished last line
            if not raw.strip():
                continue
            where = f"{path}:{number}"
            try:
                yield parse_event(raw.decode("utf-8"), where)
            except (CourseError, UnicodeDecodeError) as error:
                text = raw.decode("utf-8", errors="replace").rstrip("\n")
                reason = str(error) if isinstance(error, CourseError) else f"{where} is not UTF-8 ({error.reason})"
                if bad_lines is None:
                    raise CourseError(reason) from error
                bad_lines.append(BadLine(where=where, line=text, reason=reason))


def describe_bad_lines(bad_lines: list[BadLine], first: int = 3) -> str:
    """One line for a report: how many lines were skipped, and the first few of them with their reason."""
    shown = "; ".join(bad.reason for bad in bad_lines[:first])
    more = f" (and {len(bad_lines) - first} more)" if len(bad_lines) > first else ""
    return f"skipped {len(bad_lines)} line(s) that are not prediction events: {shown}{more}"
