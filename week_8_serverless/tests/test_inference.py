"""Inference from the saved checkpoint and its saved config, and the command line's error paths."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from config import saved_config_path
from conftest import TEST_MAX_LENGTH
from errors import CourseError
from inference import ColaPredictor
from model import LABELS
from source import WEEK_DIR, read_split


@pytest.fixture(scope="module")
def predictor(trained: dict) -> ColaPredictor:
    return ColaPredictor(trained["checkpoint"])


def validation_rows(limit: int = 200) -> list[dict]:
    return read_split("validation")[:limit]


def test_probabilities_are_a_softmax_over_classes(predictor: ColaPredictor) -> None:
    result = predictor.predict("The children are playing in the garden.")
    assert set(result["probabilities"]) == set(LABELS)
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    assert result["label"] == max(result["probabilities"], key=result["probabilities"].get)
    assert result["score"] == max(result["probabilities"].values())


def test_batch_and_single_predictions_agree(predictor: ColaPredictor) -> None:
    sentences = [row["sentence"] for row in validation_rows(8)]
    batch = predictor.predict_batch(sentences)
    for sentence, from_batch in zip(sentences, batch, strict=True):
        alone = predictor.predict(sentence)
        assert alone["label"] == from_batch["label"]
        assert alone["score"] == pytest.approx(from_batch["score"], abs=1e-5)


def test_round_trip_accuracy_matches_training(predictor: ColaPredictor, trained: dict) -> None:
    rows = validation_rows(limit=10_000)
    results = predictor.predict_batch([row["sentence"] for row in rows])
    correct = sum(LABELS[int(row["label"])] == r["label"] for row, r in zip(rows, results, strict=True))
    assert correct / len(rows) == pytest.approx(trained["metrics"]["val/acc"], abs=0.01)


def test_empty_sentence_is_rejected(predictor: ColaPredictor) -> None:
    with pytest.raises(CourseError, match="empty"):
        predictor.predict("   ")


def test_the_resolved_config_is_saved_beside_the_checkpoint(trained: dict) -> None:
    path = saved_config_path(trained["checkpoint"])
    assert path.name == "best.config.yaml"
    assert "${" not in path.read_text()  # resolved: no interpolation left to change its meaning
    saved = OmegaConf.load(path)
    assert (saved.data.max_length, saved.model.max_length) == (TEST_MAX_LENGTH, TEST_MAX_LENGTH)
    assert saved.data.source == "offline"
    assert saved.paths.checkpoints == str(trained["checkpoint"].parent)


def copy_with_config(trained: dict, folder: Path, **changes) -> Path:
    """The trained checkpoint in `folder`, beside its saved config with `changes` ("data.max_length": 8)."""
    checkpoint = folder / "best.ckpt"
    shutil.copyfile(trained["checkpoint"], checkpoint)
    saved = OmegaConf.load(saved_config_path(trained["checkpoint"]))
    for key, value in changes.items():
        OmegaConf.update(saved, key, value)
    OmegaConf.save(saved, saved_config_path(checkpoint))
    return checkpoint


def test_max_length_comes_from_the_saved_config(trained: dict, predictor: ColaPredictor, tmp_path: Path) -> None:
    short = ColaPredictor(copy_with_config(trained, tmp_path, **{"data.max_length": 8}))
    assert (predictor.max_length, short.max_length) == (TEST_MAX_LENGTH, 8)
    # "Dogs run." is 5 tokens with [CLS] and [SEP]: both see all of it
    assert short.predict("Dogs run.")["probabilities"] == pytest.approx(predictor.predict("Dogs run.")["probabilities"])
    # a 13-token sentence is cut to 8 by one of them only, so the model sees another input
    long = "The dogs that the children like are chasing the cat."
    assert short.predict(long)["probabilities"] != pytest.approx(predictor.predict(long)["probabilities"], abs=1e-6)


def test_label_names_come_from_the_saved_config(trained: dict, tmp_path: Path) -> None:
    renamed = ColaPredictor(copy_with_config(trained, tmp_path, **{"data.labels": ["bad", "good"]}))
    result = renamed.predict("The dog sleeps.")
    assert set(result["probabilities"]) == {"bad", "good"} and result["label"] in {"bad", "good"}


def test_missing_saved_config_is_a_clear_error(trained: dict, tmp_path: Path) -> None:
    shutil.copyfile(trained["checkpoint"], tmp_path / "best.ckpt")
    with pytest.raises(CourseError, match="no saved config at .*best.config.yaml"):
        ColaPredictor(tmp_path / "best.ckpt")


def test_config_of_another_model_is_refused(trained: dict, tmp_path: Path) -> None:
    other = copy_with_config(trained, tmp_path, **{"data.source": "hub"})  # would load the Hub tokenizer
    with pytest.raises(CourseError, match="belongs to another run"):
        ColaPredictor(other)


def run_script(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=WEEK_DIR, capture_output=True, text=True, timeout=300, env=env
    )


def test_cli_prints_label_and_probabilities(trained: dict) -> None:
    done = run_script("inference.py", "The dog sleeps.", "--checkpoint", str(trained["checkpoint"]))
    assert done.returncode == 0, done.stderr
    assert any(label in done.stdout for label in LABELS)
    assert "unacceptable=" in done.stdout and "acceptable=" in done.stdout


def test_cli_missing_checkpoint_is_one_clear_line(tmp_path) -> None:
    done = run_script("inference.py", "The dog sleeps.", "--checkpoint", str(tmp_path / "none.ckpt"))
    assert done.returncode == 2
    assert "no trained model" in done.stderr and "python train.py" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_empty_sentence_is_one_clear_line(trained: dict) -> None:
    done = run_script("inference.py", "  ", "--checkpoint", str(trained["checkpoint"]))
    assert done.returncode == 2
    assert "empty" in done.stderr and "Traceback" not in done.stderr


def test_cli_unreadable_data_file_is_one_clear_line(tmp_path) -> None:
    (tmp_path / "train.csv").write_bytes(b"\x00\xff garbage")
    (tmp_path / "validation.csv").write_bytes(b"\x00\xff garbage")
    env = {**os.environ, "MLOPS_OFFLINE_DATA": str(tmp_path)}
    done = run_script(
        "train.py", "training.max_epochs=1", f"paths.artifacts={tmp_path / 'a'}", f"hydra.run.dir={tmp_path / 'run'}",
        env=env,
    )
    assert done.returncode == 2
    assert "make bundle" in done.stderr and "Traceback" not in done.stderr
