"""The labelling queue: which production sentences a person should label first, as a CSV to fill in.

    python -m monitoring.labelling_queue --events logs/events.jsonl --out labelling/queue.csv
    python -m monitoring.labelling_queue --events logs/events.jsonl --out labelling/queue.csv --top 50 --last 1000

Labels cost a person's time, so spend it where it teaches the model most:

  uncertain  the model could barely decide: 1 - |p(acceptable) - p(unacceptable)|
  oov        the share of its words that the model never saw in training
  domain     a classifier can tell it apart from the reference sentences (monitoring/drift.py's domain
             classifier, scored out of fold: by a model that did not see the sentence)

priority = the weighted sum of the three (weights in monitoring/monitoring.yaml), each between 0 and 1.
Sentences are de-duplicated (case and spacing ignored); `seen` counts how often each arrived.
Events need their text (LOG_TEXT=true); events without it cannot be labelled and are counted.

The CSV, one row per sentence, highest priority first:

    rank,sentence,predicted_label,score,priority,reason,seen,label
    1,The servers has crashed.,acceptable,0.52,0.81,uncertain: margin 0.04; outlier: 40% words unseen in training,3,

The annotator writes 1 (acceptable) or 0 (unacceptable) in `label`, the same coding as
data/train.csv; `python -m monitoring.labelled_data FILE` checks the filled-in rows and adds them as a new data version.
A sentence that a spreadsheet would take for a formula (it starts with = + - @) is written with a
single quote in front, and read back without it (monitoring/spreadsheet_csv.py).

The events file is streamed and only the window is kept (--last, --since), so memory does not grow
with the file; lines that are not events are skipped and named on stderr. The queue never
overwrites labels: when --out holds a queue with labels filled in, it stops (write to a new file,
or pass --force); a queue nobody has labelled yet is replaced.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from errors import CourseError, run_cli
from monitoring.prediction_events import BadLine, PredictionEvent, describe_bad_lines
from monitoring.spreadsheet_csv import csv_rows, escape_cell, read_csv_text, unescape_cell

if TYPE_CHECKING:  # monitoring/drift.py loads scikit-learn and SciPy: only building a queue needs them, not the CSV
    from monitoring.drift_reference import MonitoringConfig, QueueWeights, Reference

CSV_COLUMNS = ["rank", "sentence", "predicted_label", "score", "priority", "reason", "seen", "label"]
# When a signal is worth naming in `reason`.
UNCERTAIN_MARGIN = 0.5
UNLIKE_REFERENCE = 0.5  # the domain signal, 2 * P(production) - 1: P(production) of 0.75 or more


@dataclass
class QueueItem:
    """One row of the queue. `label` is empty until a person fills it in."""

    rank: int
    sentence: str
    predicted_label: str
    score: float
    priority: float
    reason: str
    seen: int
    label: str = ""


def normalise(text: str) -> str:
    """The de-duplication key: case-folded, runs of whitespace collapsed to one space."""
    return " ".join(text.split()).casefold()


# ----------------------------------------------------------------------------------- CSV


def write_queue_csv(items: list[QueueItem], path: Path) -> Path:
    """Write the queue as CSV (header CSV_COLUMNS); `read_queue_csv` gives back equal items.

    Written to a temporary file first and renamed over `path`: a crash never leaves half a queue.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8", newline="") as handle:
        # CRLF, as RFC 4180 has it: the writer then quotes a sentence holding a bare \r, which would
        # otherwise read back as a line break
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
        writer.writeheader()
        for item in items:
            # repr() of a float reads back as exactly the same float
            writer.writerow(
                {
                    **asdict(item),
                    "sentence": escape_cell(item.sentence),
                    "score": repr(item.score),
                    "priority": repr(item.priority),
                }
            )
    os.replace(temporary, path)
    return path


