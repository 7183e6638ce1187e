"""Turn a filled labelling CSV into the next batch of training data: a new DVC data version.

    python -m monitoring.labelled_data labelling/queue.csv          # writes data/labelled/v3.csv, sets data.version: v3
    python -m monitoring.labelled_data labelling/queue.csv --check  # validates and reports, writes nothing

The labelling CSV is the queue that monitoring/labelling_queue.py writes (columns rank, sentence,
predicted_label, score, priority, reason, seen, label) once someone has filled in the `label` column with
`acceptable` or `unacceptable` (1 or 0 work too). Only `sentence` and `label` are read.

  * a row whose label is still empty is skipped, counted and reported: label it in a later queue;
  * an unknown label or an empty sentence stops everything, naming the CSV lines to fix;
  * a sentence that is already in the training data (v2 or an earlier batch) or in the validation
    set is reported and left out: training on it twice adds nothing, and a validation sentence in
    training would make the metrics look better than the model is. Sentences are compared as the
    model's tokenizer reads them (comparison_key): "the dog barks ." is "The dog  barks.";
  * the file may be UTF-8 with or without a byte order mark; another encoding, or a header that
    names a column twice, is refused on one line (monitoring/spreadsheet_csv.py); a sentence the
    queue wrote with a quote in front (it started with = + - @) is read without it;
  * the rest must pass the promotion gate's data checks (monitoring/gate.py: label balance, length, ...);
    a batch that fails is refused, its report in reports/gate/batch-vN.json;
  * then it is written, sorted, to data/labelled/vN.csv (columns sentence,label) and params.yaml's
    data.version becomes vN, so the next `dvc repro` prepares, trains, evaluates and exports on it.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from tokenizers.normalizers import BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer

from errors import CourseError, run_cli
from monitoring.spreadsheet_csv import csv_rows, read_csv_text, unescape_cell
from prepare_data import (
    LABELLED_DIR,
    LABELLED_FIELDS,
    RAW_DIR,
    labelled_batches,
    next_version,
    read_rows,
    training_rows,
    version_number,
    write_rows,
)
from source import WEEK_DIR

PARAMS_FILE = WEEK_DIR / "params.yaml"
LABELS = {"unacceptable": 0, "acceptable": 1, "0": 0, "1": 1}  # what an annotator may type, any case
LABEL_NAMES = ("unacceptable", "acceptable")  # label id 0 and 1, as the model names them
REQUIRED_COLUMNS = ("sentence", "label")
SHOWN_LINES = 20  # a report lists at most this many line numbers per kind
# The first two steps of the week's tokenizer (offline_model/tokenizer.json and the Hub's uncased BERT-tiny
# declare exactly these; tests/test_labelled_data.py checks it): sentences that agree after them get the
# same token ids, so the model cannot tell them apart.
NORMALIZER = BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
PRE_TOKENIZER = BertPreTokenizer()


def comparison_key(sentence: str) -> str:
    """A sentence as the model's tokenizer reads it: lower case, accents off, words and punctuation
    split, one space between them. "The dog  barks ." and "the dog barks." have the same key."""
    return " ".join(piece for piece, _ in PRE_TOKENIZER.pre_tokenize_str(NORMALIZER.normalize_str(sentence)))


@dataclass
class LabelledRow:
    line: int  # the CSV line the row starts on (the header is line 1)
    sentence: str
    label: int


@dataclass
class LabelledFile:
    """A filled labelling CSV, sorted into what can be added and what cannot."""

    path: Path
    rows: int = 0
    new: list[LabelledRow] = field(default_factory=list)  # goes into the batch
    unlabelled: list[int] = field(default_factory=list)  # line numbers, skipped
    in_training: list[tuple[LabelledRow, int]] = field(default_factory=list)  # (row, label in the training data)
    in_validation: list[LabelledRow] = field(default_factory=list)
    repeated: list[tuple[LabelledRow, int]] = field(default_factory=list)  # (row, line it repeats)


def line_list(lines: list[int]) -> str:
    """ "line 4" or "lines 4, 9, 12", at most SHOWN_LINES of them."""
    shown = ", ".join(str(line) for line in lines[:SHOWN_LINES])
    more = f" and {len(lines) - SHOWN_LINES} more" if len(lines) > SHOWN_LINES else ""
    return f"line{'s' if len(lines) > 1 else ''} {shown}{more}"


def read_labelling_csv(path: Path) -> list[tuple[int, dict]]:
    """(line number, row) for every row of a labelling CSV; an error when the file or its columns are wrong."""
    try:
        text = read_csv_text(path)  # UTF-8, a BOM dropped; another encoding is refused naming line and byte
    except OSError as error:
        raise CourseError(
            f"cannot read the labelling CSV {path} ({error.strerror}): write a queue with "
            "`python -m monitoring.labelling_queue`, fill its label column, and pass that file"
        ) from error
    reader = csv_rows(path, text)  # a header naming a column twice is refused
    columns = reader.fieldnames or []
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise CourseError(
            f"{path} has no {' and no '.join(missing)} column (its columns: {', '.join(columns) or 'none'}): "
            "use the CSV that `python -m monitoring.labelling_queue` writes, with the label column filled in"
        )
    rows, end_of_previous = [], 1  # the header ends on line 1
    try:
        for row in reader:
            rows.append((end_of_previous + 1, row))  # a quoted sentence may span lines: report where it starts
            end_of_previous = reader.line_num
    except csv.Error as error:
        raise CourseError(
            f"{path}:{reader.line_num} is not CSV ({error}): save the file again as CSV from your spreadsheet"
        ) from error
    return rows


def parse_label(text: str) -> int | None:
    """0 or 1 for a label an annotator typed; None when it is empty; KeyError when it is unknown."""
    text = text.strip().lower()
    return None if not text else LABELS[text]


def training_labels(raw_dir: Path = RAW_DIR) -> dict[str, int]:
    """Every sentence of v2 and of the labelled batches written so far, by comparison_key, with its label."""
    batches = labelled_batches(raw_dir)
    newest = f"v{max(batches)}" if batches else "v2"
    return {comparison_key(row["sentence"]): int(row["label"]) for row in training_rows(newest, raw_dir)[0]}


def sort_labelled(path: Path, raw_dir: Path = RAW_DIR) -> LabelledFile:
    """Read and check a filled labelling CSV against the training and validation data in `raw_dir`.

    Raises one CourseError listing every line with an unknown label or an empty sentence. Sentences are
    compared with the data and with each other by comparison_key, as the model would see them.
    """
    result = LabelledFile(Path(path))
    problems: list[str] = []
    training = training_labels(raw_dir)
    validation = {comparison_key(row["sentence"]) for row in read_rows(raw_dir / "validation.csv")}
    first_seen: dict[str, LabelledRow] = {}
    for line, row in read_labelling_csv(result.path):
        result.rows += 1
        sentence = unescape_cell(row.get("sentence") or "").strip()
        try:
            label = parse_label(row.get("label") or "")
        except KeyError:
            problems.append(f"line {line}: label {row['label'].strip()!r} is not one of acceptable, unacceptable, 1, 0")
            continue
        if label is None:
            result.unlabelled.append(line)
            continue
        if not sentence:
            problems.append(f"line {line}: the sentence is empty")
            continue
        labelled = LabelledRow(line, sentence, label)
        key = comparison_key(sentence)
        if key in first_seen:
            earlier = first_seen[key]
            if earlier.label != label:
                problems.append(
                    f"line {line}: the same sentence as line {earlier.line}, but labelled {LABEL_NAMES[label]} "
                    f"here and {LABEL_NAMES[earlier.label]} there"
                )
            else:
                result.repeated.append((labelled, earlier.line))
            continue
        first_seen[key] = labelled
        if key in training:
            result.in_training.append((labelled, training[key]))
        elif key in validation:
            result.in_validation.append(labelled)
        else:
            result.new.append(labelled)
    if problems:
        shown = "\n  ".join(problems[:SHOWN_LINES])
        more = f"\n  ... and {len(problems) - SHOWN_LINES} more" if len(problems) > SHOWN_LINES else ""
        raise CourseError(
            f"{path}: {len(problems)} row(s) cannot be used:\n  {shown}{more}\n"
            "fix these lines (a label is acceptable, unacceptable, 1 or 0; clear it to skip the row) and run again"
        )
    return result


def summary(labelled: LabelledFile) -> str:
    """What happened to every row of the labelling CSV, one line per kind, with line numbers."""
    new_acceptable = sum(row.label for row in labelled.new)
    lines = [
        f"{labelled.path}: {labelled.rows} rows",
        f"  {len(labelled.new)} labelled and new: {new_acceptable} acceptable, "
        f"{len(labelled.new) - new_acceptable} unacceptable",
    ]
    if labelled.unlabelled:
        lines.append(
            f"  {len(labelled.unlabelled)} left unlabelled, skipped ({line_list(labelled.unlabelled)}): "
            "label them in a later queue"
        )
    if labelled.in_training:
        disagree = [
            f"line {row.line} ({LABEL_NAMES[row.label]} here, {LABEL_NAMES[label]} there)"
            for row, label in labelled.in_training
            if row.label != label
        ]
        lines.append(
            f"  {len(labelled.in_training)} already in the training data, left out "
            f"({line_list([row.line for row, _ in labelled.in_training])})"
            + (f"; labelled differently there: {', '.join(disagree[:SHOWN_LINES])}" if disagree else "")
        )
    if labelled.in_validation:
        lines.append(
            f"  {len(labelled.in_validation)} in the validation set, left out "
            f"({line_list([row.line for row in labelled.in_validation])}): it must stay unseen by training"
        )
    if labelled.repeated:
        lines.append(
            f"  {len(labelled.repeated)} repeated in this file, left out: "
            + ", ".join(f"line {row.line} repeats line {first}" for row, first in labelled.repeated[:SHOWN_LINES])
        )
    return "\n".join(lines)


def set_data_version(version: str, params_file: Path = PARAMS_FILE) -> str:
    """Set data.version in params.yaml; returns the version it had.

    The line is edited in place rather than loaded and dumped as YAML, which would drop the comments.
    """
    lines = params_file.read_text(encoding="utf-8").splitlines(keepends=True)
    inside = False
    for i, line in enumerate(lines):
        if line.strip() and not line.startswith((" ", "#")):
            inside = line.startswith("data:")
        elif inside and (match := re.match(r"(\s+version:\s*)([^\s#]+)(.*)", line, re.DOTALL)):
            lines[i] = f"{match[1]}{version}{match[3]}"
            # Atomically: a crash leaves the old params.yaml or the new one, never half of it.
            temporary = params_file.with_name(params_file.name + ".tmp")
            temporary.write_text("".join(lines), encoding="utf-8")
            os.replace(temporary, params_file)
            return match[2]
    raise CourseError(
        f"{params_file} has no data.version: restore it with `git checkout -- params.yaml` "
        "(a `data:` section with `version: v2` under it)"
    )


@dataclass
class Ingested:
    labelled: LabelledFile
    version: str  # the new data version, e.g. "v3"
    batch: Path  # data/labelled/v3.csv
    previous_version: str  # what params.yaml had before


def selected_version(params_file: Path = PARAMS_FILE) -> str | None:
    """data.version in params.yaml (None when the line is missing)."""
    inside = False
    for line in params_file.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith((" ", "#")):
            inside = line.startswith("data:")
        elif inside and (match := re.match(r"\s+version:\s*([^\s#]+)", line)):
            return match[1]
    return None


def refuse_unselected_batch(raw_dir: Path = RAW_DIR, params_file: Path = PARAMS_FILE) -> None:
    """Stop when the newest batch is newer than the version params.yaml selects.

    ingest writes the batch, then selects it: a run stopped between the two leaves a batch that no
    version trains on, and its sentences would make the same labels look "already in the data".
    """
    batches = labelled_batches(raw_dir)
    selected = selected_version(params_file)
    if not batches or selected is None:
        return
    newest = max(batches)
    if f"v{newest}" != selected and (version_number(selected) or 0) < newest:
        raise CourseError(
            f"{batches[newest]} is not selected: params.yaml has data.version {selected} (an earlier run stopped "
            f"after writing the batch). Set data.version: v{newest} in params.yaml, then run `dvc repro` and "
            f"`python -m monitoring.promote`; or delete {batches[newest]} and run this again"
        )


def ingest(path: Path, raw_dir: Path = RAW_DIR, params_file: Path = PARAMS_FILE) -> Ingested:
    """Check a filled labelling CSV, write its new sentences as the next batch, and select that version."""
    refuse_unselected_batch(raw_dir, params_file)
    labelled = sort_labelled(path, raw_dir)
    if len(labelled.unlabelled) == labelled.rows:
        raise CourseError(
            f"{path}: none of its {labelled.rows} rows has a label yet: fill the label column with "
            "acceptable or unacceptable, then run again"
        )
    if not labelled.new:
        raise CourseError(
            f"{summary(labelled)}\nnothing new to train on: every labelled sentence is already in the data; "
            "label a new queue (`python -m monitoring.labelling_queue`)"
        )
    version = next_version(raw_dir)
    batch = raw_dir / LABELLED_DIR / f"{version}.csv"
    # Sorted, so the same labelled sentences always make the same batch (and the same data hash),
    # whatever order the queue or the annotator's spreadsheet had them in.
    rows = [{"sentence": row.sentence, "label": row.label} for row in sorted(labelled.new, key=lambda r: r.sentence)]
    from monitoring.gate import gate_batch_rows  # here: monitoring.gate imports comparison_key from this module

    gate_batch_rows(rows, version, raw_dir)  # the data gate: a failing batch is refused, its report written
    write_rows(rows, batch, LABELLED_FIELDS)
    previous = set_data_version(version, params_file)
    return Ingested(labelled, version, batch, previous)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("labelling_csv", type=Path, help="a labelling queue with its label column filled in")
    parser.add_argument("--check", action="store_true", help="validate and report only; write nothing")
    args = parser.parse_args()
    if args.check:
        labelled = sort_labelled(args.labelling_csv)
        print(summary(labelled))
        print(f"--check: nothing written; the batch would be {RAW_DIR / LABELLED_DIR / (next_version() + '.csv')}")
        return
    ingested = ingest(args.labelling_csv)
    print(summary(ingested.labelled))
    print(f"wrote {len(ingested.labelled.new)} sentences to {ingested.batch}")
    print(f"params.yaml: data.version {ingested.previous_version} -> {ingested.version}")
    print(
        f"next: `dvc repro` (prepare, train, evaluate, export on {ingested.version}), "
        "then `python -m monitoring.promote`"
    )


if __name__ == "__main__":
    run_cli(main)
