"""Train the CoLA classifier and save the best checkpoint where inference.py finds it.

    python train.py                       # offline data + the bundled small BERT (default): 10 epochs, lr 1e-3
    python train.py --source hub          # real CoLA and google/electra-small-discriminator: 3 epochs, lr 1e-4
    python train.py --max-epochs 3 --lr 3e-4
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from collapse import collapse_warning, majority_baseline
from data import ColaDataModule
from errors import run_cli
from model import LABELS, ColaModel
from source import HUB_MODEL, SOURCES, WEEK_DIR, base_model_name, resolve_source

ARTIFACTS_DIR = WEEK_DIR / "artifacts"
CHECKPOINT_NAME = "best"  # -> artifacts/checkpoints/best.ckpt, overwritten by each run
# Learning rate and epochs where --lr / --max-epochs are not given, per resolved source.
# hub: ELECTRA-small with its authors' GLUE fine-tuning values (google-research/electra,
#   configure_finetuning.py: lr 1e-4, 3 epochs, 10% warm-up; CoLA dev MCC 57.0 in their README).
# offline: the bundled small BERT learns the 2,000 offline sentences with a higher rate and more epochs.
FINE_TUNING = {"hub": {"lr": 1e-4, "max_epochs": 3}, "offline": {"lr": 1e-3, "max_epochs": 10}}


@dataclass
class TrainConfig:
    """Everything a training run depends on."""

    source: str | None = None  # hub | offline | auto; None -> $MLOPS_SOURCE or offline
    max_epochs: int | None = None  # None -> FINE_TUNING[source]
    batch_size: int = 64
    max_length: int = 64
    lr: float | None = None  # None -> FINE_TUNING[source]
    seed: int = 42
    artifacts_dir: Path = ARTIFACTS_DIR


def checkpoint_path(artifacts_dir: Path = ARTIFACTS_DIR) -> Path:
    """The stable path of the best checkpoint of the last training run."""
    return artifacts_dir / "checkpoints" / f"{CHECKPOINT_NAME}.ckpt"


def train(config: TrainConfig) -> dict[str, float]:
    """Fit the model; return the best checkpoint's validation metrics."""
    L.seed_everything(config.seed, workers=True)
    source = resolve_source(config.source)
    model_name = base_model_name(source)
    lr = FINE_TUNING[source]["lr"] if config.lr is None else config.lr
    max_epochs = FINE_TUNING[source]["max_epochs"] if config.max_epochs is None else config.max_epochs
    print(f"base model: {model_name} ({source}), lr={lr:g}, max_epochs={max_epochs}")
    data = ColaDataModule(model_name, source, config.batch_size, config.max_length)
    model = ColaModel(model_name, lr=lr, max_length=config.max_length)
    checkpoint = ModelCheckpoint(
        dirpath=checkpoint_path(config.artifacts_dir).parent,
        filename=CHECKPOINT_NAME,
        monitor="val/loss",
        mode="min",
        enable_version_counter=False,  # keep the path stable: best.ckpt, not best-v1.ckpt
    )
    trainer = L.Trainer(
        accelerator="auto",  # a GPU when there is one, else the CPU
        devices=1,
        max_epochs=max_epochs,
        callbacks=[checkpoint],
        logger=False,
        default_root_dir=config.artifacts_dir,
        log_every_n_steps=10,
    )
    trainer.fit(model, datamodule=data)
    [metrics] = trainer.validate(model, datamodule=data, ckpt_path="best", verbose=False)
    labels = data.val_data["label"]
    print(
        f"best checkpoint: {checkpoint.best_model_path}\n"
        f"validation: accuracy={metrics['val/acc']:.3f} mcc={metrics['val/mcc']:.3f} "
        f"loss={metrics['val/loss']:.3f} (majority class: accuracy={majority_baseline(labels)[1]:.3f})"
    )
    tries = [
        f"a smaller learning rate (--lr, now {lr:g}; the default is {FINE_TUNING[source]['lr']:g})",
        f"more epochs (--max-epochs, now {max_epochs})",
    ]
    if model_name != HUB_MODEL:  # the offline model: real CoLA and a model that learns it are one flag away
        tries.append(f"real CoLA and a base model that learns it: --source hub ({HUB_MODEL})")
    if warning := collapse_warning(labels, metrics["val/acc"], metrics["val/mcc"], names=LABELS, tries=tries):
        print(warning)
    return {name: float(value) for name, value in metrics.items()}


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    """Command-line flags -> TrainConfig."""
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--source", choices=SOURCES, default=None, help="default: $MLOPS_SOURCE or offline")
    per_source = "default: 3 with --source hub, 10 offline"
    parser.add_argument("--max-epochs", type=int, default=defaults.max_epochs, help=per_source)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--max-length", type=int, default=defaults.max_length)
    parser.add_argument("--lr", type=float, default=defaults.lr, help="default: 1e-4 with --source hub, 1e-3 offline")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--artifacts-dir", type=Path, default=defaults.artifacts_dir)
    return TrainConfig(**vars(parser.parse_args(argv)))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    train(parse_args())


if __name__ == "__main__":
    run_cli(main)
