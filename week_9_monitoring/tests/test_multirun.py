"""A multirun sweep: one job per value, each with its own checkpoint, config and results."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from omegaconf import OmegaConf

from conftest import TEST_MAX_LENGTH
from source import OFFLINE_DATA_DIR, WEEK_DIR

LEARNING_RATES = (1e-4, 3e-4)
SMALL_DATA = {"train": 640, "validation": 192}  # rows per split: ten and three batches of 64


def small_offline_data(folder: Path) -> Path:
    """The first rows of each bundled split, for a sweep that only has to show two different results."""
    folder.mkdir()
    for split, rows in SMALL_DATA.items():
        lines = (OFFLINE_DATA_DIR / f"{split}.csv").read_text().splitlines(keepends=True)
        (folder / f"{split}.csv").write_text("".join(lines[: rows + 1]))  # + the header
    return folder


def final_validation_loss(record: Path) -> float:
    """The last val/loss in the metrics.csv that a CSV run record points to."""
    with open(json.loads(record.read_text())["csv_metrics"], newline="") as handle:
        losses = [float(row["val/loss"]) for row in csv.DictReader(handle) if row["val/loss"]]
    return losses[-1]


def test_sweep_over_two_learning_rates(tmp_path: Path) -> None:
    elsewhere, sweep, artifacts = tmp_path / "elsewhere", tmp_path / "multirun", tmp_path / "artifacts"
    elsewhere.mkdir()
    env = {**os.environ, "MLOPS_OFFLINE_DATA": str(small_offline_data(tmp_path / "data"))}
    done = subprocess.run(
        [
            sys.executable, str(WEEK_DIR / "train.py"), "-m",
            f"training.lr={','.join(map(str, LEARNING_RATES))}",
            "training.max_epochs=1", f"model.max_length={TEST_MAX_LENGTH}", "logger=csv",
            f"paths.artifacts={artifacts}", f"hydra.sweep.dir={sweep}",
        ],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=400,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    jobs = sorted(path for path in sweep.iterdir() if path.is_dir())
    assert [job.name for job in jobs] == ["0", "1"]
    losses = {}
    for job, lr in zip(jobs, LEARNING_RATES, strict=True):
        checkpoint = job / "checkpoints" / "best.ckpt"
        assert checkpoint.is_file(), f"job {job.name} kept no checkpoint of its own"
        assert f"training.lr={lr}" in OmegaConf.load(job / ".hydra" / "overrides.yaml")
        assert OmegaConf.load(checkpoint.with_suffix(".config.yaml")).training.lr == lr
        losses[lr] = final_validation_loss(checkpoint.with_suffix(".csv.json"))
    assert losses[LEARNING_RATES[0]] != losses[LEARNING_RATES[1]], losses

    # the stable single-run checkpoint is left alone, and nothing lands in the working directory
    assert not (artifacts / "checkpoints").exists()
    assert list(elsewhere.iterdir()) == []
