"""The promotion gate: pandera data checks of batches and data versions, CheckList-style behaviour
tests of models, thresholds from monitoring/gate.yaml, and the CLI's reports and exit codes."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from onnx import numpy_helper

from conftest import run_script
from errors import CourseError
from helpers.sample_events import make_events
from monitoring import gate
from monitoring.gate_behaviour import KINDS, build_pairs, check_model
from monitoring.gate_data import check_batch, check_version
from monitoring.labelled_data import comparison_key, ingest
from monitoring.monitoring_report import render
from prepare_data import RAW_DIR, prepare, read_rows
from source import WEEK_DIR
from support.ops_grammar import other_domain_rows

DATA, BEHAVIOUR = gate.load_config()


def write_batch(path: Path, rows: list[tuple[str, object]], header: tuple[str, ...] = ("sentence", "label")) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def new_rows(count: int, label: int | None = None, seed: int = 1) -> list[tuple[str, int]]:
    """Sentences of the software-operations grammar (none is in data/), half acceptable unless `label` is set."""
    rows = [(row["sentence"], row["label"]) for row in other_domain_rows(count * 3, seed=seed)]
    chosen = [row for row in rows if label is None or row[1] == label]
    return list(dict.fromkeys(chosen))[:count]


# ----------------------------------------------------------------------------- the config


def test_the_thresholds_live_outside_every_dvc_dependency() -> None:
    """Changing a threshold re-decides promotion and never retrains: no stage reads monitoring/ or a gate key."""
    stages = yaml.safe_load((WEEK_DIR / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        deps = [str(dep) for dep in stage.get("deps", [])]
        assert not [dep for dep in deps if dep.startswith("monitoring")], name
        assert all(not str(param).startswith("gate") for param in stage.get("params", [])), name
    assert "gate" not in yaml.safe_load((WEEK_DIR / "params.yaml").read_text())
    assert set(BEHAVIOUR.min_pass_rate) == set(KINDS) and all(
        0 < rate <= 1 for rate in BEHAVIOUR.min_pass_rate.values()
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda raw: raw["data"].pop("max_words"), "has no 'max_words' where the gate expects one"),
        (lambda raw: raw["behaviour"]["min_pass_rate"].update(directional=1.5), "must be between 0 and 1"),
        (lambda raw: raw["behaviour"]["templates"].append(["{robot.sg} runs.", "{robot.pl} runs."]), "robot"),
    ],
)
def test_a_broken_config_is_one_line_naming_the_key(tmp_path: Path, edit, message: str) -> None:
    raw = yaml.safe_load(gate.CONFIG_PATH.read_text())
    edit(raw)
    path = tmp_path / "gate.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(CourseError, match=re.escape(message)):
        _, behaviour = gate.load_config(path)
        build_pairs(behaviour)


# ----------------------------------------------------------------------------- data checks


def test_a_clean_batch_passes_every_data_check(tmp_path: Path) -> None:
    report = check_batch(write_batch(tmp_path / "v3.csv", new_rows(60)), "v3", DATA)
    assert report.passed, report.as_dict()
    assert [check.name for check in report.checks] == [
        "schema",
        "label_set",
        "not_empty",
        "length_range",
        "no_duplicates",
        "not_in_validation",
        "label_balance",
    ]


def test_duplicates_unknown_labels_and_a_validation_leak_are_refused_with_their_lines(tmp_path: Path) -> None:
    validation = read_rows(RAW_DIR / "validation.csv")[0]["sentence"]
    training = read_rows(RAW_DIR / "train.csv")[5]["sentence"]
    good = new_rows(20)
    rows = [
        *good,  # lines 2-21
        (good[0][0].upper().replace(".", " ."), good[0][1]),  # line 22: line 2 as the tokenizer reads it
        (good[1][0], "maybe"),  # line 23: an unknown label (and a second copy of line 3)
        ("  " + validation.lower(), 1),  # line 24: a validation sentence, normalised differently
        (training, 1),  # line 25: already in the data version the batch extends
        ("   ", 0),  # line 26: empty
        (" ".join(["word"] * (DATA.max_words + 1)), 1),  # line 27: too long
    ]
    path = write_batch(tmp_path / "v3.csv", rows)
    report = check_batch(path, "v3", DATA)
    failed = {
        check.name: [failure["line"] for failure in check.failures] for check in report.checks if not check.passed
    }
    assert failed == {
        "label_set": [23],
        "not_empty": [26],
        "length_range": [27],
        "no_duplicates": [22, 23, 25],
        "not_in_validation": [24],
    }
    leak = next(check for check in report.checks if check.name == "not_in_validation").failures[0]
    assert leak["value"] == comparison_key(validation)

    # The CLI: exit 3, one line naming the report, which lists every failing row.
    result = run_script("-m", "monitoring.gate", "batch", str(path))
    assert result.returncode == 3, result.stdout + result.stderr
    error = result.stderr.strip().splitlines()
    assert len(error) == 1 and "label_set, not_empty, length_range, no_duplicates, not_in_validation failed" in error[0]
    written = json.loads((WEEK_DIR / "reports" / "gate" / "batch-v3.json").read_text())
    assert "reports/gate/batch-v3.json" in error[0] and written["passed"] is False
    assert "line 24:" in result.stdout


def test_a_batch_that_tilts_the_label_balance_is_refused_unless_the_config_allows_it(tmp_path: Path) -> None:
    path = write_batch(tmp_path / "v3.csv", new_rows(400, label=1))
    report = check_batch(path, "v3", DATA)
    assert report.failed() == ["label_balance"]
    assert "acceptable share 0.559, previous version 0.500" in report.checks[-1].detail
    looser = type(DATA)(**{**vars(DATA), "max_balance_shift": 0.1})
    assert check_batch(path, "v3", looser).passed


def test_a_batch_with_other_columns_fails_the_schema_and_nothing_else_runs(tmp_path: Path) -> None:
    path = write_batch(tmp_path / "v3.csv", [("The dog barks.", 1)], header=("text", "label"))
    report = check_batch(path, "v3", DATA)
    assert not report.checks[0].passed and "expected ['sentence', 'label']" in report.checks[0].detail
    assert all(check.detail == "not run: the schema failed" for check in report.checks[1:])


def test_every_prepared_version_passes_and_a_leaked_one_is_refused(tmp_path: Path) -> None:
    for version in ("v1", "v2"):
        prepare(version, tmp_path / version)
        assert check_version(tmp_path / version / "train.csv", version, DATA).passed, version
    train = tmp_path / "v2" / "train.csv"
    leaked = read_rows(RAW_DIR / "validation.csv")[7]
    with open(train, "a", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerow([leaked["sentence"], leaked["label"], 3000])
    report = check_version(train, "v2", DATA)
    assert report.failed() == ["not_in_validation"]
    assert report.checks[5].failures == [
        {"line": 3002, "sentence": leaked["sentence"], "value": comparison_key(leaked["sentence"])}
    ]


def test_ingest_refuses_a_failing_batch_and_writes_nothing(tmp_path: Path) -> None:
    raw = tmp_path / "data"
    shutil.copytree(RAW_DIR, raw)
    params = tmp_path / "params.yaml"
    shutil.copy(WEEK_DIR / "params.yaml", params)
    filled = write_batch(tmp_path / "filled.csv", [(s, "acceptable") for s, _ in new_rows(400, label=1)])
    with pytest.raises(gate.GateRefused, match=r"label_balance failed; the failing rows are in .*batch-v3\.json"):
        ingest(filled, raw, params)
    assert not (raw / "labelled").exists() and params.read_text() == (WEEK_DIR / "params.yaml").read_text()
    assert json.loads((tmp_path / "reports" / "gate" / "batch-v3.json").read_text())["passed"] is False


# ----------------------------------------------------------------------------- behaviour tests


def test_the_cases_are_minimal_pairs_and_their_twins_change_one_word() -> None:
    pairs = build_pairs(BEHAVIOUR)
    assert len(pairs) == len(BEHAVIOUR.templates) * BEHAVIOUR.fillings
    assert [pair.correct for pair in build_pairs(BEHAVIOUR)] == [pair.correct for pair in pairs]  # seeded
    for pair in pairs:
        correct, error = pair.correct.split(), pair.error.split()
        assert len(correct) == len(error) and sum(a != b for a, b in zip(correct, error, strict=True)) == 1, pair
        twin = pair.swapped[0].split()
        assert len(twin) == len(correct) and sum(a != b for a, b in zip(correct, twin, strict=True)) == 1, pair


@pytest.fixture(scope="module")
def one_class_export(exported: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's trained export with its classifier zeroed and biased: it answers acceptable to everything."""
    folder = tmp_path_factory.mktemp("one-class") / "onnx"
    shutil.copytree(exported["export_dir"], folder)
    model = onnx.load(folder / "model.onnx")
    for tensor in model.graph.initializer:
        if tensor.name in ("model.classifier.weight", "model.classifier.bias"):
            values = np.zeros_like(numpy_helper.to_array(tensor))
            if tensor.name.endswith("bias"):
                values[1] = 5.0  # label 1, acceptable: P = 0.993 whatever the sentence
            tensor.CopyFrom(numpy_helper.from_array(values, tensor.name))
    onnx.save(model, folder / "model.onnx")
    return folder


