"""Drift detection: does recent production traffic still look like the data the model was trained on?

    python -m monitoring.drift reference                         # once per model: artifacts/monitoring/reference.json
    python -m monitoring.drift check --events logs/events.jsonl  # the tests as a table, and a verdict
    python -m monitoring.drift check --events logs/events.jsonl --last 500 --json drift.json --fail-on-drift

`check` compares a window of logged prediction events (monitoring/prediction_events.py) with a
reference: the sentences of held-out data and the model's predictions on them
(monitoring/drift_reference.py). Six statistical tests, one per question, each with its p-value
against alpha from monitoring/monitoring.yaml (monitoring/drift_statistics.py lists them), give one
table and one verdict. Tests that need the text are "not run" (never "passed") when the events carry
none (LOG_TEXT=false).

The events file is streamed and only the window is kept, so memory does not grow with the file
(bench/bench_window_memory.py). A line that is not an event (half a line left by a crash or a full
disk) is skipped and named on stderr, and everything else is checked; an unfinished last line (the
API is mid-write) is left for the next check.

Exit codes of `check`: 0 ran (drift or not); 3 drift found with --fail-on-drift (for cron or a
CI schedule); 2 a problem with the input, explained on one line. Skipped lines do not change it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import deque
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from errors import CourseError, run_cli
from monitoring.drift_reference import (
    CONFIG_PATH,
    MonitoringConfig,
    Reference,
    build_reference,
    load_config,
    load_reference,
    save_reference,
)
from monitoring.drift_statistics import (
    NO_TEXT,
    DriftReport,
    TestResult,
    domain_classifier_test,
    ks_test,
    label_test,
    oov_test,
)
from monitoring.prediction_events import BadLine, PredictionEvent, describe_bad_lines, read_events
from source import OFFLINE_DATA_DIR, WEEK_DIR

FAIL_ON_DRIFT_EXIT = 3


# ----------------------------------------------------------------------------------- the window


def parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise CourseError(f"{text!r} is not a time: write it like 2026-11-23T15:00:00Z") from error
    if moment.tzinfo is None:
        raise CourseError(f"{text!r} has no time zone: add Z for UTC, e.g. 2026-11-23T15:00:00Z")
    return moment


def select_window(
    events: Iterable[PredictionEvent], last: int | None = None, since: str | None = None
) -> list[PredictionEvent]:
    """The events at or after `since` (an ISO time), then the `last` of them, in file order.

    `events` is read once, as it comes: only the window is kept (a deque of at most `last` events),
    so a generator over a file of any size needs the memory of the window, not of the file.
    """
    if last is not None and last < 1:
        raise CourseError(f"--last {last}: give a positive number of events")
    start = parse_time(since) if since is not None else None
    window: deque[PredictionEvent] = deque(maxlen=last)  # maxlen None: keep every event since `since`
    for event in events:
        if start is None or parse_time(event.timestamp) >= start:
            window.append(event)
    return list(window)


def read_window(
    events_path: Path, bad_lines: list[BadLine], last: int | None = None, since: str | None = None
) -> list[PredictionEvent]:
    """The window of the events file, streamed; lines that are not events go to `bad_lines`, the rest is read.

    An unfinished last line (the API is mid-write) is left for the next check.
    """
    return select_window(read_events(events_path, bad_lines), last=last, since=since)


# ----------------------------------------------------------------------------------- the check


def new_results(alpha: float) -> dict[str, TestResult]:
    """Every test, not run yet: a test that cannot run still appears in the report."""
    return {
        "text_length": TestResult("text_length", "feature", "two-sample KS on characters per sentence", alpha),
        "word_count": TestResult("word_count", "feature", "two-sample KS on words per sentence", alpha),
        "oov_rate": TestResult("oov_rate", "feature", "Mann-Whitney U (one-sided) on the share of unseen words", alpha),
        "domain_classifier": TestResult(
            "domain_classifier", "feature", "held-out AUC of a training-vs-production classifier; Mann-Whitney U", alpha
        ),
        "predicted_label": TestResult("predicted_label", "label", "chi-square on predicted label counts", alpha),
        "score": TestResult("score", "label", "two-sample KS on the winning probability", alpha),
    }


def check_drift(events: list[PredictionEvent], reference: Reference, config: MonitoringConfig) -> DriftReport:
    """Run every test on the window `events` against `reference`; see the module docstring."""
    minimum = config.drift.min_window
    if len(events) < minimum:
        raise CourseError(
            f"the window has {len(events)} events, fewer than drift.min_window={minimum} (monitoring/monitoring.yaml): "
            "wait for more traffic, widen the window (--last, --since), or lower min_window"
        )
    results = new_results(config.drift.alpha)
    ks_test(results["text_length"], [e.text_length for e in events], reference.text_lengths(), "characters")
    ks_test(results["word_count"], [e.word_count for e in events], reference.word_counts(), "words")

    texts = [e.text for e in events if e.text is not None]
    text_tests = (results["oov_rate"], results["domain_classifier"])
    if not texts:
        for result in text_tests:
            result.detail = f"not run: {NO_TEXT}"
    elif len(texts) < minimum:
        for result in text_tests:
            result.detail = (
                f"not run: only {len(texts)} of {len(events)} events carry text, fewer than "
                f"min_window={minimum} (set LOG_TEXT=true)"
            )
    else:
        oov_test(results["oov_rate"], texts, reference)
        domain_classifier_test(results["domain_classifier"], texts, reference, config.domain_classifier)
        if len(texts) < len(events):
            for result in text_tests:
                result.detail += f"; on the {len(texts)} of {len(events)} events that carry text"

    versions = sorted({e.model_version for e in events})
    if versions != [reference.model_version]:
        for result in (results["predicted_label"], results["score"]):
            result.detail = (
                f"not run: the window has predictions of model {', '.join(versions)}, the reference is of "
                f"{reference.model_version}: rebuild it with `python -m monitoring.drift reference`, "
                "or narrow the window"
            )
    else:
        label_test(results["predicted_label"], [e.label for e in events], reference.predicted_labels)
        ks_test(results["score"], [e.score for e in events], reference.scores, "")  # a probability: no unit

    return DriftReport(
        window_size=len(events),
        window_start=events[0].timestamp,
        window_end=events[-1].timestamp,
        reference_size=len(reference.predicted_labels),
        model_version=", ".join(versions),
        alpha=config.drift.alpha,
        results=list(results.values()),
    )


def format_report(report: DriftReport) -> str:
    """The report as a plain-text table and a one-line verdict."""
    lines = [
        f"window: {report.window_size} events from {report.window_start} to {report.window_end} "
        f"(model {report.model_version}); alpha {report.alpha} per test",
        f"{'test':<18} {'kind':<8} {'statistic':>10} {'p-value':>10} {'threshold':>10}  verdict",
    ]
    for r in report.results:
        if r.status == "not run":
            lines.append(f"{r.name:<18} {r.kind:<8} {'-':>10} {'-':>10} {'-':>10}  {r.detail}")
        else:
            verdict = "DRIFT" if r.drifted else "ok"
            lines.append(
                f"{r.name:<18} {r.kind:<8} {r.statistic:>10.4g} {r.p_value:>10.3g} {'p < ' + str(r.threshold):>10}"
                f"  {verdict:<5}  {r.detail}"
            )
    not_run = sum(r.status == "not run" for r in report.results)
    ran = len(report.results) - not_run
    drifted = sum(bool(r.drifted) for r in report.results)
    skipped = f"; {not_run} not run" if not_run else ""
    if report.drifted:
        lines.append(f"overall: DRIFT ({drifted} of {ran} tests that ran{skipped})")
    else:
        lines.append(f"overall: no drift ({ran} tests ran{skipped})")
    return "\n".join(lines)


def run_check(
    events_path: Path,
    reference_path: Path | None = None,
    config: MonitoringConfig | None = None,
    last: int | None = None,
    since: str | None = None,
    bad_lines: list[BadLine] | None = None,
) -> DriftReport:
    """Read the window of the events file and check it against the reference.

    Lines that are not events are skipped and appended to `bad_lines` (pass a list to report them).
    """
    config = config or load_config()
    events = read_window(events_path, [] if bad_lines is None else bad_lines, last=last, since=since)
    reference = load_reference(Path(reference_path or config.reference_path()))
    return check_drift(events, reference, config)


# ----------------------------------------------------------------------------------- CLI


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=CONFIG_PATH, help="default: monitoring/monitoring.yaml")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("reference", help="build the reference from the training data and the model")
    build.add_argument(
        "--export-dir", type=Path, default=WEEK_DIR / "artifacts" / "onnx", help="default: artifacts/onnx"
    )
    build.add_argument("--data-dir", type=Path, default=OFFLINE_DATA_DIR, help="default: data")
    build.add_argument("--out", type=Path, help="default: reference.path in monitoring/monitoring.yaml")
    check = commands.add_parser("check", help="test a window of events for drift")
    check.add_argument("--events", type=Path, required=True, help="a JSON-lines events file (EVENTS_FILE)")
    check.add_argument("--reference", type=Path, help="default: reference.path in monitoring/monitoring.yaml")
    check.add_argument("--last", type=int, help="only the last N events")
    check.add_argument("--since", help="only events at or after this time, e.g. 2026-11-23T15:00:00Z")
    check.add_argument("--json", type=Path, help="also write the report as JSON to this file")
    check.add_argument("--fail-on-drift", action="store_true", help=f"exit {FAIL_ON_DRIFT_EXIT} when drift is found")
    args = parser.parse_args()
    config = load_config(args.config)

    if args.command == "reference":
        reference = build_reference(args.export_dir, args.data_dir)
        path = save_reference(reference, args.out or config.reference_path())
        print(
            f"{path}: model {reference.model_version}, {len(reference.vocabulary)} words, "
            f"{len(reference.texts)} reference sentences and the model's predictions on them"
        )
        return

    bad_lines: list[BadLine] = []
    try:
        report = run_check(args.events, args.reference, config, args.last, args.since, bad_lines)
    finally:  # also when the window is too small: the skipped lines may be why
        if bad_lines:
            print(describe_bad_lines(bad_lines), file=sys.stderr)
    print(format_report(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    if args.fail_on_drift and report.drifted:
        sys.exit(FAIL_ON_DRIFT_EXIT)


if __name__ == "__main__":
    run_cli(main)
