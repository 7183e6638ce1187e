"""Shared fixtures: offline mode for every test, configs composed as Hydra would, one training run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from omegaconf import DictConfig

# Records the AWS calls the course's code makes while the tests run; test_iam.py evaluates them.
pytest_plugins = ["helpers.aws_calls"]

WEEK_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(WEEK_DIR))

# Tests never touch the network: offline data and model, Hub libraries fail fast.
os.environ["MLOPS_SOURCE"] = "offline"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
# W&B writes a real run to disk, never to the network (a test can still ask for "disabled").
os.environ["WANDB_MODE"] = "offline"
os.environ.pop("WANDB_API_KEY", None)

# The defaults' 10 epochs: the session's model is the one a learner gets with `python train.py`
# (same accuracy; the offline sentences fit in 32 tokens), about 25 s with dynamic padding.
TEST_EPOCHS = 10
TEST_MAX_LENGTH = 32  # the offline sentences are short; 32 tokens halves the time per epoch


def compose(*overrides: str) -> DictConfig:
    """The config `python train.py <overrides>` would train with, composed without running the app."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from config import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return hydra_compose("config", overrides=list(overrides))


def short_run(artifacts: Path, *overrides: str, epochs: int = 1) -> DictConfig:
    """A config for a short offline run that writes only under `artifacts`."""
    return compose(
        f"paths.artifacts={artifacts}",
        "data.source=offline",
        f"model.max_length={TEST_MAX_LENGTH}",
        f"training.max_epochs={epochs}",
        *overrides,
    )


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Train once for the whole session (default logger: W&B); returns metrics and the checkpoint path."""
    from train import checkpoint_path, train

    artifacts = tmp_path_factory.mktemp("artifacts")
    metrics = train(short_run(artifacts, epochs=TEST_EPOCHS))
    return {"metrics": metrics, "checkpoint": checkpoint_path(artifacts / "checkpoints"), "artifacts": artifacts}
