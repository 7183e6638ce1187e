"""The checks of the retraining loop, without training: a filled labelling CSV becomes a new data
version only when every line is sound, each version is v2 plus the batches up to it, and the
promotion rule promotes ties and refuses a lower MCC."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from errors import CourseError
from helpers.loop_files import csv_rows, data_version
from monitoring import labelled_data as labelled_data_module
from monitoring.labelling_queue import CSV_COLUMNS, QueueItem, write_queue_csv
from monitoring.promote import decide
from source import WEEK_DIR

# What monitoring/labelled_data.py needs to run on its own (python -m from a folder with just these).
LABELLED_DATA_FILES = [
    "monitoring/__init__.py",
    "monitoring/labelled_data.py",
    "monitoring/spreadsheet_csv.py",
    # ingest runs the promotion gate's data checks on the batch before writing it
    "monitoring/gate.py",
    "monitoring/gate.yaml",
    "monitoring/gate_data.py",
    "monitoring/gate_behaviour.py",
    "monitoring/prediction_events.py",
    "inference_onnx.py",
    "prepare_data.py",
    "errors.py",
    "source.py",
    "params.yaml",
]


def queue_item(rank: int, sentence: str, label: str) -> QueueItem:
    """A queue row as monitoring/labelling_queue.py writes it, with `label` as an annotator filled it in."""
    return QueueItem(rank, sentence, "acceptable", 0.6, 0.5, "uncertain: margin 0.20", 1, label)


# ----------------------------------------------------------------------------- the checks, no training


@pytest.fixture
def week(tmp_path: Path) -> Path:
    """A folder with just what monitoring/labelled_data.py reads and writes: the data, params.yaml, the scripts."""
    (tmp_path / "monitoring").mkdir()
    for name in LABELLED_DATA_FILES:
        shutil.copy2(WEEK_DIR / name, tmp_path / name)
    shutil.copytree(WEEK_DIR / "data", tmp_path / "data")
    return tmp_path


def labelled_data(week: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "monitoring.labelled_data", *args], cwd=week, capture_output=True, text=True, timeout=60
    )


def test_unknown_labels_and_empty_sentences_are_errors_naming_their_lines(week: Path) -> None:
    items = [
        queue_item(1, "The server crashes.", "acceptable"),
        queue_item(2, "The server crash.", "maybe"),  # line 3
        queue_item(3, "The servers crash.", "unacceptable"),
        queue_item(4, "   ", "1"),  # line 5
        queue_item(5, "A node fails.", "yes"),  # line 6
        queue_item(6, "", ""),  # empty and unlabelled: skipped, not an error
    ]
    write_queue_csv(items, week / "filled.csv")
    params_before = (week / "params.yaml").read_bytes()
    result = labelled_data(week, "filled.csv")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "filled.csv: 3 row(s) cannot be used" in result.stderr
    assert "line 3: label 'maybe' is not one of acceptable, unacceptable, 1, 0" in result.stderr
    assert "line 5: the sentence is empty" in result.stderr
    assert "line 6: label 'yes'" in result.stderr
    assert "fix these lines" in result.stderr
    # Nothing was written: no batch, no new version.
    assert not (week / "data" / "labelled").exists()
    assert (week / "params.yaml").read_bytes() == params_before


def test_a_sentence_labelled_both_ways_is_an_error(week: Path) -> None:
    write_queue_csv([queue_item(1, "The node fails.", "1"), queue_item(2, "The node fails.", "0")], week / "f.csv")
    result = labelled_data(week, "f.csv")
    assert result.returncode == 2
    assert "line 3: the same sentence as line 2, but labelled unacceptable here and acceptable there" in result.stderr


def test_missing_label_column_and_missing_file_say_what_to_use(week: Path) -> None:
    (week / "no_label.csv").write_text("rank,sentence\n1,The node fails.\n")
    result = labelled_data(week, "no_label.csv")
    assert result.returncode == 2
    assert "has no label column (its columns: rank, sentence)" in result.stderr
    assert "python -m monitoring.labelling_queue" in result.stderr
    result = labelled_data(week, "missing.csv")
    assert result.returncode == 2
    assert "cannot read the labelling CSV missing.csv" in result.stderr


def test_unlabelled_rows_are_skipped_counted_and_reported(week: Path) -> None:
    items = [
        queue_item(1, "The server crashes.", "acceptable"),
        queue_item(2, "The server crash.", ""),  # line 3
        queue_item(3, "The servers crash.", " Unacceptable "),
        queue_item(4, "Every node fails.", ""),  # line 5
        queue_item(5, "Every node fail.", "0"),
        queue_item(6, "The admin restarts the job.", "1"),
    ]
    write_queue_csv(items, week / "filled.csv")
    check = labelled_data(week, "filled.csv", "--check")
    assert check.returncode == 0, check.stderr
    assert "2 left unlabelled, skipped (lines 3, 5)" in check.stdout and "--check: nothing written" in check.stdout
    assert not (week / "data" / "labelled").exists() and data_version(week) == "v1"

    result = labelled_data(week, "filled.csv")
    assert result.returncode == 0, result.stderr
    assert "filled.csv: 6 rows" in result.stdout
    assert "4 labelled and new: 2 acceptable, 2 unacceptable" in result.stdout
    assert "2 left unlabelled, skipped (lines 3, 5)" in result.stdout
    assert "params.yaml: data.version v1 -> v3" in result.stdout
    batch = csv_rows(week / "data" / "labelled" / "v3.csv")
    assert batch == [  # sorted by sentence: the same rows always make the same batch
        {"sentence": "Every node fail.", "label": "0"},
        {"sentence": "The admin restarts the job.", "label": "1"},
        {"sentence": "The server crashes.", "label": "1"},
        {"sentence": "The servers crash.", "label": "0"},
    ]
    assert data_version(week) == "v3"
    assert "# v1: 2,000 training sentences" in (week / "params.yaml").read_text()  # comments kept


def test_a_queue_nobody_labelled_is_refused(week: Path) -> None:
    write_queue_csv([queue_item(1, "The server crashes.", ""), queue_item(2, "A node fails.", "")], week / "f.csv")
    result = labelled_data(week, "f.csv")
    assert result.returncode == 2
    assert "none of its 2 rows has a label yet" in result.stderr
    assert not (week / "data" / "labelled").exists()


def test_a_batch_written_but_never_selected_is_named_with_the_way_on(week: Path) -> None:
    # ingest writes data/labelled/v3.csv, then selects it in params.yaml: a run killed between the
    # two leaves v3.csv that no version trains on. Its sentences must not read as "already in the data".
    write_queue_csv([queue_item(1, "The server crashes.", "1"), queue_item(2, "A node fails.", "1")], week / "f.csv")
    assert labelled_data(week, "f.csv").returncode == 0
    labelled_data_module.set_data_version("v1", week / "params.yaml")  # the state the crash leaves
    result = labelled_data(week, "f.csv")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "v3.csv is not selected: params.yaml has data.version v1" in result.stderr
    assert "Set data.version: v3 in params.yaml, then run `dvc repro`" in result.stderr
    assert data_version(week) == "v1" and not (week / "data" / "labelled" / "v4.csv").exists()
    # Following the message: selected, the next queue makes v4 as usual.
    labelled_data_module.set_data_version("v3", week / "params.yaml")
    write_queue_csv([queue_item(1, "Every disk fills up.", "1")], week / "g.csv")
    result = labelled_data(week, "g.csv")
    assert result.returncode == 0, result.stderr
    assert "data.version v3 -> v4" in result.stdout and not (week / "params.yaml.tmp").exists()


def test_sentences_already_in_the_data_are_reported_and_left_out(week: Path) -> None:
    train = csv_rows(week / "data" / "train.csv")
    validation = csv_rows(week / "data" / "validation.csv")
    flipped = "unacceptable" if train[1]["label"] == "1" else "acceptable"
    items = [
        queue_item(1, train[0]["sentence"], train[0]["label"]),  # line 2: in training, same label
        queue_item(2, train[1]["sentence"], flipped),  # line 3: in training, another label
        queue_item(3, validation[0]["sentence"], validation[0]["label"]),  # line 4: must stay out of training
        queue_item(4, "The server crashes.", "1"),
        queue_item(5, "The server crashes.", "acceptable"),  # line 6: repeats line 5
    ]
    write_queue_csv(items, week / "filled.csv")
    result = labelled_data(week, "filled.csv")
    assert result.returncode == 0, result.stderr
    assert "2 already in the training data, left out (lines 2, 3)" in result.stdout
    assert f"labelled differently there: line 3 ({flipped} here" in result.stdout
    assert "1 in the validation set, left out (line 4)" in result.stdout
    assert "line 6 repeats line 5" in result.stdout
    assert csv_rows(week / "data" / "labelled" / "v3.csv") == [{"sentence": "The server crashes.", "label": "1"}]

    # A later batch is checked against the earlier ones too, and makes the next version.
    write_queue_csv([queue_item(1, "The server crashes.", "1"), queue_item(2, "A node fails.", "1")], week / "b.csv")
    result = labelled_data(week, "b.csv")
    assert result.returncode == 0, result.stderr
    assert "1 already in the training data, left out (line 2)" in result.stdout
    assert "data.version v3 -> v4" in result.stdout
    # Nothing new at all is an error, not an empty batch.
    result = labelled_data(week, "b.csv")
    assert result.returncode == 2
    assert "nothing new to train on" in result.stderr
    assert not (week / "data" / "labelled" / "v5.csv").exists()


def test_each_version_is_v2_plus_the_batches_up_to_it(week: Path) -> None:
    write_queue_csv([queue_item(1, "The server crashes.", "1")], week / "a.csv")
    write_queue_csv([queue_item(1, "A node fails.", "1"), queue_item(2, "A node fail.", "0")], week / "b.csv")
    assert labelled_data(week, "a.csv").returncode == 0
    assert labelled_data(week, "b.csv").returncode == 0

    def prepare(version: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "prepare_data.py", "--version", version, "--out-dir", f"out/{version}"]
        return subprocess.run(command, cwd=week, capture_output=True, text=True, timeout=60)

    labelled = {"v2": [], "v3": ["The server crashes."], "v4": ["The server crashes.", "A node fail.", "A node fails."]}
    for version, extra in labelled.items():
        assert prepare(version).returncode == 0
        rows = csv_rows(week / "out" / version / "train.csv")
        assert len(rows) == 3000 + len(extra)
        assert [row["sentence"] for row in rows[3000:]] == extra
        assert [int(row["idx"]) for row in rows] == list(range(len(rows)))
        assert csv_rows(week / "out" / version / "validation.csv") == csv_rows(week / "data" / "validation.csv")
    result = prepare("v5")
    assert result.returncode == 2
    assert "v5.csv is not in" in result.stderr and "one of v1, v2, v3, v4" in result.stderr
    # Every file in data/ is an input of the prepare stage: a stray one is named, not ignored.
    (week / "data" / "labelled" / "extra.csv").write_text("sentence,label\n")
    result = prepare("v4")
    assert result.returncode == 2
    assert "extra.csv is not a labelled batch" in result.stderr


# ----------------------------------------------------------------------------- leaks and spreadsheets (issue 18)


def variants(sentence: str) -> list[str]:
    """Three spellings of `sentence` that the tokenizer reads as the same tokens."""
    return [sentence.lower(), sentence.replace(" ", "  "), sentence[:-1] + " ."]


def test_variants_of_validation_and_training_sentences_are_refused_as_leaks(week: Path) -> None:
    validation = [r["sentence"] for r in csv_rows(week / "data" / "validation.csv") if r["sentence"].endswith(".")]
    train = csv_rows(week / "data" / "train.csv")
    # one spelling each: lower case, doubled spaces, " ." (lines 2, 3, 4)
    items = [queue_item(i, variants(validation[i])[i], "1") for i in range(3)]
    items += [queue_item(4, train[0]["sentence"].upper(), train[0]["label"])]  # line 5: training, in capitals
    items += [queue_item(5, "The server crashes.", "1"), queue_item(6, "the server  crashes .", "1")]
    write_queue_csv(items, week / "filled.csv")
    result = labelled_data(week, "filled.csv")
    assert result.returncode == 0, result.stderr
    assert "3 in the validation set, left out (lines 2, 3, 4)" in result.stdout
    assert "1 already in the training data, left out (line 5)" in result.stdout
    assert "line 7 repeats line 6" in result.stdout
    assert csv_rows(week / "data" / "labelled" / "v3.csv") == [{"sentence": "The server crashes.", "label": "1"}]


def test_sentences_are_compared_as_the_weeks_tokenizer_reads_them() -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(WEEK_DIR / "offline_model")
    backend = tokenizer.backend_tokenizer
    # the key is made by the tokenizer's own first two steps, with its own settings
    assert repr(backend.normalizer) == repr(labelled_data_module.NORMALIZER)
    assert repr(backend.pre_tokenizer) == repr(labelled_data_module.PRE_TOKENIZER)
    sentence = "Mary didn't see the cat, so the dog chased it."
    for variant in variants(sentence) + ["mary didn ' t see the cat , so the dog chased it ."]:
        assert tokenizer(variant)["input_ids"] == tokenizer(sentence)["input_ids"]
        assert labelled_data_module.comparison_key(variant) == labelled_data_module.comparison_key(sentence)
    assert labelled_data_module.comparison_key("The dog chased a cat.") != labelled_data_module.comparison_key(
        "The dog chased the cat."
    )


def test_formula_sentences_round_trip_into_the_batch(week: Path) -> None:
    sentences = ["=1+2 is three.", "+33 is a code.", "-5 is cold.", "@home we rest.", "'Tis a quote.", "''= odd."]
    write_queue_csv([queue_item(i, text, "1") for i, text in enumerate(sentences, 1)], week / "filled.csv")
    assert "\n1,'=1+2 is three.," in (week / "filled.csv").read_text()  # escaped for the annotator's spreadsheet
    # a row as a spreadsheet saves it back: the quote was formatting, the cell holds the formula's text
    with open(week / "filled.csv", "a", encoding="utf-8") as handle:
        handle.write("7,=SUM(1) holds.,acceptable,0.6,0.5,x,1,0\n")
    result = labelled_data(week, "filled.csv")
    assert result.returncode == 0, result.stderr
    assert "7 labelled and new" in result.stdout
    batch = csv_rows(week / "data" / "labelled" / "v3.csv")
    assert sorted(row["sentence"] for row in batch) == sorted([*sentences, "=SUM(1) holds."])


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    text = "\n".join(",".join(cells) for cells in [header, *rows]) + "\n"
    path.write_bytes(text.encode(encoding))
    return path.read_bytes()


def test_a_file_saved_as_windows_1252_names_the_line_and_the_fix(week: Path) -> None:
    rows = [["1", "The dog sleeps.", "acceptable", "0.6", "0.5", "x", "1", "1"]]
    rows += [["2", "Le café est fermé.", "acceptable", "0.6", "0.5", "x", "1", "0"]]  # line 3
    data = write_csv(week / "filled.csv", CSV_COLUMNS, rows, encoding="cp1252")
    result = labelled_data(week, "filled.csv")
    assert result.returncode == 2
    byte = data.index(b"\xe9")
    assert result.stderr.strip().splitlines() == [
        f"error: filled.csv: line 3 (byte {byte}, 0xe9) is not UTF-8: the file was saved in another encoding "
        '(a spreadsheet may save Windows-1252): save it as "CSV UTF-8" and run again'
    ]
    # saved again as UTF-8 with Excel's byte order mark: read as it is
    (week / "filled.csv").write_bytes(b"\xef\xbb\xbf" + data.decode("cp1252").encode("utf-8"))
    result = labelled_data(week, "filled.csv")
    assert result.returncode == 0, result.stderr
    assert "2 labelled and new: 1 acceptable, 1 unacceptable" in result.stdout
    assert csv_rows(week / "data" / "labelled" / "v3.csv") == [
        {"sentence": "Le café est fermé.", "label": "0"},
        {"sentence": "The dog sleeps.", "label": "1"},
    ]


def test_a_header_naming_a_column_twice_is_refused(week: Path) -> None:
    rows = [["1", "The dog sleeps.", "acceptable", "0.6", "0.5", "x", "1", "1", ""]]
    write_csv(week / "filled.csv", [*CSV_COLUMNS, "label"], rows)
    result = labelled_data(week, "filled.csv")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: filled.csv: the header names a column twice (label in columns 8 and 9): one of them would be "
        "ignored; keep one column of each name and run again"
    ]
    assert not (week / "data" / "labelled").exists()


def scored(mcc: float, validation_md5: str = "same") -> dict:
    """A candidate or production record as monitoring/promote.py keeps them."""
    return {
        "model_version": f"v9-{mcc}",
        "data_version": "v9",
        "metrics": {"mcc": mcc},
        "validation_md5": validation_md5,
    }


def test_the_rule_promotes_ties_and_refuses_a_lower_mcc() -> None:
    assert decide(scored(0.30), None) == (True, "there is no production model yet: the first model is promoted")
    assert decide(scored(0.30), scored(0.30)) == (True, "candidate mcc 0.3000 >= production mcc 0.3000")
    assert decide(scored(0.2999), scored(0.30)) == (False, "candidate mcc 0.2999 < production mcc 0.3000")
    with pytest.raises(CourseError, match="evaluated on another validation set"):
        decide(scored(0.9, "other"), scored(0.3))
