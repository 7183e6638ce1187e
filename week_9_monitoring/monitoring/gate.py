"""The promotion gate: data checks and behaviour tests a candidate must pass before its MCC counts.

    python -m monitoring.gate batch data/labelled/v3.csv   # the data checks of a labelled batch
    python -m monitoring.gate data                         # the data checks of the prepared version
    python -m monitoring.gate model                        # the behaviour tests of a model (artifacts/onnx)
    python -m monitoring.gate candidate                    # both, as monitoring/promote.py runs them

monitoring/gate.yaml holds every threshold (`--config FILE` for another); monitoring/gate_data.py
and monitoring/gate_behaviour.py say what each check means. Every run writes its report as JSON
in reports/gate/ and prints one line per check with the failing rows or cases.

Where it runs by itself: monitoring/labelled_data.py checks a batch before writing it (so
monitoring/continuous_training.py does too), and monitoring/promote.py refuses a candidate that
fails the gate before comparing MCCs. Exit codes: 0 passed, 3 refused, 2 an error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pandas as pd
import yaml

from errors import CourseError, run_cli
from inference_onnx import EXPORT_DIR
from monitoring.gate_behaviour import KINDS, BehaviourConfig, check_model
from monitoring.gate_behaviour import summary_lines as behaviour_lines
from monitoring.gate_data import DataConfig, check_batch, check_batch_frame, check_version
from monitoring.gate_data import summary_lines as data_lines
from monitoring.prediction_events import utc_timestamp
from prepare_data import RAW_DIR
from source import WEEK_DIR

CONFIG_PATH = WEEK_DIR / "monitoring" / "gate.yaml"
REPORTS_DIR = WEEK_DIR / "reports" / "gate"
PREPARED_DIR = WEEK_DIR / "artifacts" / "prepared"
PASSED, REFUSED = 0, 3  # exit codes; run_cli exits 2 on an error


class GateRefused(CourseError):
    """A batch the data checks refused: the message names the report with the failing rows."""


def load_config(path: Path | None = None) -> tuple[DataConfig, BehaviourConfig]:
    """monitoring/gate.yaml (or `path`), checked: a CourseError names the key that is missing or wrong."""
    path = Path(path or CONFIG_PATH)
    fix = f"compare it with monitoring/gate.yaml in the repository, or `git checkout -- {path.name}`"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        data, behaviour = raw["data"], raw["behaviour"]
        data_config = DataConfig(
            labels=[int(label) for label in data["labels"]],
            min_words=int(data["min_words"]),
            max_words=int(data["max_words"]),
            max_duplicates=int(data["max_duplicates"]),
            max_balance_shift=float(data["max_balance_shift"]),
        )
        rates = {kind: float(behaviour["min_pass_rate"][kind]) for kind in KINDS}
        behaviour_config = BehaviourConfig(
            min_pass_rate=rates,
            min_drop=float(behaviour["min_drop"]),
            seed=int(behaviour["seed"]),
            fillings=int(behaviour["fillings"]),
            vocabulary={str(name): [str(word) for word in words] for name, words in behaviour["vocabulary"].items()},
            templates=[[str(correct), str(error)] for correct, error in behaviour["templates"]],
        )
    except OSError as error:
        raise CourseError(f"cannot read the gate's config {path} ({error.strerror}): {fix}") from error
    except yaml.YAMLError as error:
        raise CourseError(f"{path} is not YAML ({str(error).splitlines()[0]}): {fix}") from error
    except KeyError as error:
        raise CourseError(f"{path} has no {error.args[0]!r} where the gate expects one: {fix}") from error
    except (TypeError, ValueError, AttributeError) as error:
        raise CourseError(f"{path}: a value has the wrong type ({error}): {fix}") from error
    bad = {kind: rate for kind, rate in rates.items() if not 0 <= rate <= 1}
    if bad:
        raise CourseError(f"{path}: min_pass_rate {bad} must be between 0 and 1: {fix}")
    return data_config, behaviour_config


def write_report(path: Path, report: dict) -> Path:
    """Write a report atomically into a folder git ignores (a throwaway project has no .gitignore for it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ignore = path.parent / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# gate reports, written by monitoring/gate.py\n*\n", encoding="utf-8")
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)
    return path


def shown_path(path: Path) -> str:
    """`path` relative to the week when it is inside it, as a learner would type it."""
    try:
        return str(path.relative_to(WEEK_DIR))
    except ValueError:
        return str(path)


def refuse_batch_if_failing(report, reports_dir: Path, version: str) -> None:
    """Write the batch's report; raise GateRefused naming it when a check failed."""
    path = write_report(reports_dir / f"batch-{version}.json", {"checked_at": utc_timestamp(), **report.as_dict()})
    if not report.passed:
        raise GateRefused(
            f"the data gate refused {report.subject}: {', '.join(report.failed())} failed; the failing rows are in "
            f"{shown_path(path)} (`python -m monitoring.gate batch FILE` prints them): fix those rows and run again"
        )


