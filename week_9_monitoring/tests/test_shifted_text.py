"""Shifted text: deterministic, unlike the training data, labelled where promised; a stream that switches."""

from __future__ import annotations

import difflib
from collections import Counter

import pytest

from conftest import run_script
from errors import CourseError
from monitoring.drift_reference import oov_rate, words
from source import read_split
from support import ops_grammar, shifted_text


@pytest.fixture(scope="module")
def vocabulary() -> set[str]:
    return {word for row in read_split("train") for word in words(row["sentence"])}


@pytest.fixture(scope="module")
def validation_sentences() -> set[str]:
    return {row["sentence"] for half in ("reference", "holdout") for row in shifted_text.validation_half(half)}


@pytest.mark.parametrize("kind", shifted_text.KINDS)
def test_same_seed_same_sentences_other_seed_others(kind: str) -> None:
    first = shifted_text.shifted(kind, 40, seed=3)
    assert first == shifted_text.shifted(kind, 40, seed=3)
    assert len(first) == 40
    assert first != shifted_text.shifted(kind, 40, seed=4)


def test_validation_halves_split_validation_without_overlap(validation_sentences: set[str]) -> None:
    reference = shifted_text.validation_half("reference")
    holdout = shifted_text.validation_half("holdout")
    assert len(reference) == len(holdout) == 300
    assert {row["idx"] % 2 for row in reference} == {0} and {row["idx"] % 2 for row in holdout} == {1}
    assert not {r["sentence"] for r in reference} & {r["sentence"] for r in holdout}
    assert len(validation_sentences) == 600


@pytest.mark.parametrize(
    "kind, least_mean_unseen",
    # measured with seed 0: domain 0.64, language 0.99, garbled 0.58 of the words unseen in training
    [("domain", 0.5), ("language", 0.9), ("garbled", 0.4)],
)
def test_shifted_sentences_are_made_of_unseen_words(
    kind: str, least_mean_unseen: float, vocabulary: set[str], validation_sentences: set[str]
) -> None:
    sentences = shifted_text.shifted(kind, 200, seed=0)
    rates = [oov_rate(sentence, vocabulary) for sentence in sentences]
    assert sum(rates) / len(rates) >= least_mean_unseen
    assert not set(sentences) & validation_sentences
    if kind != "garbled":  # a garbled word can land on a real one ("cats" -> "cat")
        assert min(rates) > 0


def test_garbled_sentences_are_noisy_copies_of_held_out_sentences() -> None:
    holdout = [row["sentence"] for row in shifted_text.validation_half("holdout")]
    for noisy in shifted_text.garbled(30, seed=1):
        # Letters change, words do not come or go: the closest held-out sentence has as many words
        # and most of the same characters (measured: similarity 0.71 to 0.98).
        closest = max(holdout, key=lambda sentence: difflib.SequenceMatcher(None, noisy, sentence).ratio())
        assert len(closest.split()) == len(noisy.split())
        assert 0.6 < difflib.SequenceMatcher(None, noisy, closest).ratio() < 1


def one_error_apart(good: list[str], bad: list[str], kind: str) -> bool:
    """Whether `bad` is `good` with one error of `kind` (compared case-insensitively, word by word)."""
    good, bad = [w.casefold() for w in good], [w.casefold() for w in bad]
    if kind in ("agreement", "verb_form"):
        return len(good) == len(bad) and sum(g != b for g, b in zip(good, bad, strict=True)) == 1
    if kind == "word_order":
        differ = [i for i, (g, b) in enumerate(zip(good, bad, strict=True)) if g != b] if len(good) == len(bad) else []
        return len(differ) == 2 and differ[1] == differ[0] + 1 and good[differ[0]] == bad[differ[1]]
    shorter, longer = (bad, good) if kind == "missing_word" else (good, bad)
    return any(longer[:i] + longer[i + 1 :] == shorter for i in range(len(longer)))


def test_other_domain_rows_are_labelled_minimal_pairs() -> None:
    rows = ops_grammar.other_domain_rows(101, seed=0)
    assert len(rows) == 101 and len({row["sentence"] for row in rows}) == 101
    assert Counter(row["label"] for row in rows) == {1: 51, 0: 50}
    assert all((row["kind"] == "") == (row["label"] == 1) for row in rows)
    kinds = Counter(row["kind"] for row in rows if row["label"] == 0)
    assert set(kinds) == set(ops_grammar.ERROR_KINDS)
    assert max(kinds.values()) - min(kinds.values()) <= 1  # every kind of error equally often
    good = [row["sentence"].rstrip(".").split() for row in rows if row["label"] == 1]
    for row in rows:
        if row["label"] == 0:  # its grammatical partner is in the rows too, one error away
            assert any(
                one_error_apart(partner, row["sentence"].rstrip(".").split(), row["kind"]) for partner in good
            ), row
    assert ops_grammar.other_domain(101, seed=0) == [row["sentence"] for row in rows]


def test_stream_switches_at_drift_at() -> None:
    holdout = {row["sentence"] for row in shifted_text.validation_half("holdout")}
    stream = list(shifted_text.drifting_stream(30, 12, "language", seed=2))
    assert len(stream) == 30
    assert all(sentence in holdout for sentence in stream[:12])
    assert len(set(stream[:12])) == 12  # a shuffled walk through the half, no repeats before it runs out
    assert stream[12:] == shifted_text.other_language(18, seed=2)
    assert list(shifted_text.drifting_stream(30, 12, "language", seed=2)) == stream


def test_stream_cycles_through_the_held_out_half_when_it_runs_out() -> None:
    stream = list(shifted_text.drifting_stream(700, 700, "garbled", seed=0))
    assert len(stream) == 700 and len(set(stream)) == 300


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: list(shifted_text.drifting_stream(10, 11, "domain")), "drift_at=11"),
        (lambda: list(shifted_text.drifting_stream(10, 5, "klingon")), "unknown kind of shift 'klingon'"),
        (lambda: shifted_text.other_language(-1), "cannot make -1 sentences"),
    ],
)
def test_bad_arguments_say_what_to_change(call, message: str) -> None:
    with pytest.raises(CourseError, match=message):
        call()


def test_cli_prints_labelled_domain_rows() -> None:
    result = run_script("-m", "support.shifted_text", "domain", "4", "--seed", "1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    assert sorted(line.split()[0] for line in lines) == ["0", "0", "1", "1"]
