"""The `prepare` stage of the DVC pipeline: write one version of the training data.

    python prepare_data.py --version v1 --out-dir artifacts/prepared

The versions, as a project gets them in real life:
  v1      the first 2,000 training sentences: the data you started with
  v2      all 3,000: the same data plus 1,000 newly collected sentences ("more data")
  v3, v4, ...  v2 plus the human-labelled batches in data/labelled/ up to that version:
          v3 = v2 + v3.csv, v4 = v2 + v3.csv + v4.csv, and so on. Each batch is written by
          `python -m monitoring.labelled_data FILLED.csv` from a labelling CSV (the retraining loop).
A batch is never edited once written, so a version name always means the same sentences.
The validation set is the same in every version, so the metrics of all models can be compared.
The raw data is the bundled offline dataset in data/ (made by bundle/ at the repository root).
"""

from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path

from errors import CourseError, run_cli
from source import RESTORE_DATA, WEEK_DIR

RAW_DIR = WEEK_DIR / "data"
LABELLED_DIR = "labelled"  # data/labelled/v3.csv, v4.csv, ...: one batch of labelled sentences each
BASE_VERSIONS = {"v1": 2000, "v2": 3000}  # training sentences of data/train.csv per base version
FIRST_LABELLED = 3  # v3 is the first version with labelled sentences; it builds on all of v2
FIELDS = ["sentence", "label", "idx"]
LABELLED_FIELDS = ["sentence", "label"]


def read_rows(path: Path) -> list[dict]:
    """The rows of a CoLA-style CSV, with a clear error when the file is missing or broken."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as error:
        raise CourseError(f"cannot read {path} ({error}): {RESTORE_DATA}") from error
    if rows and set(FIELDS) - set(rows[0]):
        raise CourseError(f"{path} lacks the columns {FIELDS}: {RESTORE_DATA}")
    return rows


def write_rows(rows: list[dict], path: Path, fields: list[str] = FIELDS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def version_number(version: str) -> int | None:
    """3 for "v3"; None for anything that is not v<number>."""
    match = re.fullmatch(r"v(\d+)", version)
    return int(match.group(1)) if match else None


def labelled_batches(raw_dir: Path = RAW_DIR) -> dict[int, Path]:
    """The batch files in data/labelled/ by version number, e.g. {3: .../v3.csv, 4: .../v4.csv}."""
    folder = raw_dir / LABELLED_DIR
    batches = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        number = version_number(path.stem) if path.suffix == ".csv" else None
        if number is None or number < FIRST_LABELLED:
            # Everything in data/ is an input of the prepare stage: a stray file would be a silent input.
            raise CourseError(
                f"{path} is not a labelled batch: batches are named v{FIRST_LABELLED}.csv, "
                f"v{FIRST_LABELLED + 1}.csv, ... and written by `python -m monitoring.labelled_data FILLED.csv`; "
                f"move it out of {folder}"
            )
        batches[number] = path
    return batches


def next_version(raw_dir: Path = RAW_DIR) -> str:
    """The version the next labelled batch makes: v3 when there is none yet, else one more than the last."""
    return f"v{max(labelled_batches(raw_dir), default=FIRST_LABELLED - 1) + 1}"


def read_labelled_batch(path: Path) -> list[dict]:
    """The rows of one batch file (sentence, label 0/1), or an error naming the file and line."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != LABELLED_FIELDS:
            raise CourseError(
                f"{path} has the columns {reader.fieldnames}, not {LABELLED_FIELDS}: batches are written by "
                "`python -m monitoring.labelled_data`; delete the file and write it again from the labelling CSV"
            )
        rows = []
        for row in reader:
            if not (row["sentence"] or "").strip() or row["label"] not in ("0", "1"):
                raise CourseError(
                    f"{path}:{reader.line_num}: needs a sentence and a label 0 or 1, got {row}: "
                    "batches are written by `python -m monitoring.labelled_data`; fix the line or write the batch again"
                )
            rows.append(row)
    return rows


def training_rows(version: str, raw_dir: Path = RAW_DIR) -> tuple[list[dict], list[Path]]:
    """The training rows of `version`, and the labelled batch files it includes (none for v1 and v2)."""
    train = read_rows(raw_dir / "train.csv")
    number = version_number(version)
    batches = labelled_batches(raw_dir)
    if version in BASE_VERSIONS:
        base, included = BASE_VERSIONS[version], []
    elif number is not None and number >= FIRST_LABELLED:
        base = BASE_VERSIONS["v2"]
        missing = [f"v{n}.csv" for n in range(FIRST_LABELLED, number + 1) if n not in batches]
        if missing:
            raise CourseError(
                f"data version {version} is v2 plus the batches v{FIRST_LABELLED}.csv ... {version}.csv, but "
                f"{', '.join(missing)} is not in {raw_dir / LABELLED_DIR}: write the next batch with "
                f"`python -m monitoring.labelled_data FILLED.csv`, or set data.version in params.yaml to one of "
                f"{', '.join(known_versions(raw_dir))}"
            )
        included = [batches[n] for n in range(FIRST_LABELLED, number + 1)]
    else:
        raise CourseError(
            f"unknown data version {version!r}: set data.version in params.yaml to one of "
            f"{', '.join(known_versions(raw_dir))}"
        )
    if len(train) < base:
        raise CourseError(f"{raw_dir / 'train.csv'} has {len(train)} rows, version {version} needs {base}")
    rows = train[:base]
    for path in included:
        # Labelled sentences continue the idx numbering after data/train.csv's.
        rows += [{**row, "idx": len(rows) + i} for i, row in enumerate(read_labelled_batch(path))]
    return rows, included


def known_versions(raw_dir: Path = RAW_DIR) -> list[str]:
    """v1, v2 and one version per labelled batch that is there."""
    return [*BASE_VERSIONS, *(f"v{n}" for n in sorted(labelled_batches(raw_dir)))]


def prepare(version: str, out_dir: Path, raw_dir: Path = RAW_DIR) -> dict[str, int]:
    """Write train.csv and validation.csv of `version` into `out_dir`; returns the row counts."""
    train, batches = training_rows(version, raw_dir)
    validation = read_rows(raw_dir / "validation.csv")
    write_rows(train, out_dir / "train.csv")
    write_rows(validation, out_dir / "validation.csv")
    labelled = len(train) - BASE_VERSIONS["v2"] if batches else 0
    return {"train": len(train), "labelled": labelled, "batches": len(batches), "validation": len(validation)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--version", required=True, help="v1, v2, or v3, v4, ... (one per labelled batch)")
    parser.add_argument("--out-dir", type=Path, default=WEEK_DIR / "artifacts" / "prepared")
    args = parser.parse_args()
    counts = prepare(args.version, args.out_dir)
    labelled = f" ({counts['labelled']} from {counts['batches']} labelled batch(es))" if counts["batches"] else ""
    print(f"data {args.version}: {counts['train']} training{labelled} and {counts['validation']} validation "
          f"sentences in {args.out_dir}")


if __name__ == "__main__":
    run_cli(main)