def read_queue_csv(path: Path) -> list[QueueItem]:
    """The items of a queue CSV, labels as the annotator left them; CourseError naming a bad row."""
    path = Path(path)
    try:
        text = read_csv_text(path)
    except OSError as error:
        raise CourseError(
            f"cannot read the queue {path} ({error.strerror}): write it with monitoring/labelling_queue.py"
        ) from error
    reader = csv_rows(path, text)
    missing = [column for column in CSV_COLUMNS if column not in (reader.fieldnames or [])]
    if missing:
        raise CourseError(
            f"{path} lacks the column(s) {', '.join(missing)}: keep the header monitoring/labelling_queue.py wrote"
        )
    items, end_of_previous = [], 1  # the header ends on line 1
    for row in reader:
        line, end_of_previous = end_of_previous + 1, reader.line_num  # a sentence may span lines: name its first
        try:
            items.append(
                QueueItem(
                    rank=int(row["rank"]),
                    sentence=unescape_cell(row["sentence"]),
                    predicted_label=row["predicted_label"],
                    score=float(row["score"]),
                    priority=float(row["priority"]),
                    reason=row["reason"],
                    seen=int(row["seen"]),
                    label=row["label"] or "",
                )
            )
        except (TypeError, ValueError) as error:
            raise CourseError(
                f"{path}:{line} is not a queue row ({error}): restore it from the file written"
            ) from error
    return items


# ----------------------------------------------------------------------------------- ranking


@dataclass
class Candidate:
    """One distinct sentence, as first seen, with how often it came and its three signals."""

    event: PredictionEvent
    seen: int = 1
    margin: float = 0.0
    oov: float = 0.0
    domain: float = 0.0


def margin_of(event: PredictionEvent) -> float:
    """The gap between the two most likely labels: 0 = a coin toss, 1 = certain."""
    top = sorted(event.probabilities.values(), reverse=True)
    return top[0] - top[1] if len(top) > 1 else top[0]


def reason_for(candidate: Candidate, weights: QueueWeights) -> str:
    """Why the sentence is in the queue: the signals worth naming, the one adding most priority first."""
    margin, oov, domain = candidate.margin, candidate.oov, candidate.domain
    signals = [
        (weights.uncertainty * (1 - margin), margin < UNCERTAIN_MARGIN, f"uncertain: margin {margin:.2f}"),
        (weights.oov * oov, oov > 0, f"outlier: {oov:.0%} words unseen in training"),
        (
            weights.domain * domain,
            domain >= UNLIKE_REFERENCE,
            f"unlike the reference: P(production) {(domain + 1) / 2:.2f}",
        ),
    ]
    named = [text for _, flagged, text in sorted(signals, key=lambda signal: signal[0], reverse=True) if flagged]
    return "; ".join(named) if named else f"confident and familiar: margin {margin:.2f}"


def build_queue(
    events: list[PredictionEvent], reference: Reference, config: MonitoringConfig, top: int | None = None
) -> list[QueueItem]:
    """The ranked, de-duplicated queue of the events that carry text (the `top` first, or all).

    `reference` and `config` are monitoring/drift.py's Reference and MonitoringConfig: the queue uses the
    training vocabulary and the domain classifier of the drift check.
    """
    from monitoring.drift_reference import oov_rate
    from monitoring.drift_statistics import domain_classifier_scores

    candidates: dict[str, Candidate] = {}
    for event in events:
        if event.text is None:
            continue
        key = normalise(event.text)
        if key in candidates:
            candidates[key].seen += 1
        else:
            candidates[key] = Candidate(event)
    if not candidates:
        raise CourseError("no event carries its text, so there is nothing to label: run the service with LOG_TEXT=true")
    unique = list(candidates.values())
    vocabulary = set(reference.vocabulary)
    for candidate in unique:
        candidate.margin = margin_of(candidate.event)
        candidate.oov = oov_rate(candidate.event.text, vocabulary)
    _, production = domain_classifier_scores(reference.texts, [c.event.text for c in unique], config.domain_classifier)
    for candidate, probability in zip(unique, production, strict=True):
        # 0 where the classifier cannot tell (P = 0.5) or takes it for a reference sentence; 1 when sure.
        candidate.domain = max(0.0, 2 * float(probability) - 1)

    weights = config.labelling_queue.weights
    priorities = np.array(
        [weights.uncertainty * (1 - c.margin) + weights.oov * c.oov + weights.domain * c.domain for c in unique]
    )
    # Highest priority first; among equals the more frequent, then the earlier sentence.
    order = sorted(range(len(unique)), key=lambda i: (-priorities[i], -unique[i].seen, i))
    if top is not None:
        order = order[:top]
    return [
        QueueItem(
            rank=rank,
            sentence=unique[i].event.text,
            predicted_label=unique[i].event.label,
            score=round(unique[i].event.score, 4),
            priority=round(float(priorities[i]), 4),
            reason=reason_for(unique[i], weights),
            seen=unique[i].seen,
        )
        for rank, i in enumerate(order, start=1)
    ]


