"""Shared fixtures: offline mode for every test, and one short training run per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

WEEK_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(WEEK_DIR))

# Tests never touch the network: offline data and model, Hub libraries fail fast.
os.environ["MLOPS_SOURCE"] = "offline"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

# The defaults' 10 epochs: the session's model is the one a learner gets with `python train.py`
# (same accuracy; the offline sentences fit in 32 tokens), about 25 s with dynamic padding.
TEST_EPOCHS = 10
TEST_MAX_LENGTH = 32  # the offline sentences are short; 32 tokens halves the time per epoch


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Train once for the whole session; returns metrics and the checkpoint path."""
    from train import TrainConfig, checkpoint_path, train

    artifacts = tmp_path_factory.mktemp("artifacts")
    metrics = train(
        TrainConfig(
            source="offline", max_epochs=TEST_EPOCHS, max_length=TEST_MAX_LENGTH, artifacts_dir=artifacts
        )
    )
    return {"metrics": metrics, "checkpoint": checkpoint_path(artifacts), "artifacts": artifacts}
