"""The `logger` group's CSV and MLflow options each train and leave their records (W&B: test_wandb.py).

Both runs share one artifacts folder, as two runs from the command line would: the MLflow run
comes second and must replace the CSV run's record beside the checkpoint.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from config import saved_config_path
from conftest import TEST_MAX_LENGTH, short_run
from train import checkpoint_path, train


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def csv_run(artifacts: Path) -> dict:
    metrics = train(short_run(artifacts, "logger=csv"))
    record = json.loads(checkpoint_path(artifacts / "checkpoints").with_suffix(".csv.json").read_text())
    return {"metrics": metrics, "record": record}


@pytest.fixture(scope="module")
def mlflow_run(artifacts: Path, csv_run: dict) -> dict:
    cfg = short_run(artifacts, "logger=mlflow")
    metrics = train(cfg)
    record = json.loads(checkpoint_path(artifacts / "checkpoints").with_suffix(".mlflow.json").read_text())
    return {"metrics": metrics, "record": record, "client": MlflowClient(cfg.logger.tracking_uri)}


def test_csv_logger_writes_validation_metrics(csv_run: dict, artifacts: Path) -> None:
    path = Path(csv_run["record"]["csv_metrics"])
    assert path.is_relative_to(artifacts / "csv")
    with open(path, newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["val/acc"]]
    assert len(rows) == 2  # the one epoch, then the final validation of the best checkpoint
    assert all(0.0 <= float(row["val/acc"]) <= 1.0 for row in rows)
    assert float(rows[-1]["val/acc"]) == pytest.approx(csv_run["metrics"]["val/acc"])
    # hparams.yaml beside it holds the resolved config
    hparams = OmegaConf.load(path.parent / "hparams.yaml")
    assert hparams.data.max_length == TEST_MAX_LENGTH and hparams.logger.name == "csv"
    assert not (artifacts / "wandb").exists()


def test_mlflow_run_holds_metrics_params_and_files(mlflow_run: dict) -> None:
    client, run_id = mlflow_run["client"], mlflow_run["record"]["mlflow_run_id"]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["val/acc"] == pytest.approx(mlflow_run["metrics"]["val/acc"])
    assert {"train/loss", "val/loss", "val/mcc"} <= set(run.data.metrics)
    assert run.data.params["training/lr"] == "0.001"
    assert run.data.params["data/max_length"] == str(TEST_MAX_LENGTH)
    files = {info.path for info in client.list_artifacts(run_id, "model")}
    assert files == {"model/best.ckpt", "model/best.config.yaml"}


def test_mlflow_registers_a_model_version(mlflow_run: dict, artifacts: Path, tmp_path: Path) -> None:
    client, record = mlflow_run["client"], mlflow_run["record"]
    [version] = client.search_model_versions("name = 'cola-classifier'")
    assert (record["registered_model"], record["registered_version"]) == ("cola-classifier", int(version.version))
    assert version.run_id == record["mlflow_run_id"]
    assert version.status == "READY"
    # the version's files are the run's copies: the config reads back equal to the one beside the checkpoint
    downloaded = client.download_artifacts(version.run_id, "model/best.config.yaml", str(tmp_path))
    assert version.source.endswith("/model")
    beside = saved_config_path(checkpoint_path(artifacts / "checkpoints"))
    assert OmegaConf.load(downloaded) == OmegaConf.load(beside)


def test_a_new_run_replaces_the_records_of_the_last(mlflow_run: dict, artifacts: Path) -> None:
    checkpoints = artifacts / "checkpoints"
    assert sorted(path.name for path in checkpoints.glob("best.*.json")) == ["best.mlflow.json"]
    assert OmegaConf.load(checkpoints / "best.config.yaml").logger.name == "mlflow"
