"""Promote the model `dvc repro` just made to production, only if it is not worse than production's.

    python -m monitoring.promote          # compare, print the comparison, then promote or refuse
    python -m monitoring.promote --force  # promote even a worse model: a deliberate rollback

The candidate is what the pipeline made: metrics.json (the evaluate stage) and artifacts/onnx/
(the export stage). Production is the folder production/, a stand-in for a model registry:
  production/model.json   the record: model and data version, validation metrics, when promoted
  production/onnx/        a copy of the promoted export; serve it with MODEL_DIR=production/onnx
Like a registry, it lives outside version control (git-ignored): checking out an old commit
changes the candidate, never what is in production.

The rule: the candidate is promoted when its validation MCC is at least production's; the first
model is always promoted. MCC decides because, unlike accuracy, it stays near 0 for a model that
guesses one class. Both models are scored on the same fixed validation set (prepare_data.py), and
monitoring/promote.py checks that it is the same file before comparing.

Exit codes, for a scheduler: 0 promoted (or already in production), 3 refused (production
unchanged), 2 an error such as a pipeline that is not up to date (nothing changed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from errors import CourseError, run_cli
from inference_onnx import CONFIG_NAME, EXPORT_DIR
from monitoring.prediction_events import utc_timestamp
from remote import dvc
from source import WEEK_DIR

METRICS_FILE = WEEK_DIR / "metrics.json"
VALIDATION_FILE = WEEK_DIR / "artifacts" / "prepared" / "validation.csv"
PRODUCTION_DIR = WEEK_DIR / "production"
RECORD_NAME = "model.json"
DECIDING_METRIC = "mcc"
SHOWN_METRICS = ("mcc", "accuracy", "f1")  # the deciding one first
PROMOTED, REFUSED = 0, 3  # exit codes; run_cli exits 2 on an error


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


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
    if DECIDING_METRIC not in metrics:
        raise CourseError(f"{metrics_file} has no {DECIDING_METRIC!r}: run `dvc repro` to evaluate the model again")
    if not validation_file.is_file():
        raise CourseError(f"{validation_file} is missing: run `dvc repro` (or `dvc checkout`) first")
    return {
        "model_version": config.get("model_version") or "unknown",
        "data_version": config.get("data_version"),
        "metrics": metrics,
        "validation_md5": md5(validation_file),
        "source_checkpoint_sha256": config.get("source_checkpoint_sha256"),
    }


def read_production(production_dir: Path = PRODUCTION_DIR) -> dict | None:
    """The production record, or None before the first promotion."""
    path = production_dir / RECORD_NAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CourseError(
            f"{path} is not valid JSON ({error}): only monitoring/promote.py writes it; restore it from a backup, or "
            f"delete {production_dir} and run `python -m monitoring.promote` to start again from the current model"
        ) from error


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
    rows = [
        ["model_version", production["model_version"] if production else "-", candidate["model_version"], ""],
        ["data_version", str(production["data_version"]) if production else "-", str(candidate["data_version"]), ""],
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

    The new copy is complete before it replaces the old one, so a crash halfway never leaves a
    half-copied model where the service loads from.
    """
    production_dir.mkdir(parents=True, exist_ok=True)
    incoming, previous, live = (production_dir / name for name in ("onnx.incoming", "onnx.previous", "onnx"))
    for leftover in (incoming, previous):
        shutil.rmtree(leftover, ignore_errors=True)
    shutil.copytree(export_dir, incoming)
    if live.exists():
        live.rename(previous)
    incoming.rename(live)
    shutil.rmtree(previous, ignore_errors=True)
    record = {**candidate, "promoted_at": utc_timestamp(), "export_dir": live.name}
    temporary = production_dir / (RECORD_NAME + ".tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(temporary, production_dir / RECORD_NAME)


def promote(force: bool = False) -> int:
    """Compare the pipeline's new model with production, print the comparison, promote or refuse.

    Returns the exit code: PROMOTED or REFUSED.
    """
    check_pipeline_up_to_date()
    candidate = read_candidate()
    production = read_production()
    print(comparison_table(candidate, production))
    if production and production["model_version"] == candidate["model_version"]:
        if (PRODUCTION_DIR / "onnx" / CONFIG_NAME).is_file():
            print(f"already in production: {candidate['model_version']}; nothing to do")
        else:  # the record is there but the copy was deleted: put it back
            install(candidate)
            print(f"already in production: {candidate['model_version']}; restored {PRODUCTION_DIR / 'onnx'}")
        return PROMOTED
    if force:
        promoted, why = True, "--force: promoted without comparing"
    else:
        promoted, why = decide(candidate, production)
    if not promoted:
        print(f"refused: {why}; production stays {production['model_version']} (nothing changed)")
        return REFUSED
    install(candidate)
    print(f"promoted: {why}")
    print(f"production is now {candidate['model_version']}: serve it with MODEL_DIR={PRODUCTION_DIR / 'onnx'}")
    return PROMOTED


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--force", action="store_true", help="promote without comparing (a deliberate rollback)")
    args = parser.parse_args()
    sys.exit(promote(args.force))


if __name__ == "__main__":
    run_cli(main)
