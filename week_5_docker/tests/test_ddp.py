"""Data-parallel training with Lightning's DDP: two CPU processes (gloo) train one model.

One real run per module, `python train.py training.devices=2 training.strategy=ddp ...` on a
small slice of the offline data, checked from the outside: process 0 alone prints, saves the
checkpoint and its config and records the MLflow run; the metrics cover every validation row,
not only process 0's half; inference.py loads the checkpoint.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from conftest import TEST_MAX_LENGTH
from inference import ColaPredictor
from model import LABELS
from source import OFFLINE_DATA_DIR, WEEK_DIR, read_split

# An odd number of validation rows: the two processes validate 96 and 97 of them.
SMALL_DATA = {"train": 640, "validation": 193}
VALIDATION_LINE = re.compile(r"^validation: accuracy=(\d\.\d+) mcc=(-?\d\.\d+)", re.MULTILINE)


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Train once with two DDP processes and the MLflow logger; the folders and the output."""
    root = tmp_path_factory.mktemp("ddp")
    data = root / "data"
    data.mkdir()
    for split, rows in SMALL_DATA.items():
        lines = (OFFLINE_DATA_DIR / f"{split}.csv").read_text().splitlines(keepends=True)
        (data / f"{split}.csv").write_text("".join(lines[: rows + 1]))  # + the header
    artifacts, run_dir, elsewhere = root / "artifacts", root / "run", root / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(
        [
            sys.executable, str(WEEK_DIR / "train.py"),
            "training.accelerator=cpu", "training.devices=2", "training.strategy=ddp",
            "training.max_epochs=1", f"model.max_length={TEST_MAX_LENGTH}", "logger=mlflow",
            f"paths.artifacts={artifacts}", f"hydra.run.dir={run_dir}",
        ],
        cwd=elsewhere, env={**os.environ, "MLOPS_OFFLINE_DATA": str(data)},
        capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return {"stdout": done.stdout, "artifacts": artifacts, "run_dir": run_dir, "elsewhere": elsewhere, "data": data}


def test_process_zero_alone_prints_and_saves(ddp_run: dict) -> None:
    assert "Starting with 2 processes" not in ddp_run["stdout"]  # Lightning's banner goes to stderr
    assert len(VALIDATION_LINE.findall(ddp_run["stdout"])) == 1, ddp_run["stdout"][-2000:]
    assert ddp_run["stdout"].count("best checkpoint: ") == 1
    checkpoints = ddp_run["artifacts"] / "checkpoints"
    assert sorted(path.name for path in checkpoints.iterdir()) == ["best.ckpt", "best.config.yaml", "best.mlflow.json"]
    saved = OmegaConf.load(checkpoints / "best.config.yaml").training
    assert (saved.devices, saved.strategy) == (2, "ddp")


def test_one_mlflow_run_and_one_model_version(ddp_run: dict) -> None:
    client = MlflowClient(f"sqlite:///{ddp_run['artifacts']}/mlflow.db")
    [run] = client.search_runs([client.get_experiment_by_name("cola").experiment_id])
    assert run.info.status == "FINISHED"
    [version] = client.search_model_versions("name = 'cola-classifier'")
    assert version.run_id == run.info.run_id
    printed_accuracy = float(VALIDATION_LINE.search(ddp_run["stdout"]).group(1))
    assert run.data.metrics["val/acc"] == pytest.approx(printed_accuracy, abs=0.0005)


def test_hydra_keeps_one_run_folder_for_both_processes(ddp_run: dict) -> None:
    # Lightning re-runs the command for process 1 inside the parent's run folder, with no .hydra of its own.
    names = sorted(path.name for path in ddp_run["run_dir"].iterdir())
    assert names == [".hydra", "train.log", "train_ddp_process_1.log"]
    assert list(ddp_run["elsewhere"].iterdir()) == []


def test_metrics_cover_every_validation_row_and_inference_loads(ddp_run: dict) -> None:
    """Each process validated half the rows; the printed accuracy is that of all of them."""
    predictor = ColaPredictor(ddp_run["artifacts"] / "checkpoints" / "best.ckpt")
    rows = read_split("validation", ddp_run["data"])
    results = predictor.predict_batch([row["sentence"] for row in rows])
    correct = sum(LABELS[row["label"]] == result["label"] for row, result in zip(rows, results, strict=True))
    printed_accuracy = float(VALIDATION_LINE.search(ddp_run["stdout"]).group(1))
    # one row is 0.005 of 193; the printed value is rounded to 0.001
    assert correct / len(rows) == pytest.approx(printed_accuracy, abs=0.0011)


def test_a_sweep_refuses_ddp_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable, str(WEEK_DIR / "train.py"), "-m",
            "training.accelerator=cpu", "training.devices=2", "training.strategy=ddp", "logger=csv",
            f"paths.artifacts={tmp_path / 'artifacts'}", f"hydra.sweep.dir={tmp_path / 'multirun'}",
        ],
        cwd=WEEK_DIR, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1].startswith("error: a multirun (-m) trains on one device")
    assert not (tmp_path / "artifacts" / "checkpoints").exists()
