"""Promote the model `dvc repro` just made to production, only if it is not worse than production's.

    python -m monitoring.promote          # compare, print the comparison, then promote or refuse
    python -m monitoring.promote --force  # promote even a worse model: a deliberate rollback

The candidate is what the pipeline made: metrics.json (the evaluate stage) and artifacts/onnx/
(the export stage). Production is the folder production/, a stand-in for a model registry:
  production/model.json   the record: model and data version, validation metrics, when promoted
  production/onnx/        a copy of the promoted export; serve it with MODEL_DIR=production/onnx
Like a registry, it lives outside version control (git-ignored): checking out an old commit
changes the candidate, never what is in production.

The rule: the candidate is promoted when it passes the gate (monitoring/gate.py: data checks of
its prepared data version and behaviour tests of the model, thresholds in monitoring/gate.yaml)
and its validation MCC is at least production's; the first model only needs the gate. The gate's
summary goes into the record, its full report into reports/gate/. MCC decides because, unlike
accuracy, it stays near 0 for a model that guesses one class. Both models are scored on the same
fixed validation set (prepare_data.py), and monitoring/promote.py checks that it is the same
file before comparing.

The record is checked against what is installed before anything is compared: a record that is
missing, unreadable or names another model than production/onnx/model_config.json stops the
promotion (--force replaces production anyway). An install that a crash stopped halfway is
finished (or, with no record of what it installed, undone) before anything else.

Exit codes, for a scheduler: 0 promoted (or already in production), 3 refused (production
unchanged), 2 an error such as a pipeline that is not up to date (nothing changed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
from pathlib import Path

from errors import CourseError, run_cli
from inference_onnx import CONFIG_NAME, EXPORT_DIR
from monitoring.gate import gate_candidate
from monitoring.prediction_events import utc_timestamp
from remote import dvc
from source import WEEK_DIR

METRICS_FILE = WEEK_DIR / "metrics.json"
VALIDATION_FILE = WEEK_DIR / "artifacts" / "prepared" / "validation.csv"
PRODUCTION_DIR = WEEK_DIR / "production"
RECORD_NAME = "model.json"
PENDING_NAME = "model.json.incoming"  # the record of an install under way (see install)
LIVE, INCOMING, PREVIOUS = "onnx", "onnx.incoming", "onnx.previous"  # folders under production/
DECIDING_METRIC = "mcc"
SHOWN_METRICS = ("mcc", "accuracy", "f1")  # the deciding one first
PROMOTED, REFUSED = 0, 3  # exit codes; run_cli exits 2 on an error
FORCE = "`python -m monitoring.promote --force`"


class UnverifiedProduction(CourseError):
    """Production cannot be compared with: `problem` says why; the message adds how to recover."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}: {fix}")
        self.problem = problem


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_json_atomically(path: Path, data: dict) -> None:
    """Write a temp file, then rename it over `path`: a reader sees the old file or the new one, never half."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(data, indent=2) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def check_metrics(metrics: object, path: Path, fix: str, prefix: str = "") -> dict:
    """`metrics` when it has a number for the deciding metric, and for every other shown metric it holds."""
    if not isinstance(metrics, dict):
        raise CourseError(f"{path}: {prefix.rstrip('.') or 'the file'} is not an object of metrics: {fix}")
    if DECIDING_METRIC not in metrics:
        raise CourseError(f"{path} has no {prefix}{DECIDING_METRIC}: {fix}")
    for name in (name for name in SHOWN_METRICS if name in metrics):
        value = metrics[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise CourseError(f"{path}: {prefix}{name} is {value!r}, not a number: {fix}")
    return metrics


def read_record(path: Path) -> dict:
    """A production record, checked field by field; a CourseError names the file and the field."""
    fix = f"only monitoring/promote.py writes it: restore it from a backup, or replace production with {FORCE}"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CourseError(f"{path} cannot be read as JSON ({error}): {fix}") from error
    if not isinstance(record, dict):
        raise CourseError(f"{path} holds a JSON {type(record).__name__}, not a record: {fix}")
    if "metrics" not in record:
        raise CourseError(f"{path} has no metrics: {fix}")
    if not isinstance(record.get("model_version"), str) or not record["model_version"]:
        raise CourseError(f"{path}: model_version is {record.get('model_version')!r}, not a model version: {fix}")
    check_metrics(record.get("metrics"), path, fix, prefix="metrics.")
    return record


def model_version_in(folder: Path) -> str | None:
    """The model_version in `folder`/model_config.json; None when there is none to read."""
    try:
        version = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))["model_version"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        return None
    return version if isinstance(version, str) and version else None


def installed_version(folder: Path) -> str | None:
    """The model version installed in `folder`; None when the folder is absent."""
    if not folder.exists():
        return None
    version = model_version_in(folder)
    if version is None:
        raise UnverifiedProduction(
            f"{folder / CONFIG_NAME} is missing or names no model_version, so what is installed is unknown",
            f"replace production with {FORCE}",
        )
    return version


def check_pipeline_up_to_date() -> None:
    """metrics.json and artifacts/onnx/ must come from the same `dvc repro`, or the comparison means nothing."""
    changed = json.loads(dvc("status", "--json") or "{}")
    if changed:
        raise CourseError(
            f"the pipeline is not up to date ({', '.join(sorted(changed))} changed, see `dvc status`): "
            "run `dvc repro` first, so metrics.json and artifacts/onnx/ describe the same new model"
        )


def read_candidate(
    metrics_file: Path = METRICS_FILE, export_dir: Path = EXPORT_DIR, validation_file: Path = VALIDATION_FILE
) -> dict:
    """The new model as production/model.json would record it."""
    try:
        metrics = json.loads(metrics_file.read_text())
        config = json.loads((export_dir / CONFIG_NAME).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CourseError(f"cannot read the new model ({error}): run `dvc repro` first") from error
    check_metrics(metrics, metrics_file, "run `dvc repro` to evaluate the model again")
    if not validation_file.is_file():
        raise CourseError(f"{validation_file} is missing: run `dvc repro` (or `dvc checkout`) first")
    return {
        "model_version": config.get("model_version") or "unknown",
        "data_version": config.get("data_version"),
        "metrics": metrics,
        "validation_md5": md5(validation_file),
        "source_checkpoint_sha256": config.get("source_checkpoint_sha256"),
    }


def read_production(candidate: dict, production_dir: Path = PRODUCTION_DIR) -> dict | None:
    """The production record, checked against production/onnx; None before the first promotion.

    Raises UnverifiedProduction when the record and the installed copy do not agree, since a
    comparison with a record that does not describe what is served would mean nothing.
    """
    path, live = production_dir / RECORD_NAME, production_dir / LIVE
    installed = installed_version(live)
    how_to_compare = (
        "to compare with it, check out the commit that made it, run `dvc checkout` and `python -m monitoring.promote` "
        f"(that re-creates its record), then come back; or replace it deliberately with {FORCE}"
    )
    if not path.exists():
        if installed is None or installed == candidate["model_version"]:
            return None  # the first promotion, or production is the candidate itself: see promote()
        raise UnverifiedProduction(
            f"{path} is missing but {live} holds {installed}, so promoting {candidate['model_version']} "
            "would replace it without a comparison",
            how_to_compare,
        )
    record = read_record(path)
    if installed is None and record["model_version"] != candidate["model_version"]:
        raise UnverifiedProduction(
            f"{live} is missing but {path} records {record['model_version']}, so nothing is served", how_to_compare
        )
    if installed is not None and installed != record["model_version"]:
        raise UnverifiedProduction(
            f"{path} records {record['model_version']} but {live} holds {installed}", how_to_compare
        )
    return record


def decide(candidate: dict, production: dict | None) -> tuple[bool, str]:
    """(promote?, why): the candidate wins when its MCC is at least production's."""
    if production is None:
        return True, "there is no production model yet: the first model is promoted"
    if candidate["validation_md5"] != production.get("validation_md5"):
        raise CourseError(
            "the candidate was evaluated on another validation set than production, so their metrics cannot "
            "be compared: keep data/validation.csv unchanged, or promote deliberately with --force"
        )
    new, current = candidate["metrics"][DECIDING_METRIC], production["metrics"][DECIDING_METRIC]
    if new >= current:
        return True, f"candidate {DECIDING_METRIC} {new:.4f} >= production {DECIDING_METRIC} {current:.4f}"
    return False, f"candidate {DECIDING_METRIC} {new:.4f} < production {DECIDING_METRIC} {current:.4f}"


