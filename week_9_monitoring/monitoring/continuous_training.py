"""Continuous training in one command: drift check, labelled data, `dvc repro`, promotion.

    python -m monitoring.continuous_training --events logs/events.jsonl
    python -m monitoring.continuous_training --events logs/events.jsonl --labelled labelling/queue.csv

What a scheduler (cron, a GitHub Actions `schedule:`) runs; every step prints what it does:
  1. drift check   `python -m monitoring.drift check --events FILE --fail-on-drift`: no drift, stop here
  2. labels        drift means the model needs labelled examples of the new traffic: without
                   a labelled CSV, or when it adds nothing new, print how to write and fill the
                   labelling queue and stop
  3. new data      monitoring/labelled_data.py: the filled CSV becomes data/labelled/vN.csv, data.version vN
  4. dvc repro     prepare, train, evaluate and export on data version vN
  5. promotion     monitoring/promote.py: the new model replaces production only if its MCC is not worse
  6. reference     after a promotion: the drift reference is rebuilt for the production model
                   and the data it was trained on, so the next check compares with what it knows

Exit codes: 0 no drift, or a new model promoted; 3 retrained but refused (production unchanged);
4 drift found, labels needed; 2 an error, printed with the step it stopped at.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from errors import CourseError, run_cli
from monitoring.drift import FAIL_ON_DRIFT_EXIT
from monitoring.labelled_data import ingest, sort_labelled, summary
from monitoring.promote import PRODUCTION_DIR, PROMOTED, promote
from source import WEEK_DIR

NEEDS_LABELS = 4  # exit code: drift found, a person must label the queue first
PREPARED_DIR = WEEK_DIR / "artifacts" / "prepared"


def step(number: int, title: str) -> None:
    # flush: the child processes write to the same stdout, and their lines must come after this one
    print(f"\n== step {number}/6: {title}", flush=True)


def run(command: list[str]) -> int:
    """Run a command in the week folder, its output going straight to ours; returns its exit code."""
    print("$ " + " ".join(command), flush=True)
    return subprocess.run(command, cwd=WEEK_DIR).returncode


def dvc_executable() -> str:
    """The dvc of this virtualenv, so a scheduler need not activate it first."""
    executable = Path(sys.executable).with_name("dvc")
    return str(executable) if executable.exists() else "dvc"


def window_options(last: int | None, since: str | None) -> list[str]:
    return [*(["--last", str(last)] if last is not None else []), *(["--since", since] if since else [])]


def how_to_label(events: Path, window: list[str]) -> str:
    options = " ".join(["--events", str(events), *window])
    return (
        f"  1. python -m monitoring.labelling_queue {options} --out labelling/queue.csv\n"
        "  2. fill its label column with acceptable or unacceptable (leave a row empty to skip it)\n"
        f"  3. python -m monitoring.continuous_training {options} --labelled labelling/queue.csv"
    )


def continuous_training(events: Path, labelled: Path | None, last: int | None = None, since: str | None = None) -> int:
    """Run the loop once; returns the exit code (see the module docstring)."""
    window = window_options(last, since)
    step(1, "drift check")
    code = run([sys.executable, "-m", "monitoring.drift", "check", "--events", str(events), *window, "--fail-on-drift"])
    if code == 0:
        print("no drift: production traffic still looks like the training data; nothing to retrain")
        return 0
    if code != FAIL_ON_DRIFT_EXIT:
        raise CourseError(f"the drift check failed (exit {code}, its message is above): fix that and run again")

    step(2, "labels for the drifted traffic")
    if labelled is None or not labelled.exists():
        missing = f" ({labelled} does not exist yet)" if labelled else ""
        print(f"drift found: the model needs labelled examples of the new traffic before it can be retrained{missing}")
        print(how_to_label(events, window))
        return NEEDS_LABELS
    # Checked first: a queue nobody has labelled yet, or one already added, waits for a person too.
    checked = sort_labelled(labelled)
    print(summary(checked))
    if not checked.new:
        nothing = "no row is labelled yet" if len(checked.unlabelled) == checked.rows else "it holds no new sentence"
        print(f"drift found, but {labelled} cannot help: {nothing}")
        print(how_to_label(events, window))
        return NEEDS_LABELS

    step(3, "new data version from the labelled rows")
    ingested = ingest(labelled)
    print(f"wrote {len(ingested.labelled.new)} sentences to {ingested.batch}")
    print(f"params.yaml: data.version {ingested.previous_version} -> {ingested.version}")

    step(4, f"dvc repro on data version {ingested.version}")
    code = run([dvc_executable(), "repro"])
    if code != 0:
        raise CourseError(
            f"`dvc repro` failed (exit {code}, its output is above): {ingested.batch} and params.yaml are already "
            "written, so fix the failing stage, then run `dvc repro` and `python -m monitoring.promote` "
            "(not this command: "
            "the labelled rows are in the data now)"
        )

    step(5, "promotion")
    sys.stdout.flush()
    decision = promote()
    if decision != PROMOTED:
        return decision

    step(6, "drift reference for the new production model")
    production = PRODUCTION_DIR / "onnx"
    code = run(
        [
            sys.executable,
            "-m",
            "monitoring.drift",
            "reference",
            "--export-dir",
            str(production),
            "--data-dir",
            str(PREPARED_DIR),
        ]
    )
    if code != 0:
        raise CourseError(
            f"rebuilding the drift reference failed (exit {code}, see above): the new model is promoted; run "
            f"`python -m monitoring.drift reference --export-dir {production} --data-dir {PREPARED_DIR}` "
            "once it is fixed"
        )
    print(f"done: restart the service with MODEL_DIR={production} to serve the new model")
    return PROMOTED


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--events", type=Path, required=True, help="the prediction events (EVENTS_FILE)")
    parser.add_argument("--labelled", type=Path, help="a labelling queue with its label column filled in")
    parser.add_argument("--last", type=int, help="check only the last N events")
    parser.add_argument("--since", help="check only events at or after this time, e.g. 2026-11-23T15:00:00Z")
    args = parser.parse_args()
    sys.exit(continuous_training(args.events, args.labelled, args.last, args.since))


if __name__ == "__main__":
    run_cli(main)