def gate_batch_rows(rows: list[dict], version: str, raw_dir: Path = RAW_DIR, reports_dir: Path | None = None) -> None:
    """The data checks of the rows a batch is about to be written with (monitoring/labelled_data.py)."""
    data_config, _ = load_config()
    frame = pd.DataFrame({"sentence": [str(r["sentence"]) for r in rows], "label": [str(r["label"]) for r in rows]})
    report = check_batch_frame(frame, f"the new batch {version}", version, data_config, raw_dir)
    refuse_batch_if_failing(report, reports_dir or raw_dir.parent / "reports" / "gate", version)


def gate_candidate(
    data_version: str | None,
    export_dir: Path = EXPORT_DIR,
    prepared_dir: Path = PREPARED_DIR,
    config_path: Path | None = None,
    reports_dir: Path = REPORTS_DIR,
) -> dict:
    """Both gates on a candidate: its prepared data version and its behaviour.

    Prints one line per check, writes reports/gate/candidate-<model version>.json and returns
    the summary monitoring/promote.py keeps in the production record: passed, the report's path,
    each data check's verdict and each behaviour test's pass rate.
    """
    data_config, behaviour_config = load_config(config_path)
    data = check_version(prepared_dir / "train.csv", data_version or "unknown", data_config)
    behaviour = check_model(export_dir, behaviour_config)
    for line in [*data_lines(data), *behaviour_lines(behaviour)]:
        print(line)
    passed = data.passed and behaviour.passed
    path = reports_dir / f"candidate-{behaviour.model}.json"
    checked_at = utc_timestamp()
    full = {"model_version": behaviour.model, "checked_at": checked_at, "passed": passed}
    write_report(path, {**full, "data": data.as_dict(), "behaviour": behaviour.as_dict()})
    failed = [f"data {name}" for name in data.failed()] + [f"behaviour {kind}" for kind in behaviour.failed()]
    print(f"gate: {'passed' if passed else 'FAILED (' + ', '.join(failed) + ')'}; report: {shown_path(path)}")
    return {
        **full,
        "failed": failed,
        "report": shown_path(path),
        "data": {check.name: check.passed for check in data.checks},
        "behaviour": {
            check.kind: {"pass_rate": round(check.pass_rate, 4), "threshold": check.threshold, "passed": check.passed}
            for check in behaviour.checks
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("what", choices=["batch", "data", "model", "candidate"])
    parser.add_argument("batch_csv", type=Path, nargs="?", help="batch: the labelled batch CSV (sentence,label)")
    parser.add_argument("--version", help="batch: the data version it makes (default: its file name, v3.csv -> v3)")
    parser.add_argument("--data-version", help="data/candidate: the prepared version (default: params.yaml's)")
    parser.add_argument("--export-dir", type=Path, default=EXPORT_DIR, help="model/candidate: the ONNX export")
    parser.add_argument("--prepared-dir", type=Path, default=PREPARED_DIR, help="data/candidate: the prepared data")
    parser.add_argument("--config", type=Path, help="another gate config than monitoring/gate.yaml")
    args = parser.parse_args()
    data_config, behaviour_config = load_config(args.config)
    if args.what == "batch":
        if args.batch_csv is None:
            raise CourseError("batch needs the CSV to check: python -m monitoring.gate batch data/labelled/v3.csv")
        version = args.version or args.batch_csv.stem
        report = check_batch(args.batch_csv, version, data_config)
        print("\n".join(data_lines(report)))
        try:
            refuse_batch_if_failing(report, REPORTS_DIR, version)
        except GateRefused as refused:
            print(f"refused: {refused}", file=sys.stderr)  # one line, like an error, but exit 3: refused
            sys.exit(REFUSED)
        print(f"passed: {report.subject}")
        return
    from monitoring.labelled_data import selected_version  # params.yaml's data.version

    version = args.data_version or selected_version() or "unknown"
    if args.what == "candidate":
        summary = gate_candidate(version, args.export_dir, args.prepared_dir, args.config)
        sys.exit(PASSED if summary["passed"] else REFUSED)
    if args.what == "data":
        report = check_version(args.prepared_dir / "train.csv", version, data_config)
        lines, passed, name = data_lines(report), report.passed, f"data-{version}"
        as_dict = report.as_dict()
    else:
        behaviour = check_model(args.export_dir, behaviour_config)
        lines, passed, name = behaviour_lines(behaviour, shown=25), behaviour.passed, f"model-{behaviour.model}"
        as_dict = behaviour.as_dict()
    print("\n".join(lines))
    path = write_report(REPORTS_DIR / f"{name}.json", {"checked_at": utc_timestamp(), **as_dict})
    print(f"gate: {'passed' if passed else 'FAILED'}; report: {shown_path(path)}")
    sys.exit(PASSED if passed else REFUSED)


if __name__ == "__main__":
    run_cli(main)