def comparison_table(candidate: dict, production: dict | None) -> str:
    """Production and candidate side by side: versions, then the metrics with the change."""
    header = ["", "production", "candidate", "change"]
    old_data = str(production.get("data_version")) if production else "-"
    rows = [
        ["model_version", production["model_version"] if production else "-", candidate["model_version"], ""],
        ["data_version", old_data, str(candidate["data_version"]), ""],
    ]
    for name in SHOWN_METRICS:
        new = candidate["metrics"].get(name)
        old = production["metrics"].get(name) if production else None
        label = f"{name} (decides)" if name == DECIDING_METRIC else name
        change = f"{new - old:+.4f}" if new is not None and old is not None else ""
        rows.append([label, "-" if old is None else f"{old:.4f}", "-" if new is None else f"{new:.4f}", change])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


def install(candidate: dict, export_dir: Path = EXPORT_DIR, production_dir: Path = PRODUCTION_DIR) -> None:
    """Copy the export into production/onnx/ and write production/model.json.

    The steps, so that a crash at any point can be finished by the next run (finish_interrupted_install):
      1. copy the export to onnx.incoming/             a crash leaves a partial copy: deleted next time
      2. write the new record as model.json.incoming   from here on the copy is complete
      3. onnx/ -> onnx.previous/, onnx.incoming/ -> onnx/
      4. model.json.incoming -> model.json             the install is done
      5. delete onnx.previous/
    """
    production_dir.mkdir(parents=True, exist_ok=True)
    incoming, previous, pending = production_dir / INCOMING, production_dir / PREVIOUS, production_dir / PENDING_NAME
    for leftover in (incoming, previous):
        shutil.rmtree(leftover, ignore_errors=True)
    shutil.copytree(export_dir, incoming)
    write_json_atomically(pending, {**candidate, "promoted_at": utc_timestamp(), "export_dir": LIVE})
    swap_in(production_dir)
    os.replace(pending, production_dir / RECORD_NAME)
    shutil.rmtree(previous, ignore_errors=True)