def labels_in(path: Path) -> int:
    """How many rows of the queue at `path` have a label filled in; CourseError when it is not a queue."""
    try:
        text = read_csv_text(path)
        reader = csv_rows(path, text)
        if "label" not in (reader.fieldnames or []):
            raise CourseError(f"{path} has no label column")
        return sum(bool((row["label"] or "").strip()) for row in reader)
    except (OSError, CourseError, csv.Error) as error:
        raise CourseError(
            f"--out {path} exists and is not a labelling queue ({error}): choose another --out path, "
            "or pass --force to overwrite it"
        ) from error


def check_out(path: Path, force: bool) -> str:
    """Refuse to overwrite labels someone filled in; what will happen to an existing `path`, for the output."""
    if not path.exists():
        return ""
    if force:
        return " (--force: replaced the file that was there)"
    filled = labels_in(path)
    if filled:
        raise CourseError(
            f"--out {path} holds a queue with {filled} label(s) filled in: write the new queue to another "
            f"file (--out {path.with_name(path.stem + '-2' + path.suffix)}), or pass --force to overwrite the labels"
        )
    return " (replaced the queue that was there: none of its rows had a label)"


def main() -> None:
    from monitoring.drift import read_window
    from monitoring.drift_reference import CONFIG_PATH, load_config, load_reference

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=Path, required=True, help="a JSON-lines events file (EVENTS_FILE)")
    parser.add_argument("--out", type=Path, default=Path("labelling/queue.csv"), help="default: labelling/queue.csv")
    parser.add_argument("--top", type=int, help="rows to write (default: labelling_queue.top in the config)")
    parser.add_argument("--last", type=int, help="only the last N events")
    parser.add_argument("--since", help="only events at or after this time, e.g. 2026-11-23T15:00:00Z")
    parser.add_argument("--reference", type=Path, help="default: reference.path in monitoring/monitoring.yaml")
    parser.add_argument("--config", type=Path, default=CONFIG_PATH, help="default: monitoring/monitoring.yaml")
    parser.add_argument("--force", action="store_true", help="overwrite --out even when it holds labels")
    args = parser.parse_args()
    config = load_config(args.config)
    top = config.labelling_queue.top if args.top is None else args.top
    if top < 1:
        raise CourseError(f"--top {top}: give a positive number of rows")
    replaced = check_out(args.out, args.force)  # before any work: refusing late would waste it
    reference = load_reference(args.reference or config.reference_path())
    bad_lines: list[BadLine] = []
    events = read_window(args.events, bad_lines, last=args.last, since=args.since)
    if bad_lines:
        print(describe_bad_lines(bad_lines), file=sys.stderr)
    without_text = sum(e.text is None for e in events)
    items = build_queue(events, reference, config, top)
    write_queue_csv(items, args.out)
    covered = sum(item.seen for item in items)
    print(
        f"{args.out}: {len(items)} sentences to label (they were sent {covered} times in {len(events)} events)"
        + replaced
    )
    if without_text:
        print(f"{without_text} events carry no text and cannot be labelled (set LOG_TEXT=true)", file=sys.stderr)
    for item in items[:5]:
        print(f"{item.rank:>4}  {item.priority:.2f}  {item.sentence}  [{item.reason}]")


if __name__ == "__main__":
    run_cli(main)
