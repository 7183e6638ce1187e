"""Weights & Biases for this course: which mode to run in, the logger, and the extra plots.

Mode (a mode you ask for, with WANDB_MODE or train.py's option, wins; otherwise your login state decides):
  online    you are logged in (`wandb login` or WANDB_API_KEY): runs appear on wandb.ai
  offline   not logged in: the run is written to artifacts/wandb/, `wandb sync <dir>` uploads it later
  disabled  nothing is written
Project and entity come from WANDB_PROJECT / WANDB_ENTITY (see .env.example); nothing is
hard-coded, so every learner logs into their own account.
"""

from __future__ import annotations

import json
import logging
import netrc
import os
from pathlib import Path

import lightning as L
import matplotlib
import torch
from lightning.pytorch.loggers import WandbLogger

from errors import CourseError
from model import LABELS

matplotlib.use("Agg")  # plots are drawn in the training process, which has no display
import matplotlib.pyplot as plt  # noqa: E402

log = logging.getLogger(__name__)

MODES = ("online", "offline", "disabled")
DEFAULT_PROJECT = "mlops-basics"


def logged_in() -> bool:
    """True when W&B credentials exist: WANDB_API_KEY or an api.wandb.ai entry in ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def resolve_mode(requested: str | None = None) -> str:
    """The W&B mode to use, and one log line saying why."""
    mode = requested or os.environ.get("WANDB_MODE")
    if mode:
        if mode not in MODES:
            raise CourseError(f"unknown W&B mode {mode!r}: use one of {', '.join(MODES)}")
        log.info("W&B mode %s (asked for explicitly)", mode)
        return mode
    if logged_in():
        log.info("W&B mode online (credentials found)")
        return "online"
    log.warning("W&B mode offline: not logged in; run `wandb login` to log online, or sync later")
    return "offline"


def make_logger(save_dir: Path, mode: str | None = None) -> WandbLogger:
    """A WandbLogger writing under `save_dir`/wandb, project and entity from the environment."""
    save_dir.mkdir(parents=True, exist_ok=True)
    return WandbLogger(
        project=os.environ.get("WANDB_PROJECT", DEFAULT_PROJECT),
        entity=os.environ.get("WANDB_ENTITY") or None,
        save_dir=str(save_dir),
        mode=resolve_mode(mode),
        log_model=False,  # the checkpoint is versioned with DVC later in the course
    )


def confusion_matrix_figure(predictions: torch.Tensor, labels: torch.Tensor) -> plt.Figure:
    """A 2x2 confusion matrix (rows: true label, columns: predicted label) as a figure."""
    counts = torch.zeros(len(LABELS), len(LABELS), dtype=torch.long)
    for true, predicted in zip(labels.tolist(), predictions.tolist(), strict=True):
        counts[true, predicted] += 1
    fig, ax = plt.subplots(figsize=(4, 3.5), dpi=100)
    ax.imshow(counts.numpy(), cmap="Blues")
    ax.set_xticks(range(len(LABELS)), LABELS)
    ax.set_yticks(range(len(LABELS)), LABELS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for row in range(len(LABELS)):
        for col in range(len(LABELS)):
            colour = "white" if counts[row, col] > counts.max() / 2 else "black"
            ax.text(col, row, int(counts[row, col]), ha="center", va="center", color=colour)
    fig.tight_layout()
    return fig


class ValidationReport(L.Callback):
    """After each validation epoch: log a confusion matrix and a table of misclassified sentences."""

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not isinstance(trainer.logger, WandbLogger):
            return
        probabilities = torch.cat(pl_module.val_probabilities)
        labels = torch.cat(pl_module.val_labels)
        predictions = probabilities.argmax(dim=1)
        # The validation loader does not shuffle, so row i is validation sentence i.
        sentences = trainer.datamodule.val_data.with_format(None)["sentence"]
        rows = [
            [sentences[i], LABELS[int(labels[i])], LABELS[int(predictions[i])], round(float(probabilities[i].max()), 4)]
            for i in torch.nonzero(predictions != labels).flatten().tolist()
        ]
        figure = confusion_matrix_figure(predictions, labels)
        trainer.logger.log_image("val/confusion_matrix", [figure], step=trainer.global_step)
        plt.close(figure)
        trainer.logger.log_table(
            "val/misclassified",
            columns=["sentence", "true label", "predicted label", "probability"],
            data=rows,
            step=trainer.global_step,
        )


def record_run(logger: WandbLogger, checkpoint: Path) -> Path:
    """Write the W&B run's id beside the checkpoint, so a model can be traced to its run."""
    experiment = logger.experiment
    info = {
        "checkpoint": checkpoint.name,
        "wandb_run_id": getattr(experiment, "id", None),
        "wandb_project": getattr(experiment, "project", None),
        "wandb_mode": experiment.settings.mode if hasattr(experiment, "settings") else "disabled",
        "wandb_run_dir": getattr(experiment, "dir", None),
    }
    path = checkpoint.with_suffix(".wandb.json")
    path.write_text(json.dumps(info, indent=2) + "\n")
    return path