def test_a_trained_model_passes_the_behaviour_tests(exported: dict) -> None:
    report = check_model(exported["export_dir"], BEHAVIOUR)
    print("\n".join(f"{c.kind}: {c.pass_rate:.3f}" for c in report.checks))
    assert report.passed, report.as_dict()


def test_a_model_that_always_says_acceptable_is_refused_with_its_failing_cases(one_class_export: Path) -> None:
    report = check_model(one_class_export, BEHAVIOUR)
    rates = {check.kind: check.pass_rate for check in report.checks}
    assert rates == {"mft_acceptable": 1.0, "mft_unacceptable": 0.0, "invariance": 1.0, "directional": 0.0}
    assert report.failed() == ["mft_unacceptable", "directional"]
    unacceptable = report.checks[1]
    assert unacceptable.failed_cases == unacceptable.cases == len(BEHAVIOUR.templates) * BEHAVIOUR.fillings
    assert {case["sentence"] for case in unacceptable.failures} <= {pair.error for pair in build_pairs(BEHAVIOUR)}

    result = run_script("-m", "monitoring.gate", "model", "--export-dir", str(one_class_export))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "mft_unacceptable  FAIL    0.0% of 48 cases (needs 40%)" in result.stdout
    first = unacceptable.failures[0]["sentence"]
    assert f"{first!r}: P(acceptable) 0.99, expected unacceptable" in result.stdout


