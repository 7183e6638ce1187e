"""The bundled offline BERT-tiny: its shape, what pretraining taught it, how it is rebuilt, and every week's copy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, BertForMaskedLM

import offline_model
from conftest import REPO_ROOT, WEEKS


@pytest.fixture(scope="module")
def bundled() -> tuple:
    tokenizer = AutoTokenizer.from_pretrained(offline_model.MODEL_DIR)
    model = BertForMaskedLM.from_pretrained(offline_model.MODEL_DIR).eval()
    return tokenizer, model


def test_bundled_model_has_bert_tiny_shape(bundled) -> None:
    _, model = bundled
    assert (model.config.num_hidden_layers, model.config.hidden_size, model.config.num_attention_heads) == (2, 128, 2)
    assert sum(p.numel() for p in model.bert.parameters()) < 1_000_000


def test_tokenizer_lowercases_and_wraps_in_cls_sep(bundled) -> None:
    tokenizer, _ = bundled
    ids = tokenizer("The dog ran.")["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == ["[CLS]", "the", "dog", "ran", ".", "[SEP]"]


def fill(bundled, sentence: str) -> str:
    tokenizer, model = bundled
    inputs = tokenizer(sentence, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    position = (inputs["input_ids"][0] == tokenizer.mask_token_id).nonzero().item()
    return tokenizer.decode([int(logits[0, position].argmax())]).strip()


@pytest.mark.parametrize(
    "sentence, expected",
    [
        ("The dogs [MASK] chasing the cat.", {"are", "were"}),  # agreement with a plural subject
        ("The dog [MASK] chasing the cat.", {"is", "was"}),
        ("Anna will [MASK] the cat.", {"help", "meet", "chase", "visit", "know", "see", "like", "find", "carry",
                                       "buy", "hide", "take"}),  # a base-form verb after "will"
    ],
)
def test_pretraining_taught_agreement_and_verb_forms(bundled, sentence: str, expected: set[str]) -> None:
    """A randomly initialised model guesses any word; the pretrained one knows the grammar."""
    assert fill(bundled, sentence) in expected


def test_build_writes_a_loadable_model(tmp_path: Path) -> None:
    quick = offline_model.PretrainConfig(sentences=256, epochs=2, batch_size=64)
    losses = offline_model.build_offline_model(offline_model.offline_data.DATA_DIR, tmp_path, quick)
    assert len(losses) == 2 and losses[1] < losses[0]
    assert BertForMaskedLM.from_pretrained(tmp_path).config.hidden_size == 128
    assert AutoTokenizer.from_pretrained(tmp_path).mask_token == "[MASK]"


def test_pretraining_corpus_excludes_labelled_sentences() -> None:
    corpus = offline_model.pretraining_corpus(500, seed=1, exclude=set())
    held_out = set(corpus[:100])
    again = offline_model.pretraining_corpus(500, seed=1, exclude=held_out)
    assert len(again) == 500 == len(set(again))
    assert not held_out & set(again)


def test_missing_data_gives_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(offline_model.BundleError, match="regenerate the offline data"):
        offline_model.build_offline_model(tmp_path, tmp_path / "out")


def test_cli_missing_data_is_one_clear_line(tmp_path: Path) -> None:
    """Run as the README says, from the repository root."""
    command = [sys.executable, "bundle/offline_model.py", "--data-dir", str(tmp_path), "--out-dir", str(tmp_path / "o")]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "regenerate the offline data" in done.stderr and "Traceback" not in done.stderr


def test_the_builder_writes_into_week_0() -> None:
    assert offline_model.MODEL_DIR == WEEKS[0] / "offline_model"


@pytest.mark.parametrize("week", WEEKS[1:], ids=lambda week: week.name)
def test_every_week_bundles_week_0s_model(week: Path) -> None:
    """Pretraining is float arithmetic and may differ by CPU, so the weeks are compared with week 0, not rebuilt."""
    expected = {p.name: p.read_bytes() for p in sorted((WEEKS[0] / "offline_model").iterdir())}
    found = {p.name: p.read_bytes() for p in sorted((week / "offline_model").iterdir())}
    assert sorted(found) == sorted(expected)
    differing = [name for name in expected if found[name] != expected[name]]
    assert not differing, f"{week.name}/offline_model differs from week 0's in {differing}: run `make bundle`"