def swap_in(production_dir: Path) -> None:
    """onnx/ -> onnx.previous/, then onnx.incoming/ -> onnx/ (step 3 of install)."""
    live, incoming, previous = (production_dir / name for name in (LIVE, INCOMING, PREVIOUS))
    if live.exists():
        live.rename(previous)
    incoming.rename(live)


def install_interrupted(production_dir: Path = PRODUCTION_DIR) -> bool:
    """Whether an install stopped halfway left something for finish_interrupted_install."""
    return any((production_dir / name).exists() for name in (PENDING_NAME, INCOMING, PREVIOUS))


def finish_interrupted_install(production_dir: Path = PRODUCTION_DIR) -> str | None:
    """Finish (or undo) an install that a crash stopped halfway; returns what was done, None when nothing was.

    model.json.incoming is written once the new copy is complete, so with it the install is finished;
    without it, onnx.incoming is a partial copy and is deleted.
    """
    live, incoming, previous = (production_dir / name for name in (LIVE, INCOMING, PREVIOUS))
    pending = production_dir / PENDING_NAME
    done = None
    if pending.exists():
        record = read_record(pending)
        if incoming.exists():
            if live.exists():
                shutil.rmtree(previous, ignore_errors=True)  # swap_in renames onnx/ to it
            swap_in(production_dir)
        if model_version_in(live) != record["model_version"]:
            raise CourseError(
                f"an install of {record['model_version']} was interrupted and {live} does not hold it: "
                f"delete {pending}, then run {FORCE} to install the candidate again"
            )
        os.replace(pending, production_dir / RECORD_NAME)
        done = f"finished an interrupted install: {live} holds {record['model_version']}, as {RECORD_NAME} records"
    elif previous.exists() and not live.exists():
        # Stopped between the two renames with no record of the new model: the old copy goes back.
        previous.rename(live)
        done = f"undid an interrupted install: {previous} moved back to {live}"
    for leftover in (incoming, previous):
        if leftover.exists():
            shutil.rmtree(leftover)
            done = done or f"deleted {leftover}, left behind by an interrupted install"
    for name in (PENDING_NAME, RECORD_NAME):  # a temp file write_json_atomically had not renamed yet
        (production_dir / (name + ".tmp")).unlink(missing_ok=True)
    return done


def promote(force: bool = False) -> int:
    """Compare the pipeline's new model with production, print the comparison, promote or refuse.

    Returns the exit code: PROMOTED or REFUSED.
    """
    recovered = finish_interrupted_install()
    if recovered:
        print(recovered)
    check_pipeline_up_to_date()
    candidate = read_candidate()
    try:
        production = read_production(candidate)
    except UnverifiedProduction as error:
        if not force:
            raise
        print(f"--force: {error.problem}; it is replaced without a comparison")
        production = None
    print(comparison_table(candidate, production))
    live = PRODUCTION_DIR / LIVE
    if production is None and not force and installed_version(live) == candidate["model_version"]:
        # The record was lost, but what is installed is the candidate itself: its record can be written again.
        recreated = {**candidate, "promoted_at": None, "record_recreated_at": utc_timestamp(), "export_dir": LIVE}
        write_json_atomically(PRODUCTION_DIR / RECORD_NAME, recreated)
        print(f"re-created {PRODUCTION_DIR / RECORD_NAME}: {live} holds the candidate, {candidate['model_version']}")
        return PROMOTED
    if production and production["model_version"] == candidate["model_version"]:
        if live.exists():
            print(f"already in production: {candidate['model_version']}; nothing to do")
        else:  # the record is there but the copy was deleted: put it back
            install(candidate)
            print(f"already in production: {candidate['model_version']}; restored {live}")
        return PROMOTED
    # The gate (monitoring/gate.py): data checks and behaviour tests, printed; kept in the record.
    gate = candidate["gate"] = gate_candidate(candidate["data_version"])
    if force:
        promoted, why = True, "--force: promoted without comparing" + ("" if gate["passed"] else " or gating")
    elif not gate["passed"]:
        failed = ", ".join(gate["failed"])
        promoted, why = False, f"the gate failed ({failed}; every failing case is in {gate['report']})"
    else:
        promoted, why = decide(candidate, production)
    if not promoted:
        stays = production["model_version"] if production else "empty"
        print(f"refused: {why}; production stays {stays} (nothing changed)")
        return REFUSED
    install(candidate)
    print(f"promoted: {why}")
    print(f"production is now {candidate['model_version']}: serve it with MODEL_DIR={live}")
    return PROMOTED


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument(
        "--force", action="store_true", help="promote without comparing or gating (a deliberate rollback)"
    )
    args = parser.parse_args()
    sys.exit(promote(args.force))


if __name__ == "__main__":
    run_cli(main)
