"""Train the CoLA classifier and save the best checkpoint where inference.py finds it.

Every setting lives in configs/ (Hydra); change any of them on the command line:

    python train.py                                    # offline data + the bundled small BERT, W&B (default)
    python train.py data.source=hub                    # real CoLA + ELECTRA-small (3 epochs, lr 1e-4)
    python train.py data.source=hub model=bert_tiny    # real CoLA + BERT-tiny (0.0 MCC published)
    python train.py logger=mlflow training.lr=3e-4
    python train.py -m training.lr=1e-4,3e-4           # a sweep: one job per value
    python train.py --cfg job --resolve                # print the composed config, train nothing
    python train.py training.accelerator=gpu training.devices=4 training.strategy=ddp   # 4 GPUs, DDP
"""

from __future__ import annotations

from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig
from torchmetrics.utilities.distributed import gather_all_tensors

from collapse import collapse_warning, majority_baseline
from config import base_model, resolved_config, save_config
from data import ColaDataModule
from errors import CourseError, run_cli
from loggers import finish_run, make_logger
from model import LABELS, ColaModel
from source import HUB_MODEL, WEEK_DIR, resolve_source
from wandb_logging import ValidationReport

# The model option of source.HUB_MODEL, which learns CoLA (dev MCC 57.0 published): suggested when a run collapses.
LEARNING_OPTION = "electra_small"
CHECKPOINT_NAME = "best"  # -> artifacts/checkpoints/best.ckpt, overwritten by each single run


def checkpoint_path(checkpoints_dir: Path | str = WEEK_DIR / "artifacts" / "checkpoints") -> Path:
    """The best checkpoint in a checkpoint folder; by default the one inference.py loads."""
    return Path(checkpoints_dir) / f"{CHECKPOINT_NAME}.ckpt"


class LogConfig(L.Callback):
    """Log the whole config as the run's hyperparameters: any run can be found by any setting.

    At the start of fit, not before: only then does every DDP process know its rank, and only
    process 0 logs.
    """

    def __init__(self, resolved: dict) -> None:
        self.resolved = resolved

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.logger.log_hyperparams(self.resolved)


class GatherValidation(L.Callback):
    """Under DDP: hand every process the whole validation split's answers, in row order.

    Each process validates its own block of rows (data.ValidationShards); listed before
    ValidationReport, this runs first, so the W&B plots and the collapse check see every row.
    """

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.world_size == 1:
            return
        for rows in (pl_module.val_probabilities, pl_module.val_labels):
            # NCCL gathers only tensors on the GPU; gloo (CPU) takes them where they are.
            blocks = gather_all_tensors(torch.cat(rows).to(pl_module.device))
            rows[:] = [torch.cat(blocks).cpu()]  # blocks come in rank order: rows in order


def in_multirun() -> bool:
    """True inside a job of `python train.py -m ...`."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit the model `cfg` describes; return the best checkpoint's validation metrics."""
    if len(cfg.data.labels) != len(LABELS):
        raise CourseError(f"data.labels has {len(cfg.data.labels)} names, but the model has {len(LABELS)} classes")
    L.seed_everything(cfg.training.seed, workers=True)
    source = resolve_source(cfg.data.source)
    resolved = resolved_config(cfg, source)
    lr, max_epochs = resolved["training"]["lr"], resolved["training"]["max_epochs"]  # null -> the model's own
    model_name = base_model(cfg, source)
    print(f"base model: {model_name} ({source}), lr={lr:g}, max_epochs={max_epochs}")
    data = ColaDataModule(model_name, source, cfg.data.batch_size, cfg.data.max_length)
    model = ColaModel(model_name, lr=lr, max_length=cfg.data.max_length)
    best = checkpoint_path(cfg.paths.checkpoints)
    checkpoint = ModelCheckpoint(
        dirpath=best.parent,
        filename=CHECKPOINT_NAME,
        monitor="val/loss",
        mode="min",
        enable_version_counter=False,  # keep the path stable: best.ckpt, not best-v1.ckpt
    )
    logger = make_logger(cfg)
    trainer = L.Trainer(
        accelerator=cfg.training.accelerator,
        devices=cfg.training.devices,
        strategy=cfg.training.strategy,
        num_nodes=cfg.training.num_nodes,
        precision=cfg.training.precision,
        max_epochs=max_epochs,
        # The report only draws for W&B; GatherValidation must come before it.
        callbacks=[checkpoint, LogConfig(resolved), GatherValidation(), ValidationReport()],
        logger=logger,
        default_root_dir=cfg.paths.artifacts,
        log_every_n_steps=cfg.training.log_every_n_steps,
    )
    if trainer.world_size > 1 and in_multirun():
        # DDP starts the other processes by re-running this command line, -m included: a sweep in each.
        raise CourseError("a multirun (-m) trains on one device: drop -m, or run each job alone with DDP")
    trainer.fit(model, datamodule=data)
    [metrics] = trainer.validate(model, datamodule=data, ckpt_path="best", verbose=False)
    if not trainer.is_global_zero:
        # Under DDP every process has trained and holds the same synced metrics; process 0 alone
        # writes the records and prints, so each exists once.
        return {name: float(value) for name, value in metrics.items()}
    # Records an earlier run left beside the same path would now describe the wrong checkpoint.
    for stale in best.parent.glob(f"{CHECKPOINT_NAME}.*.json"):
        stale.unlink()
    save_config(resolved, best)  # before finish_run: MLflow stores it with the checkpoint
    finish_run(logger, cfg, best)
    labels = data.val_data["label"]
    print(
        f"best checkpoint: {checkpoint.best_model_path}\n"
        f"validation: accuracy={metrics['val/acc']:.3f} mcc={metrics['val/mcc']:.3f} "
        f"loss={metrics['val/loss']:.3f} (majority class: accuracy={majority_baseline(labels)[1]:.3f})"
    )
    tries = [
        f"a smaller learning rate (training.lr=..., now {lr:g})",
        f"more epochs (training.max_epochs=..., now {max_epochs})",
    ]
    if model_name != HUB_MODEL:  # the offline model or BERT-tiny: the model option that learns CoLA
        tries.append(f"a base model that learns CoLA: data.source=hub model={LEARNING_OPTION} ({HUB_MODEL})")
    preds = torch.cat(model.val_probabilities).argmax(dim=1).tolist()  # the best checkpoint's answers
    warning = collapse_warning(labels, metrics["val/acc"], metrics["val/mcc"], preds, LABELS, tries)
    if warning:
        print(warning)
    return {name: float(value) for name, value in metrics.items()}


def for_this_job(cfg: DictConfig) -> DictConfig:
    """A single run keeps the stable checkpoint path; each job of a multirun gets its own.

    The jobs of a sweep run one after another, and on one shared path each would overwrite the
    checkpoint of the job before it; so they save into their job folder instead, beside
    Hydra's record of that job: multirun/<date>/<time>/<job number>/checkpoints/best.ckpt.
    """
    hydra_config = HydraConfig.get()
    if hydra_config.mode == RunMode.MULTIRUN:
        cfg.paths.checkpoints = str(Path(hydra_config.runtime.output_dir) / "checkpoints")
    return cfg


@hydra.main(version_base="1.3", config_path="configs", config_name="config")
def main(cfg: DictConfig) -> None:
    """Hydra composes `cfg` from configs/ and the command line, and reports a bad override itself."""
    # Inside the task function: Hydra would print a CourseError with a traceback.
    run_cli(lambda: train(for_this_job(cfg)))


if __name__ == "__main__":
    main()
