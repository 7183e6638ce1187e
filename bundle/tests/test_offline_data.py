"""The bundled offline dataset: schema, balance, determinism, the errors it contains, and every week's copy."""

from __future__ import annotations

import csv
import random
import statistics
from collections import Counter
from pathlib import Path

import pytest

import offline_data
from conftest import WEEKS


@pytest.fixture(scope="module")
def generated() -> tuple[dict[str, list[dict]], dict[str, list[str]]]:
    return offline_data.generate_with_kinds(seed=0)


def read_bundled(split: str) -> list[dict]:
    with open(offline_data.DATA_DIR / f"{split}.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("split, size", [("train", 3000), ("validation", 600)])
def test_bundled_files_have_cola_schema(split: str, size: int) -> None:
    rows = read_bundled(split)
    assert len(rows) == size
    assert list(rows[0]) == ["sentence", "label", "idx"]
    assert [int(row["idx"]) for row in rows] == list(range(size))
    assert {row["label"] for row in rows} == {"0", "1"}
    assert all(row["sentence"].strip() and row["sentence"][-1] in ".?" for row in rows)


def test_bundled_files_equal_a_fresh_generation(generated) -> None:
    splits, _ = generated
    assert offline_data.check(splits, offline_data.DATA_DIR) is None


def test_the_generator_writes_into_week_0() -> None:
    assert WEEKS[0].name == "week_0_project_setup" and len(WEEKS) >= 10
    assert offline_data.DATA_DIR == WEEKS[0] / "data"


@pytest.mark.parametrize("week", WEEKS, ids=lambda week: week.name)
def test_every_week_bundles_a_fresh_generation(generated, week: Path) -> None:
    """Byte for byte: a week's data/ edited by hand, or not carried forward by `make bundle`, fails here."""
    splits, _ = generated
    assert offline_data.check(splits, week / "data") is None


def test_same_seed_same_data_other_seed_other_data() -> None:
    first = offline_data.generate(seed=3, n_train=200, n_validation=40)
    again = offline_data.generate(seed=3, n_train=200, n_validation=40)
    other = offline_data.generate(seed=4, n_train=200, n_validation=40)
    assert first == again
    assert first["train"] != other["train"]


def test_labels_are_balanced(generated) -> None:
    splits, _ = generated
    for rows in splits.values():
        assert sum(row["label"] for row in rows) * 2 == len(rows)


def test_sentences_are_unique_and_splits_do_not_overlap(generated) -> None:
    splits, _ = generated
    train = [row["sentence"] for row in splits["train"]]
    validation = [row["sentence"] for row in splits["validation"]]
    assert len(set(train)) == len(train)
    assert len(set(validation)) == len(validation)
    assert not set(train) & set(validation)


def test_length_does_not_give_the_label_away(generated) -> None:
    splits, _ = generated
    rows = splits["train"]
    good = [len(row["sentence"].split()) for row in rows if row["label"] == 1]
    bad = [len(row["sentence"].split()) for row in rows if row["label"] == 0]
    assert abs(statistics.mean(good) - statistics.mean(bad)) < 0.1
    assert Counter(good) == Counter(bad)


def test_every_corruption_kind_is_equally_present(generated) -> None:
    _, kinds = generated
    counts = Counter(kind for kind in kinds["train"] if kind)
    assert set(counts) == set(offline_data.KINDS)
    assert max(counts.values()) - min(counts.values()) <= 1


def corrupted_pairs(kind: str, tag: str = "", n: int = 40) -> list[tuple[list[str], list[str]]]:
    """`n` (good words, bad words) pairs made by applying `kind` to fresh grammar sentences."""
    rng = random.Random(7)
    pairs = []
    while len(pairs) < n:
        good = offline_data.random_sentence(rng)
        bad = offline_data.corrupt(rng, good, kind, tag)
        if bad is not None:
            pairs.append(([t.word for t in good.tokens], [t.word for t in bad.tokens]))
    return pairs


def test_word_order_swaps_two_neighbours() -> None:
    for good, bad in corrupted_pairs("word_order"):
        changed = [i for i, (g, b) in enumerate(zip(good, bad, strict=True)) if g != b]
        assert len(changed) == 2 and changed[1] == changed[0] + 1
        assert bad[changed[0]] == good[changed[1]] and bad[changed[1]] == good[changed[0]]


@pytest.mark.parametrize("tag", offline_data.REMOVABLE_TAGS)
def test_missing_and_doubled_words_change_length_by_one(tag: str) -> None:
    for good, bad in corrupted_pairs("missing_word", tag, n=10):
        assert len(bad) == len(good) - 1
        assert any(good[:i] + good[i + 1 :] == bad for i in range(len(good)))
    for good, bad in corrupted_pairs("doubled_word", tag, n=10):
        assert len(bad) == len(good) + 1
        assert any(bad[i] == bad[i + 1] and bad[:i] + bad[i + 1 :] == good for i in range(len(bad) - 1))


@pytest.mark.parametrize("kind", ["agreement", "verb_form"])
def test_agreement_and_verb_form_swap_exactly_one_word(kind: str) -> None:
    for good, bad in corrupted_pairs(kind):
        assert len(good) == len(bad)
        assert sum(g != b for g, b in zip(good, bad, strict=True)) == 1


def test_write_and_check_round_trip(tmp_path) -> None:
    splits = offline_data.generate(seed=1, n_train=20, n_validation=10)
    assert offline_data.check(splits, tmp_path) is not None  # nothing written yet
    offline_data.write_splits(splits, tmp_path)
    assert offline_data.check(splits, tmp_path) is None
    (tmp_path / "train.csv").write_text("sentence,label,idx\n", encoding="utf-8")
    assert "differs" in offline_data.check(splits, tmp_path)


def test_cli_check_fails_on_other_data_and_passes_on_the_bundle(tmp_path, capsys) -> None:
    (tmp_path / "train.csv").write_text("sentence,label,idx\n", encoding="utf-8")
    assert offline_data.main(["--check", "--data-dir", str(tmp_path)]) == 1
    assert "make bundle" in capsys.readouterr().err
    assert offline_data.main(["--check"]) == 0
