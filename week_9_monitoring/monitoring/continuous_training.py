"""Continuous training in one command: drift check, labelled data, `dvc repro`, promotion.

    python -m monitoring.continuous_training --events logs/events.jsonl
    python -m monitoring.continuous_training --events logs/events.jsonl --labelled labelling/queue.csv

What a scheduler (cron, a GitHub Actions `schedule:`) runs; every step prints what it does:
  1. drift check   `python -m monitoring.drift check --events FILE --fail-on-drift`: no drift, stop here
  2. labels        drift means the model needs labelled examples of the new traffic: without
                   a labelled CSV, or when it adds nothing new, print how to write and fill the
                   labelling queue and stop
  3. new data      monitoring/labelled_data.py: the filled CSV becomes data/labelled/vN.csv, data.version vN,
                   if it passes the gate's data checks (monitoring/gate.py; refused: exit 2, report named)
  4. dvc repro     prepare, train, evaluate and export on data version vN
  5. promotion     monitoring/promote.py: the new model is registered (MLflow Model Registry) and becomes
                   the champion only if it passes the gate (data checks of vN, behaviour tests of the
                   model) and its MCC is not worse; production/onnx is the champion's cached copy
  6. reference     after a promotion: the drift reference is rebuilt for the production model
                   and the data it was trained on, so the next check compares with what it knows

A cycle stopped halfway (Ctrl-C or a failing stage during `dvc repro`, a crash while promoting)
is finished by the next run, before anything else: params.yaml selects a labelled batch whose
model is not in production, and `dvc repro` did not finish or a fetch into production/onnx was
interrupted. The run then does steps 4-6 only, whatever the events say.

Exit codes: 0 no drift, or a new model promoted; 3 retrained but refused (production unchanged);
4 drift found, labels needed; 2 an error, printed with the step it stopped at; 130 interrupted
(Ctrl-C): run the same command again to finish.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from errors import CourseError, run_cli
from monitoring.drift import FAIL_ON_DRIFT_EXIT
from monitoring.labelled_data import PARAMS_FILE, ingest, sort_labelled, summary
from monitoring.model_cache import interrupted, read_cache_record
from monitoring.promote import CACHE_DIR, PROMOTED, promote
from prepare_data import LABELLED_DIR, RAW_DIR
from remote import dvc
from source import WEEK_DIR

NEEDS_LABELS = 4  # exit code: drift found, a person must label the queue first
INTERRUPTED = 130  # exit code after Ctrl-C, as a shell reports it (128 + SIGINT)
PREPARED_DIR = WEEK_DIR / "artifacts" / "prepared"


def step(number: int, title: str) -> None:
    # flush: the child processes write to the same stdout, and their lines must come after this one
    print(f"\n== step {number}/6: {title}", flush=True)


def run(command: list[str]) -> int:
    """Run a command in the week folder, its output going straight to ours; returns its exit code."""
    print("$ " + " ".join(command), flush=True)
    child = subprocess.Popen(command, cwd=WEEK_DIR)
    try:
        return child.wait()
    except KeyboardInterrupt:
        # Ctrl-C reaches the whole foreground process group: let the child stop on its own (dvc
        # releases its lock and keeps the stages that finished); pass it on if only we received it.
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGINT)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        raise


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


def data_version() -> str | None:
    """params.yaml's data.version; None when it cannot be read (dvc repro then says why)."""
    try:
        return str(yaml.safe_load(PARAMS_FILE.read_text(encoding="utf-8"))["data"]["version"])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None


def production_data_version() -> str | None:
    """The data version of the production model, from the cache's record of the champion; None without one."""
    record = read_cache_record(CACHE_DIR)
    return record.get("data_version") if record else None


def unpromoted_batch() -> tuple[str, Path] | None:
    """(version, batch) when params.yaml selects a labelled batch whose model is not in production."""
    version = data_version()
    batch = RAW_DIR / LABELLED_DIR / f"{version}.csv"
    if version is None or not batch.is_file() or production_data_version() == version:
        return None
    return version, batch


