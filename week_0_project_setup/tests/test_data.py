"""The data module: shapes, labels, tokenization length, dynamic padding, clear errors for broken data."""

from __future__ import annotations

import pytest
import torch

from data import ColaDataModule, load_cola
from errors import CourseError
from source import base_model_name, read_split

BATCH, MAX_LENGTH = 16, 32


@pytest.fixture(scope="module")
def datamodule() -> ColaDataModule:
    module = ColaDataModule(base_model_name("offline"), "offline", batch_size=BATCH, max_length=MAX_LENGTH)
    module.setup("fit")
    return module


def test_batch_shapes_and_types(datamodule: ColaDataModule) -> None:
    batch = next(iter(datamodule.train_dataloader()))
    width = batch["input_ids"].shape[1]
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (BATCH, width)
    assert width <= MAX_LENGTH
    assert batch["label"].shape == (BATCH,)
    assert batch["input_ids"].dtype == batch["attention_mask"].dtype == torch.long


@pytest.mark.parametrize("loader", ["train_dataloader", "val_dataloader"])
def test_each_batch_is_padded_to_its_longest_sentence(datamodule: ColaDataModule, loader: str) -> None:
    pad_id = datamodule.tokenizer.pad_token_id
    widths = set()
    for batch in getattr(datamodule, loader)():
        lengths = batch["attention_mask"].sum(dim=1)
        widths.add(batch["input_ids"].shape[1])
        assert int(lengths.max()) == batch["input_ids"].shape[1]  # no column of padding only
        for ids, mask, length in zip(batch["input_ids"], batch["attention_mask"], lengths, strict=True):
            assert mask[:length].all() and not mask[length:].any()  # words first, then padding
            assert (ids[length:] == pad_id).all() and ids[length - 1] == datamodule.tokenizer.sep_token_id
    assert max(widths) <= MAX_LENGTH and len(widths) > 1  # the width follows the batch


def test_labels_are_binary_in_both_splits(datamodule: ColaDataModule) -> None:
    assert {int(label) for label in datamodule.train_data["label"]} == {0, 1}
    assert {int(label) for label in datamodule.val_data["label"]} == {0, 1}


def test_validation_loader_keeps_order(datamodule: ColaDataModule) -> None:
    first = next(iter(datamodule.val_dataloader()))["input_ids"]
    again = next(iter(datamodule.val_dataloader()))["input_ids"]
    assert torch.equal(first, again)


def test_tokenization_respects_max_length(datamodule: ColaDataModule) -> None:
    long_sentence = " ".join(["the big dog runs"] * 40) + "."
    encoded = datamodule.tokenize({"sentence": [long_sentence, "Dogs run."]})
    assert len(encoded["input_ids"][0]) == MAX_LENGTH
    tokenizer = datamodule.tokenizer
    assert encoded["input_ids"][0][-1] == tokenizer.sep_token_id  # truncated, still closed by [SEP]
    short = encoded["input_ids"][1]
    assert len(short) < MAX_LENGTH and short[-1] == tokenizer.sep_token_id  # not padded: the batch pads it
    assert tokenizer.pad_token_id not in short and all(encoded["attention_mask"][1])


def test_unreadable_data_gives_a_clear_error(tmp_path, monkeypatch) -> None:
    (tmp_path / "train.csv").write_bytes(b"\xff\xfe not a csv \x00\x01")
    (tmp_path / "validation.csv").write_text("sentence,label,idx\nA dog runs.,1,0\n")
    monkeypatch.setattr("data.OFFLINE_DATA_DIR", tmp_path)
    with pytest.raises(CourseError, match="git checkout -- data` or `make bundle"):
        load_cola("offline")


def test_missing_data_file_names_the_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("data.OFFLINE_DATA_DIR", tmp_path)
    with pytest.raises(CourseError, match="train.csv is missing"):
        load_cola("offline")


def test_read_split_gives_typed_rows_in_file_order() -> None:
    """The same rows, in the same order, as training reads through `datasets`."""
    rows = read_split("validation")
    validation = load_cola("offline")["validation"]
    assert set(rows[0]) == {"sentence", "label", "idx"}
    assert [row["sentence"] for row in rows] == validation["sentence"]
    assert [row["label"] for row in rows] == validation["label"]
    assert [row["idx"] for row in rows] == validation["idx"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "validation.csv is missing"),
        (b"sentence,label,idx\nA dog runs.,yes,0\n", "ValueError"),
        (b"sentence,idx\nA dog runs.,0\n", "KeyError"),
        (b"\xff\xfe not a csv \x00\x01", "UnicodeDecodeError"),
    ],
)
def test_read_split_names_the_file_and_the_fix(tmp_path, content: bytes | None, problem: str) -> None:
    if content is not None:
        (tmp_path / "validation.csv").write_bytes(content)
    with pytest.raises(CourseError, match=problem) as raised:
        read_split("validation", tmp_path)
    assert str(tmp_path / "validation.csv") in str(raised.value)
    assert "git checkout -- data` or `make bundle" in str(raised.value)


def test_read_split_refuses_an_unknown_split() -> None:
    with pytest.raises(CourseError, match="unknown split 'test': use one of train, validation"):
        read_split("test")
