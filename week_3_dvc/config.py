"""The configuration: the typed schema of configs/, the `week_dir` resolver, and the saved copy.

Importing this module prepares Hydra, so train.py and the tests import it before composing:
  - `${week_dir:}` resolves to this folder, so configs never depend on the working directory;
  - the schema below is registered as `schema`, the first entry of configs/config.yaml's
    defaults: every key has a type, and `training.max_epochs=abc` fails while composing.
The YAML files under configs/ hold the values; this file only says what may be there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from errors import CourseError
from source import WEEK_DIR, base_model_name

CONFIG_DIR = WEEK_DIR / "configs"
SAVED_CONFIG_SUFFIX = ".config.yaml"  # best.ckpt -> best.config.yaml


@dataclass
class ModelConfig:
    """configs/model/*.yaml: the base model."""

    hub_name: str = MISSING  # the Hub model for data.source=hub; offline uses offline_model/
    max_length: int = MISSING  # tokens per sentence this model is trained on
    lr: float = MISSING  # this model's fine-tuning learning rate, where training.lr is null
    max_epochs: int = MISSING  # and its epochs, where training.max_epochs is null


@dataclass
class OfflineModelConfig:
    """config.yaml's offline_model: the bundled model's fine-tuning values (data.source=offline)."""

    lr: float = MISSING
    max_epochs: int = MISSING


@dataclass
class DataConfig:
    """configs/data/*.yaml: where the sentences come from and how they are cut."""

    source: str = MISSING  # hub | offline | auto
    batch_size: int = MISSING
    max_length: int = MISSING
    labels: list[str] = MISSING  # class names, in label-id order


@dataclass
class TrainingConfig:
    """configs/training/*.yaml: the Trainer and the optimizer."""

    max_epochs: int | None = MISSING  # null: the base model's own value (fine_tuning below)
    lr: float | None = MISSING  # null: the base model's own value (fine_tuning below)
    seed: int = MISSING
    accelerator: str = MISSING
    devices: Any = MISSING  # a count, "auto", or a list of device ids such as [0, 2]
    strategy: str = MISSING
    num_nodes: int = MISSING
    precision: str = MISSING
    log_every_n_steps: int = MISSING


@dataclass
class PathsConfig:
    """Where a run writes; by default both lie under ${week_dir:}."""

    artifacts: str = MISSING
    checkpoints: str = MISSING


@dataclass
class Config:
    """The whole tree, one field per group."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    offline_model: OfflineModelConfig = field(default_factory=OfflineModelConfig)
    # Each logger option has its own keys; `name` picks the code path in loggers.py.
    logger: Any = MISSING
    paths: PathsConfig = field(default_factory=PathsConfig)


def register() -> None:
    """Register the `week_dir` resolver and the schema (safe to call more than once)."""
    if not OmegaConf.has_resolver("week_dir"):
        OmegaConf.register_new_resolver("week_dir", lambda: str(WEEK_DIR))
    ConfigStore.instance().store(name="schema", node=Config)


register()


def base_model(cfg: DictConfig, source: str) -> str:
    """The `from_pretrained` name for a resolved source: the config's Hub model, or the offline one."""
    return cfg.model.hub_name if source == "hub" else base_model_name(source)


def fine_tuning(cfg: DictConfig, source: str) -> dict[str, float | int]:
    """The learning rate and epochs a run uses: training.lr / training.max_epochs, or where they are
    null the trained model's own: the model option's on the Hub, offline_model's offline."""
    own = cfg.model if source == "hub" else cfg.offline_model
    return {key: own[key] if cfg.training[key] is None else cfg.training[key] for key in ("lr", "max_epochs")}


def saved_config_path(checkpoint: Path) -> Path:
    """Where the config a checkpoint was trained with is saved: best.ckpt -> best.config.yaml."""
    return checkpoint.with_suffix(SAVED_CONFIG_SUFFIX)


def resolved_config(cfg: DictConfig, source: str) -> dict:
    """`cfg` as plain data, every interpolation resolved; data.source, training.lr and training.max_epochs
    as training resolved them (the saved config and the logged parameters say what the run used)."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved["data"]["source"] = source  # "auto" could let inference pick another tokenizer than training did
    resolved["training"].update(fine_tuning(cfg, source))
    return resolved


def save_config(resolved: dict, checkpoint: Path) -> Path:
    """Save the resolved config beside `checkpoint`, where inference.py reads it."""
    path = saved_config_path(checkpoint)
    OmegaConf.save(OmegaConf.create(resolved), path, resolve=True)
    return path


def load_saved_config(checkpoint: Path) -> DictConfig:
    """The config saved beside `checkpoint`; a clear error when it is missing."""
    path = saved_config_path(checkpoint)
    if not path.is_file():
        raise CourseError(
            f"no saved config at {path}: the checkpoint {checkpoint.name} has no training config "
            "beside it; retrain with `python train.py`, which writes both"
        )
    return OmegaConf.load(path)
