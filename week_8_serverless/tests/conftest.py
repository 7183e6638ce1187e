"""Shared fixtures: offline mode, configs composed as Hydra would, one training run and its ONNX export."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from omegaconf import DictConfig

from helpers import container_engine as engine
from helpers import containers

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


@pytest.fixture(scope="session")
def exported(trained: dict) -> dict:
    """The session's trained checkpoint converted once to ONNX (fp32 and int8) with its tokenizer."""
    from convert_model_to_onnx import convert

    export_dir = trained["artifacts"] / "onnx"
    written = convert(trained["checkpoint"], export_dir)
    return {**trained, "export_dir": export_dir, "written": written}


def import_lambda_handler(model_dir: Path, **environment: str) -> ModuleType:
    """lambda_handler imported as Lambda's init phase would, with MODEL_DIR and `environment` set.

    Reloaded when an earlier test imported it: the model and settings load at import time.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODEL_DIR", str(model_dir))
        for name, value in environment.items():
            patch.setenv(name, value)
        if "lambda_handler" in sys.modules:
            return importlib.reload(sys.modules["lambda_handler"])
        return importlib.import_module("lambda_handler")


@pytest.fixture(scope="module")
def lambda_module(exported: dict) -> ModuleType:
    """lambda_handler with the session's ONNX export, imported once per test module."""
    return import_lambda_handler(exported["export_dir"])


def run_script(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run one of the week's scripts the way a learner would, from the week folder."""
    return subprocess.run(
        [sys.executable, *args], cwd=WEEK_DIR, capture_output=True, text=True, timeout=timeout, env=os.environ.copy()
    )


# ----------------------------------------------------------------------------- the serving image

IMAGE = "mlops-basics/cola-api:test"
# Planted in the build context; none of it may reach the image.
CANARY = "canary-4f1d0c2e-not-a-real-key"


@pytest.fixture(scope="session")
def container_engine() -> str:
    """docker or podman; skipped with the reason when there is neither (a failure when CI requires them)."""
    found, why = engine.find_engine()
    if found is None:
        if os.environ.get("MLOPS_REQUIRE_CONTAINERS") == "1":
            pytest.fail(f"MLOPS_REQUIRE_CONTAINERS=1 but {why}")
        pytest.skip(f"container tests skipped: {why}")
    return found


@pytest.fixture(scope="session")
def build_context(exported: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the week as a learner has it after `convert_model_to_onnx.py`, plus things that must stay out."""
    context = tmp_path_factory.mktemp("context")
    for path in WEEK_DIR.iterdir():
        if path.is_file():
            shutil.copy2(path, context / path.name)
    shutil.copytree(exported["export_dir"], context / "artifacts" / "onnx")
    # What a learner's folder also holds: keys in .env, a checkpoint, a W&B run. .dockerignore must keep them out.
    (context / ".env").write_text(f"AWS_SECRET_ACCESS_KEY={CANARY}\nWANDB_API_KEY={CANARY}\n")
    (context / "artifacts" / "checkpoints").mkdir()
    (context / "artifacts" / "checkpoints" / "best.ckpt").write_text(CANARY)
    (context / "wandb").mkdir()
    (context / "wandb" / "debug.log").write_text(CANARY)
    return context


@pytest.fixture(scope="session")
def image(container_engine: str, build_context: Path) -> Iterator[str]:
    """The week's image, built once per session from `build_context`."""
    engine.build(build_context, IMAGE, engine=container_engine)
    yield IMAGE
    containers.remove_test_containers(container_engine)
