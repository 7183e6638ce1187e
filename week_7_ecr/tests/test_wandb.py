"""W&B: an offline run really holds the metrics, the confusion matrix and the misclassified table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from wandb.proto import wandb_internal_pb2

from errors import CourseError
from source import read_split
from support.wandb_run_reader import history, media_file, raw_records
from train import checkpoint_path, train
from wandb_logging import resolve_mode

METRICS = ["acc", "precision", "recall", "f1", "mcc"]


@pytest.fixture(scope="module")
def run_dir(trained: dict) -> Path:
    [directory] = (trained["artifacts"] / "wandb").glob("offline-run-*")
    return directory


@pytest.fixture(scope="module")
def rows(run_dir: Path) -> list[dict]:
    return history(run_dir)


def test_every_metric_is_logged_for_both_splits(rows: list[dict]) -> None:
    logged = set().union(*rows)
    for split in ("train", "val"):
        for metric in METRICS:
            assert f"{split}/{metric}" in logged
    assert {"train/loss", "val/loss"} <= logged


def test_one_validation_row_per_epoch(rows: list[dict]) -> None:
    from conftest import TEST_EPOCHS

    epochs = [row["epoch"] for row in rows if "val/mcc" in row]
    # one row per epoch, then the final `validate()` of the best checkpoint (logged after the last)
    assert epochs == [*range(TEST_EPOCHS), TEST_EPOCHS]


def test_confusion_matrix_image_is_written(rows: list[dict], run_dir: Path) -> None:
    from conftest import TEST_EPOCHS

    images = [row["val/confusion_matrix"] for row in rows if "val/confusion_matrix" in row]
    assert len(images) == TEST_EPOCHS + 1, "one confusion matrix per epoch and one for the final validation"
    png = media_file(run_dir, images[-1])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (images[-1]["width"], images[-1]["height"]) == (400, 350)  # figsize (4, 3.5) at 100 dpi


def validation_size() -> int:
    return len(read_split("validation"))


def test_misclassified_table_matches_validation_accuracy(rows: list[dict], run_dir: Path) -> None:
    """The table holds exactly the validation sentences the model got wrong in that epoch."""
    tables = [row["val/misclassified"] for row in rows if "val/misclassified" in row]
    # Both are logged once per validation epoch, in the same order: pair them up.
    accuracies = [row["val/acc"] for row in rows if "val/acc" in row]
    assert len(tables) == len(accuracies) >= 2, "one misclassified table per validation epoch"
    n_val = validation_size()
    for reference, accuracy in zip(tables, accuracies, strict=True):
        table = json.loads(media_file(run_dir, reference).read_text())
        assert table["columns"] == ["sentence", "true label", "predicted label", "probability"]
        assert all(true != predicted for _, true, predicted, _ in table["data"])
        assert all(0.5 <= probability <= 1.0 for *_, probability in table["data"])
        # computed on the validation split: its size and the logged accuracy agree with the table
        assert len(table["data"]) == round((1 - accuracy) * n_val)


def test_run_id_is_recorded_beside_the_checkpoint(trained: dict, run_dir: Path) -> None:
    info = json.loads(trained["checkpoint"].with_suffix(".wandb.json").read_text())
    assert info["wandb_run_id"] and run_dir.name.endswith(info["wandb_run_id"])
    assert info["wandb_mode"] == "offline"


def run_config(run_dir: Path) -> dict:
    """The run's config panel: every `config` record of the offline run file, merged."""
    config = {}
    [run_file] = run_dir.glob("run-*.wandb")
    for raw in raw_records(run_file):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "config":
            config.update({item.key: json.loads(item.value_json) for item in record.config.update})
    return config


def test_the_resolved_config_is_the_runs_config(run_dir: Path) -> None:
    from conftest import TEST_EPOCHS, TEST_MAX_LENGTH

    config = run_config(run_dir)
    assert config["training"]["max_epochs"] == TEST_EPOCHS
    assert config["data"] == {"source": "offline", "batch_size": 64, "max_length": TEST_MAX_LENGTH,
                              "labels": ["unacceptable", "acceptable"]}
    assert config["logger"]["name"] == "wandb"


def test_disabled_mode_trains_and_writes_no_run(tmp_path: Path) -> None:
    from conftest import short_run

    metrics = train(short_run(tmp_path, "logger.mode=disabled"))
    assert "val/acc" in metrics
    assert checkpoint_path(tmp_path / "checkpoints").is_file()
    assert not list((tmp_path / "wandb").glob("offline-run-*"))


def test_mode_follows_login_state(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert resolve_mode() == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_mode() == "online"
    assert resolve_mode("disabled") == "disabled"
    with pytest.raises(CourseError, match="unknown W&B mode"):
        resolve_mode("sometimes")


def test_plot_run_draws_the_logged_curves(run_dir: Path, tmp_path: Path) -> None:
    from matplotlib.image import imread

    from support.plot_run import plot_run

    out = plot_run(run_dir, tmp_path / "run.png")
    pixels = imread(out)
    assert pixels.shape[:2] == (360, 2000)  # five 4 x 3.6 inch panels at 100 dpi
    assert pixels.std() > 0.05  # curves and a confusion matrix, not a blank canvas
