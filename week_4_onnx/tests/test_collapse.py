"""The collapse guard: the majority-class baseline, and the warning for a model that learned nothing."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sys
from pathlib import Path

import pytest

from collapse import MIN_MCC, collapse_warning, majority_baseline
from conftest import WEEK_DIR, short_run
from errors import run_cli
from inference import ColaPredictor
from source import read_split

LABELS = [1] * 7 + [0] * 3  # 70% "acceptable", as on CoLA


def test_majority_baseline_is_the_share_of_the_most_common_label() -> None:
    assert majority_baseline(LABELS) == (1, 0.7)
    assert majority_baseline([0, 1, 1, 0]) == (None, 0.5)  # a tie: either class


def test_one_class_predictions_warn_with_the_baseline_even_when_mcc_looks_positive() -> None:
    # torchmetrics scores one-class answers on a small imbalanced set above 0, so predictions decide.
    warning = collapse_warning(LABELS, accuracy=0.7, mcc=0.18, preds=[1] * 10, tries=["--lr 1e-4"])
    assert warning is not None
    assert "WARNING" in warning and 'predicts "acceptable" for every sentence' in warning
    assert 'always answering "acceptable" scores accuracy 0.700' in warning
    assert "- --lr 1e-4" in warning


def test_a_model_that_learned_gets_no_warning() -> None:
    preds = [1] * 6 + [0] + [0] * 3  # one mistake
    assert collapse_warning(LABELS, accuracy=0.9, mcc=0.80, preds=preds) is None
    assert collapse_warning(LABELS, accuracy=0.75, mcc=MIN_MCC + 0.001) is None


def test_mcc_at_the_threshold_warns() -> None:
    warning = collapse_warning(LABELS, accuracy=0.7, mcc=MIN_MCC)
    assert warning is not None and f"<= {MIN_MCC}" in warning


def collapsed_training(artifacts: Path) -> tuple[dict, Path]:
    """One epoch at a learning rate far too high: metrics and the best checkpoint."""
    from train import checkpoint_path, train

    metrics = train(short_run(artifacts, "training.lr=1.0", "logger=csv"))
    return metrics, checkpoint_path(artifacts / "checkpoints")


@pytest.fixture(scope="module")
def collapsed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The collapsed run, once per module: metrics, checkpoint and what training printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        metrics, checkpoint = collapsed_training(tmp_path_factory.mktemp("collapsed"))
    return {"metrics": metrics, "checkpoint": checkpoint, "out": printed.getvalue()}


def test_a_collapsed_training_ends_with_the_warning(collapsed: dict) -> None:
    sentences = [row["sentence"] for row in read_split("validation")]
    answers = {result["label"] for result in ColaPredictor(collapsed["checkpoint"]).predict_batch(sentences)}
    assert len(answers) == 1, f"lr 1.0 was expected to collapse the model, it answered {answers}"
    assert collapsed["metrics"]["val/mcc"] <= MIN_MCC
    out = collapsed["out"]
    assert "(majority class: accuracy=0.500)" in out
    assert "WARNING: the model has learned (almost) nothing" in out
    assert "always answering either class scores accuracy 0.500" in out
    assert 'predicts "' in out  # train.py knows the predictions from week 1 on
    assert "a smaller learning rate (training.lr=..., now 1)" in out
    assert "data.source=hub model=electra_small" in out  # the offline model: the option that learns CoLA


def run_evaluate(monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    """evaluate.py's command line, as the DVC stage runs it, in this process."""
    import evaluate

    monkeypatch.setattr(sys, "argv", ["evaluate.py", *args])
    run_cli(evaluate.main)


def test_evaluate_reports_the_baseline_and_warns_on_the_collapsed_model(
    collapsed: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "metrics.json"
    data = WEEK_DIR / "data" / "validation.csv"
    run_evaluate(monkeypatch, "--checkpoint", str(collapsed["checkpoint"]), "--data", str(data), "--out", str(out))
    metrics = json.loads(out.read_text())
    assert metrics["majority_accuracy"] == 0.5 and metrics["accuracy"] == 0.5 and metrics["mcc"] <= MIN_MCC
    printed = capsys.readouterr().out
    assert "majority_accuracy=0.5" in printed
    assert "WARNING: the model has learned (almost) nothing" in printed
    assert 'predicts "' in printed and "train.lr in params.yaml" in printed


def test_evaluate_refuses_unlabelled_rows_in_one_line(
    collapsed: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    data, out = tmp_path / "test.csv", tmp_path / "metrics.json"
    with open(data, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["sentence", "label", "idx"])
        writer.writeheader()
        writer.writerows(
            {"sentence": row["sentence"], "label": -1, "idx": i} for i, row in enumerate(read_split("validation")[:5])
        )
    with pytest.raises(SystemExit) as exited:
        run_evaluate(monkeypatch, "--checkpoint", str(collapsed["checkpoint"]), "--data", str(data), "--out", str(out))
    assert exited.value.code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "-1 marks an unlabelled row" in error and "validation.csv" in error, error
    assert not out.exists()
