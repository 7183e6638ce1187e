"""The hand-written everyday-English pairs and the script that scores a model on them."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections import Counter
from pathlib import Path

import everyday_eval
import pytest

from conftest import BUNDLE_DIR, REPO_ROOT

KINDS = {"agreement", "verb_form", "word_order", "missing_word", "doubled_word"}


def words(sentence: str) -> list[str]:
    return sentence.rstrip(".?!").split()


def test_at_least_100_pairs_20_of_each_error_kind() -> None:
    pairs = everyday_eval.read_pairs()
    assert len(pairs) >= 100
    counts = Counter(pair.kind for pair in pairs)
    assert set(counts) == KINDS
    assert min(counts.values()) >= 20


def test_each_pair_is_one_error_apart() -> None:
    for pair in everyday_eval.read_pairs():
        good, bad = words(pair.acceptable), words(pair.unacceptable)
        assert good != bad, pair
        if pair.kind == "doubled_word":
            # the broken sentence is the correct one with one word written twice in a row
            assert len(bad) == len(good) + 1, pair
            assert any(bad[:i] + bad[i + 1 :] == good and bad[i] == bad[i - 1] for i in range(1, len(bad))), pair
        elif pair.kind == "missing_word":
            assert len(bad) < len(good), pair
        elif pair.kind == "word_order":
            assert sorted(w.lower() for w in bad) == sorted(w.lower() for w in good), pair
        else:  # agreement and verb form change one word, in place
            assert len(bad) == len(good), pair
            assert sum(a != b for a, b in zip(good, bad, strict=True)) == 1, pair


def test_no_pair_sentence_comes_from_the_offline_grammar() -> None:
    bundled = set()
    data_dir = REPO_ROOT / "week_0_project_setup" / "data"
    for split in ("train", "validation"):
        with (data_dir / f"{split}.csv").open(newline="", encoding="utf-8") as handle:
            bundled |= {row["sentence"] for row in csv.DictReader(handle)}
    for pair in everyday_eval.read_pairs():
        assert pair.acceptable not in bundled and pair.unacceptable not in bundled, pair


def test_scores_count_rankings_and_labels() -> None:
    pairs = [
        everyday_eval.Pair("agreement", "a", "b"),
        everyday_eval.Pair("agreement", "c", "d"),
        everyday_eval.Pair("word_order", "e", "f"),
    ]
    # pair 1: ranked right, both labels right; pair 2: ranked right, both called acceptable;
    # pair 3: ranked wrong, both called unacceptable
    report = everyday_eval.score_pairs(pairs, [0.9, 0.1, 0.8, 0.6, 0.2, 0.3])
    assert report["agreement"] == {"pairs": 2, "pair_accuracy": 1.0, "sentence_accuracy": 0.75}
    assert report["word_order"] == {"pairs": 1, "pair_accuracy": 0.0, "sentence_accuracy": 0.5}
    assert report["all"]["pair_accuracy"] == pytest.approx(2 / 3)
    assert report["all"]["sentence_accuracy"] == pytest.approx(4 / 6)
    assert report["all"]["correct_called_unacceptable"] == pytest.approx(1 / 3)


def test_scores_refuse_a_wrong_number_of_probabilities() -> None:
    with pytest.raises(ValueError, match="expected 2 probabilities, got 3"):
        everyday_eval.score_pairs([everyday_eval.Pair("agreement", "a", "b")], [0.1, 0.2, 0.3])


def test_missing_checkpoint_is_a_one_line_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BUNDLE_DIR / "everyday_eval.py"), "--checkpoint", str(tmp_path / "none.ckpt")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "no checkpoint at" in result.stderr and "Traceback" not in result.stderr