def test_the_thresholds_come_from_the_config(one_class_export: Path, tmp_path: Path) -> None:
    raw = yaml.safe_load(gate.CONFIG_PATH.read_text())
    raw["behaviour"]["min_pass_rate"].update(mft_unacceptable=0.0, directional=0.0)
    path = tmp_path / "lenient.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = run_script("-m", "monitoring.gate", "model", "--export-dir", str(one_class_export), "--config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mft_unacceptable  pass    0.0% of 48 cases (needs 0%)" in result.stdout


def test_gate_candidate_writes_the_report_and_the_summary_promote_keeps(
    one_class_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    prepare("v2", tmp_path / "prepared")
    summary = gate.gate_candidate("v2", one_class_export, tmp_path / "prepared", reports_dir=tmp_path / "reports")
    out = capsys.readouterr().out
    assert summary["passed"] is False and summary["failed"] == ["behaviour mft_unacceptable", "behaviour directional"]
    assert all(summary["data"].values()) and summary["behaviour"]["mft_unacceptable"]["pass_rate"] == 0.0
    report = json.loads(Path(summary["report"]).read_text())
    assert report["behaviour"]["checks"][1]["failures"] and report["data"]["passed"] is True
    assert "gate: FAILED (behaviour mft_unacceptable, behaviour directional)" in out
    assert (tmp_path / "reports" / ".gitignore").read_text().splitlines()[-1] == "*"

    # The monitoring report shows the champion's gate from its production record.
    page = render(make_events(30), champion={"model_version": "v2-abc", "gate": summary})
    assert "Production model v2-abc: gate FAILED (promoted with --force)" in page
    assert "behaviour: mft_unacceptable</td><td>0.0%</td><td>40%</td>" in page
