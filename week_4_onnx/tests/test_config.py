"""The Hydra config: groups, interpolation, overrides, paths that ignore the working directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose as hydra_compose
from hydra import initialize_config_dir

from config import CONFIG_DIR, fine_tuning, resolved_config
from conftest import compose
from source import WEEK_DIR
from train import checkpoint_path


def test_defaults_compose_every_group() -> None:
    cfg = compose()
    assert set(cfg) == {"model", "data", "training", "offline_model", "logger", "paths"}
    assert cfg.model.hub_name == "google/electra-small-discriminator"  # the Hub default learns CoLA
    assert cfg.data.source == "offline"  # conftest sets MLOPS_SOURCE=offline, the embedded default
    assert list(cfg.data.labels) == ["unacceptable", "acceptable"]
    assert cfg.logger.name == "wandb"
    assert (cfg.training.max_epochs, cfg.training.lr, cfg.training.seed) == (None, None, 42)


@pytest.mark.parametrize(
    ("overrides", "source", "expected"),
    [
        ((), "offline", {"lr": 1e-3, "max_epochs": 10}),  # the bundled model: as before ELECTRA was the default
        (("model=bert_tiny",), "offline", {"lr": 1e-3, "max_epochs": 10}),
        ((), "hub", {"lr": 1e-4, "max_epochs": 3}),  # ELECTRA-small: its authors' GLUE fine-tuning values
        (("model=bert_tiny",), "hub", {"lr": 1e-3, "max_epochs": 10}),
        (("training.lr=3e-4",), "hub", {"lr": 3e-4, "max_epochs": 3}),  # a number overrides the model's own
        (("training.max_epochs=1", "model=bert_tiny"), "offline", {"lr": 1e-3, "max_epochs": 1}),
    ],
)
def test_null_lr_and_epochs_are_the_trained_models_own(overrides: tuple, source: str, expected: dict) -> None:
    cfg = compose(*overrides)
    assert fine_tuning(cfg, source) == expected
    resolved = resolved_config(cfg, source)  # what is saved beside the checkpoint and logged
    assert {key: resolved["training"][key] for key in expected} == expected


def test_every_model_option_names_a_hub_model_and_its_own_fine_tuning() -> None:
    options = {path.stem for path in (CONFIG_DIR / "model").glob("*.yaml")}
    assert options == {"electra_small", "bert_tiny"}
    for option in options:
        model = compose(f"model={option}").model
        assert model.hub_name.startswith("google/") and model.lr > 0 and model.max_epochs >= 1


def test_trainer_defaults_are_one_device() -> None:
    training = compose().training
    placement = (training.accelerator, training.devices, training.strategy, training.num_nodes, training.precision)
    assert placement == ("auto", 1, "auto", 1, "32-true")


@pytest.mark.parametrize(("value", "expected"), [("4", 4), ("auto", "auto"), ("[0,2]", [0, 2])])
def test_devices_takes_a_count_auto_or_device_ids(value: str, expected: object) -> None:
    assert compose(f"training.devices={value}").training.devices == expected


def test_data_max_length_follows_the_model_unless_overridden() -> None:
    assert compose("model.max_length=48").data.max_length == 48
    cfg = compose("model.max_length=48", "data.max_length=16")
    assert (cfg.model.max_length, cfg.data.max_length) == (48, 16)


def test_overrides_reach_the_config() -> None:
    cfg = compose("training.max_epochs=3", "data.source=hub", "training.lr=3e-4", "logger=csv")
    assert (cfg.training.max_epochs, cfg.data.source, cfg.training.lr) == (3, "hub", 3e-4)
    assert set(cfg.logger) == {"name", "save_dir"}


def test_quick_training_changes_only_the_epochs() -> None:
    default, quick = compose().training, compose("training=quick").training
    assert quick.max_epochs == 1
    assert {**quick, "max_epochs": default.max_epochs} == {**default}


def test_source_default_comes_from_mlops_source(monkeypatch) -> None:
    monkeypatch.setenv("MLOPS_SOURCE", "hub")
    assert compose().data.source == "hub"
    monkeypatch.delenv("MLOPS_SOURCE")
    assert compose().data.source == "offline"


def test_logger_paths_follow_the_artifacts_folder(tmp_path: Path) -> None:
    cfg = compose("logger=mlflow", f"paths.artifacts={tmp_path}")
    assert cfg.logger.tracking_uri == f"sqlite:///{tmp_path}/mlflow.db"
    assert cfg.logger.artifact_location == f"{tmp_path}/mlartifacts"
    assert cfg.logger.registered_model_name == "cola-classifier"
    assert cfg.paths.checkpoints == f"{tmp_path}/checkpoints"


def test_paths_do_not_depend_on_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = hydra_compose("config", return_hydra_config=True)
    assert Path(cfg.paths.artifacts) == WEEK_DIR / "artifacts"
    assert Path(cfg.hydra.run.dir).is_relative_to(WEEK_DIR / "outputs")
    assert Path(cfg.hydra.sweep.dir).is_relative_to(WEEK_DIR / "multirun")
    assert cfg.hydra.job.chdir is False
    # a single run saves where inference.py looks by default
    assert checkpoint_path(cfg.paths.checkpoints) == checkpoint_path()


def run_train(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    """train.py by its absolute path, from another working directory."""
    return subprocess.run(
        [sys.executable, str(WEEK_DIR / "train.py"), *overrides],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.parametrize(
    "override, message",
    [
        ("training.epochs=3", "Could not override 'training.epochs'"),  # a typo: no such key
        ("training.max_epochs=abc", "could not be converted to Integer"),  # the schema's type
    ],
)
def test_bad_override_fails_with_hydras_message(override: str, message: str, tmp_path: Path) -> None:
    done = run_train(override, f"paths.artifacts={tmp_path / 'artifacts'}", cwd=tmp_path)
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr and "HYDRA_FULL_ERROR" in done.stderr
    assert list(tmp_path.iterdir()) == []  # failed while composing: nothing trained, nothing written
