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

import hashlib
import json
import sys
import threading
import uuid
from collections.abc import Iterator
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

    The file is opened in append mode and each line is written whole under a lock, so the
    shipper (monitoring/shipper.py) can follow it while the service writes.
    """

    def __init__(self, events_file: Path | None = None, stream=None) -> None:
        self.events_file = Path(events_file) if events_file else None
        self.stream = stream
        self._lock = threading.Lock()
        if self.events_file is not None:
            self.events_file.parent.mkdir(parents=True, exist_ok=True)

    def emit(self, events: list[PredictionEvent]) -> None:
        lines = "".join(to_json_line(event) + "\n" for event in events)
        with self._lock:
            stream = self.stream or sys.stdout  # looked up late: pytest and Lambda swap sys.stdout
            stream.write(lines)
            stream.flush()
            if self.events_file is not None:
                with open(self.events_file, "a", encoding="utf-8") as handle:
                    handle.write(lines)


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
