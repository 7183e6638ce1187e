"""The `logger` config group: W&B, CSV or MLflow, and what each leaves beside the checkpoint.

    logger=wandb   (default) week 1's W&B run; the run id goes to best.wandb.json
    logger=csv     metrics.csv under artifacts/csv/; its path goes to best.csv.json
    logger=mlflow  a run in a local MLflow store; the checkpoint and its config become a new
                   version of a registered model; run id and version go to best.mlflow.json
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, Logger, MLFlowLogger, WandbLogger
from omegaconf import DictConfig

import wandb_logging
from config import saved_config_path
from errors import CourseError

log = logging.getLogger(__name__)

NAMES = ("wandb", "csv", "mlflow")


def make_logger(cfg: DictConfig) -> Logger:
    """The Lightning logger that `cfg.logger` describes."""
    options = cfg.logger
    if options.name == "wandb":
        return wandb_logging.make_logger(Path(options.save_dir), options.mode)
    if options.name == "csv":
        return CSVLogger(save_dir=options.save_dir, name="csv")
    if options.name == "mlflow":
        Path(cfg.paths.artifacts).mkdir(parents=True, exist_ok=True)  # SQLite creates the file, not the folder
        return MLFlowLogger(
            experiment_name=options.experiment_name,
            tracking_uri=options.tracking_uri,
            artifact_location=options.artifact_location,
        )
    raise CourseError(f"unknown logger {options.name!r}: use logger={' or logger='.join(NAMES)}")


def write_record(checkpoint: Path, suffix: str, info: dict) -> Path:
    """Write `info` as JSON beside the checkpoint: best.ckpt -> best.<suffix>.json."""
    path = checkpoint.with_suffix(f".{suffix}.json")
    path.write_text(json.dumps({"checkpoint": checkpoint.name, **info}, indent=2) + "\n")
    return path


def register_model(logger: MLFlowLogger, checkpoint: Path, options: DictConfig) -> dict:
    """Log the checkpoint and its config to the run, and register them as a new model version."""
    client = logger.experiment  # an MlflowClient bound to the run's store
    run_id, name = logger.run_id, options.registered_model_name
    for path in (checkpoint, saved_config_path(checkpoint)):
        client.log_artifact(run_id, str(path), artifact_path="model")
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        client.create_registered_model(name, description="CoLA acceptability classifier (course week 2)")
    # The version points at the run's copy of the files, so deleting artifacts/checkpoints loses nothing.
    source = f"{client.get_run(run_id).info.artifact_uri}/model"
    version = client.create_model_version(name, source=source, run_id=run_id)
    client.set_terminated(run_id, "FINISHED")
    log.info("registered %s version %s from run %s", name, version.version, run_id)
    return {
        "mlflow_run_id": run_id,
        "mlflow_experiment_id": logger.experiment_id,
        "mlflow_tracking_uri": options.tracking_uri,
        "registered_model": name,
        "registered_version": int(version.version),
    }


def finish_run(logger: Logger, cfg: DictConfig, checkpoint: Path) -> Path:
    """After training: close the run and record it beside the checkpoint; returns the record."""
    if isinstance(logger, WandbLogger):
        path = wandb_logging.record_run(logger, checkpoint)
        logger.experiment.finish()  # flush the run to disk (offline) or to wandb.ai (online)
        return path
    if isinstance(logger, CSVLogger):
        logger.save()  # metrics.csv is written in batches; flush the last rows
        return write_record(checkpoint, "csv", {"csv_metrics": str(Path(logger.log_dir) / "metrics.csv")})
    if isinstance(logger, MLFlowLogger):
        return write_record(checkpoint, "mlflow", register_model(logger, checkpoint, cfg.logger))
    raise CourseError(f"no run record for a {type(logger).__name__}: use logger={' or logger='.join(NAMES)}")
