"""Register the model `dvc repro` just made, and make it the champion only if it is not worse.

    python -m monitoring.promote                # register, compare, then move `champion` or refuse
    python -m monitoring.promote --force        # move `champion` even to a worse model, without the rule
    python -m monitoring.promote --rollback 3   # move `champion` back to version 3 (no candidate needed)
    python -m monitoring.promote --cache DIR    # where the served copy goes (default production/onnx)

The candidate is what the pipeline made: metrics.json (the evaluate stage) and artifacts/onnx/
(the export stage). Production is the MLflow Model Registry (monitoring/registry.py): every
candidate is registered as a new version of the registered model, tagged with its data version,
checkpoint SHA-256, validation metrics and the gate's result, and production is the version the
alias `champion` points at. production/onnx/ is only a cache of the champion, for MODEL_DIR: it
holds the champion's files and registered_model.json (name, version, alias, tags), and
`python -m monitoring.registry fetch` makes it again from the registry at any time.

The rule: the candidate becomes the champion when it passes the gate (monitoring/gate.py: data
checks of its prepared data version and behaviour tests of the model, thresholds in
monitoring/gate.yaml) and its validation MCC is at least the champion's; the first model only
needs the gate. MCC decides because, unlike accuracy, it stays near 0 for a model that guesses
one class. Both models are scored on the same fixed validation set (prepare_data.py): the
validation file's MD5 is a tag of every version, and a different one stops the comparison.

The order keeps production unchanged on a refusal and on any error: the candidate's files are
downloaded from the registry into production/onnx.incoming and checked first, then the alias moves,
then one rename swaps the cache. A registry that does not answer is one line and changes nothing.

Exit codes, for a scheduler: 0 promoted (or already the champion, or rolled back), 3 refused
(production unchanged), 2 an error such as a pipeline that is not up to date (nothing changed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path

from errors import CourseError, run_cli
from inference_onnx import CONFIG_NAME, EXPORT_DIR
from monitoring import registry
from monitoring.gate import gate_candidate
from monitoring.model_cache import cache_intact
from remote import dvc
from source import WEEK_DIR

METRICS_FILE = WEEK_DIR / "metrics.json"
VALIDATION_FILE = WEEK_DIR / "artifacts" / "prepared" / "validation.csv"
CACHE_DIR = registry.CACHE_DIR  # production/onnx: the served copy of the champion
DECIDING_METRIC = "mcc"
SHOWN_METRICS = ("mcc", "accuracy", "f1")  # the deciding one first
PROMOTED, REFUSED = 0, 3  # exit codes; run_cli exits 2 on an error


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


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
    """The new model as the tags of its registered version will record it."""
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


def decide(candidate: dict, production: dict | None) -> tuple[bool, str]:
    """(promote?, why): the candidate wins when its MCC is at least production's."""
    if production is None:
        return True, "there is no production model yet: the first model is promoted"
    if candidate["validation_md5"] != production.get("validation_md5"):
        raise CourseError(
            "the candidate was evaluated on another validation set than production, so their metrics cannot "
            "be compared: keep data/validation.csv unchanged, or promote deliberately with --force"
        )
    if not isinstance((production.get("metrics") or {}).get(DECIDING_METRIC), int | float):
        raise CourseError(
            f"the champion ({production.get('model_version')}) has no {DECIDING_METRIC} among its tags, so it cannot "
            "be compared: promote deliberately with --force, or roll back to a version that has one"
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


def version_tags(candidate: dict) -> dict[str, str]:
    """The candidate as the tags of its registered version (MLflow tags are strings)."""
    return {
        "model_version": candidate["model_version"],
        "data_version": str(candidate["data_version"]),
        "checkpoint_sha256": str(candidate["source_checkpoint_sha256"]),
        "validation_md5": candidate["validation_md5"],
        "metrics": json.dumps(candidate["metrics"], sort_keys=True),
        **{f"val_{name}": str(candidate["metrics"][name]) for name in SHOWN_METRICS if name in candidate["metrics"]},
    }


def install(reg: registry.Registry, version: int, cache: Path) -> dict:
    """Make `version` the champion and the cache its copy: download and check, move the alias, swap.

    A failure before the alias moved changes nothing; after it, only the cache's swap is left, which
    `python -m monitoring.registry fetch` (or the next promotion) finishes from the registry.
    """
    staged = registry.stage(reg, version, cache)
    try:
        registry.set_champion(reg, version)
    except BaseException:
        registry.recover(cache)  # deletes the staged copy: the cache keeps the old champion
        raise
    registry.swap_in(staged, cache)
    return registry.read_cache_record(cache) or {}


def sync_cache(reg: registry.Registry, champion: int, cache: Path) -> None:
    """A cache that is not the champion's intact copy (a promotion killed before its swap, a deleted folder,
    a file changed by hand) is fetched again from the registry."""
    held = registry.read_cache_record(cache)
    if not held or (held.get("name"), held.get("version")) != (reg.name, champion) or not cache_intact(cache, held):
        registry.fetch(reg, cache)
        print(f"{cache} was not a copy of the champion (version {champion}): fetched it from the registry")


def roll_back(reg: registry.Registry, version: int, cache: Path) -> int:
    """Move `champion` to an older (or any) registered version, and the cache with it."""
    registry.require_version(reg, version)
    before = registry.champion_version(reg)
    if before == version:
        sync_cache(reg, version, cache)
        print(f"version {version} is already the champion; nothing to do")
        return PROMOTED
    record = install(reg, version, cache)
    print(f"rolled back: champion moves from version {before} to version {version} ({record.get('model_version')})")
    print(f"{cache} holds it: restart the service with MODEL_DIR={cache} to serve it")
    return PROMOTED


def promote(force: bool = False, rollback: int | None = None, cache: Path = CACHE_DIR) -> int:
    """Register the pipeline's new model, compare it with the champion, move the alias or refuse.

    Returns the exit code: PROMOTED or REFUSED.
    """
    reg = registry.connect()
    recovered = registry.recover(cache)
    if recovered:
        print(recovered)
    if rollback is not None:
        return roll_back(reg, rollback, cache)
    check_pipeline_up_to_date()
    candidate = read_candidate()
    champion_number = registry.champion_version(reg)
    production = registry.describe(reg, champion_number, registry.CHAMPION) if champion_number else None
    print(comparison_table(candidate, production))
    version, new = registry.register(reg, EXPORT_DIR, version_tags(candidate))
    print(f"{'registered' if new else 'already registered'}: {reg.name} version {version} ({reg.uri})")
    if champion_number == version:
        sync_cache(reg, version, cache)
        print(f"already in production: {candidate['model_version']} is version {version}, the champion; nothing to do")
        return PROMOTED
    # The gate (monitoring/gate.py): data checks and behaviour tests, printed; kept as a tag of the version.
    gate = gate_candidate(candidate["data_version"])
    registry.set_tag(reg, version, "gate", json.dumps(gate, sort_keys=True))
    if force:
        promoted, why = True, "--force: promoted without comparing" + ("" if gate["passed"] else " or gating")
    elif not gate["passed"]:
        failed = ", ".join(gate["failed"])
        promoted, why = False, f"the gate failed ({failed}; every failing case is in {gate['report']})"
    else:
        promoted, why = decide(candidate, production)
    if not promoted:
        stays = f"version {champion_number} ({production['model_version']})" if production else "empty"
        print(f"refused: {why}; production stays {stays} (nothing changed)")
        return REFUSED
    install(reg, version, cache)
    print(f"promoted: {why}")
    print(f"champion is now {reg.name} version {version} ({candidate['model_version']})")
    print(f"production is now {candidate['model_version']}: serve it with MODEL_DIR={cache}")
    return PROMOTED


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument(
        "--force", action="store_true", help="make the candidate the champion without comparing or gating"
    )
    parser.add_argument("--rollback", type=int, metavar="N", help="move the champion alias back to version N")
    parser.add_argument("--cache", type=Path, default=CACHE_DIR, help="where the served copy goes (production/onnx)")
    args = parser.parse_args()
    if args.force and args.rollback is not None:
        raise CourseError("--force promotes the new candidate, --rollback N an existing version: use one of them")
    sys.exit(promote(args.force, args.rollback, args.cache))


if __name__ == "__main__":
    run_cli(main)
