"""The LightningModule: output shapes, training mode, and the source switch."""

from __future__ import annotations

import pytest
import torch

from errors import CourseError
from model import LABELS, ColaModel
from source import base_model_name, resolve_source


@pytest.fixture(scope="module")
def model() -> ColaModel:
    return ColaModel(base_model_name("offline"))


def test_forward_gives_one_logit_per_class(model: ColaModel) -> None:
    input_ids = torch.randint(5, 100, (4, 12))
    logits = model(input_ids, torch.ones_like(input_ids))
    assert logits.shape == (4, len(LABELS))


def test_model_starts_in_train_mode(model: ColaModel) -> None:
    # transformers loads in eval mode; without model.train() dropout would stay off.
    assert model.model.training


def test_offline_base_model_is_bert_tiny(model: ColaModel) -> None:
    config = model.model.config
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (2, 128, 2)


def test_explicit_sources(monkeypatch) -> None:
    assert resolve_source("offline") == "offline"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_source("auto") == "offline"  # the probe answers at once when offline is forced
    with pytest.raises(CourseError, match="unknown source"):
        resolve_source("internet")


def test_missing_bundled_model_names_the_fix(monkeypatch, tmp_path) -> None:
    import source

    monkeypatch.setattr(source, "OFFLINE_MODEL_DIR", tmp_path / "offline_model")
    with pytest.raises(CourseError, match="git checkout -- offline_model` or `make bundle"):
        source.base_model_name("offline")