def unfinished_cycle() -> tuple[str, str] | None:
    """(data version, why) when the last cycle stopped before its promotion decision; None when it did not.

    Its labels are in the data (params.yaml selects their batch) but production has no model of
    them, and either `dvc repro` did not finish or a fetch into production/onnx was interrupted.
    Without either, the model was refused (or its promotion stopped before installing anything):
    see not_promoted().
    """
    selected = unpromoted_batch()
    if selected is None:
        return None
    version, batch = selected[0], selected[1].relative_to(WEEK_DIR)
    if interrupted(CACHE_DIR):
        return version, f"{batch} is data version {version}, and installing its model in production was interrupted"
    changed = sorted(json.loads(dvc("status", "--json") or "{}"))
    if changed:
        return version, (
            f"{batch} is data version {version} in params.yaml, but `dvc repro` did not finish "
            f"({', '.join(changed)} not up to date) and production has no model of it"
        )
    return None


def not_promoted() -> str | None:
    """A note when the selected labelled version was retrained but its model is not in production."""
    selected = unpromoted_batch()
    if selected is None:
        return None
    return (
        f"note: data version {selected[0]} was retrained but its model is not in production: it was refused, "
        "or its promotion was interrupted; `python -m monitoring.promote` decides again"
    )


def needs_labels(events: Path, window: list[str], message: str) -> int:
    print(message)
    print(how_to_label(events, window))
    note = not_promoted()
    if note:
        print(note)
    return NEEDS_LABELS


def retrain_and_promote(version: str) -> int:
    """Steps 4 to 6: `dvc repro`, the promotion rule, and the drift reference after a promotion."""
    step(4, f"dvc repro on data version {version}")
    code = run([dvc_executable(), "repro"])
    if code != 0:
        raise CourseError(
            f"`dvc repro` failed (exit {code}, its output is above): the labelled rows are already in the data "
            f"(data version {version}), so fix the failing stage, then run this command again: it finishes the cycle"
        )

    step(5, "promotion: the gate (data checks, behaviour tests), then the MCC rule")
    sys.stdout.flush()
    decision = promote()
    if decision != PROMOTED:
        return decision

    step(6, "drift reference for the new production model")
    production = CACHE_DIR
    command = ["-m", "monitoring.drift", "reference", "--export-dir", str(production), "--data-dir", str(PREPARED_DIR)]
    code = run([sys.executable, *command])
    if code != 0:
        raise CourseError(
            f"rebuilding the drift reference failed (exit {code}, see above): the new model is promoted; run "
            f"`python {' '.join(command)}` once it is fixed"
        )
    print(f"done: restart the service with MODEL_DIR={production} to serve the new model")
    return PROMOTED


def continuous_training(events: Path, labelled: Path | None, last: int | None = None, since: str | None = None) -> int:
    """Run the loop once; returns the exit code (see the module docstring)."""
    window = window_options(last, since)
    unfinished = unfinished_cycle()
    if unfinished:
        version, why = unfinished
        print(f"an unfinished cycle: {why}; finishing it first (dvc repro, promotion, drift reference)")
        code = retrain_and_promote(version)
        print("the unfinished cycle is finished: the next run checks drift against the production model")
        return code

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
        message = "drift found: the model needs labelled examples of the new traffic before it can be retrained"
        return needs_labels(events, window, message + missing)
    # Checked first: a queue nobody has labelled yet, or one already added, waits for a person too.
    checked = sort_labelled(labelled)
    print(summary(checked))
    if not checked.new:
        nothing = "no row is labelled yet" if len(checked.unlabelled) == checked.rows else "it holds no new sentence"
        return needs_labels(events, window, f"drift found, but {labelled} cannot help: {nothing}")

    step(3, "new data version from the labelled rows")
    ingested = ingest(labelled)
    print(f"wrote {len(ingested.labelled.new)} sentences to {ingested.batch}")
    print(f"params.yaml: data.version {ingested.previous_version} -> {ingested.version}")
    return retrain_and_promote(ingested.version)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--events", type=Path, required=True, help="the prediction events (EVENTS_FILE)")
    parser.add_argument("--labelled", type=Path, help="a labelling queue with its label column filled in")
    parser.add_argument("--last", type=int, help="check only the last N events")
    parser.add_argument("--since", help="check only events at or after this time, e.g. 2026-11-23T15:00:00Z")
    args = parser.parse_args()
    try:
        code = continuous_training(args.events, args.labelled, args.last, args.since)
    except KeyboardInterrupt:
        print(
            "\ninterrupted: run the same command again; a cycle whose labels are already in the data is "
            "finished first (dvc repro, promotion, drift reference)",
            file=sys.stderr,
        )
        code = INTERRUPTED
    sys.exit(code)


if __name__ == "__main__":
    run_cli(main)
