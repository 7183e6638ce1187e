"""The `prepare` stage of the DVC pipeline: write one version of the training data.

    python prepare_data.py --version v1 --out-dir artifacts/prepared

Two versions, as a project gets them in real life:
  v1  the first 2,000 training sentences: the data you started with
  v2  all 3,000: the same data plus 1,000 newly collected sentences ("more data")
The validation set is the same in both, so the metrics of the two models can be compared.
The raw data is the bundled offline dataset in data/ (made by bundle/ at the repository root).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from errors import CourseError, run_cli
from source import RESTORE_DATA, WEEK_DIR

RAW_DIR = WEEK_DIR / "data"
VERSIONS = {"v1": 2000, "v2": 3000}  # training sentences per data version
FIELDS = ["sentence", "label", "idx"]


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


def write_rows(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def prepare(version: str, out_dir: Path, raw_dir: Path = RAW_DIR) -> dict[str, int]:
    """Write train.csv and validation.csv of `version` into `out_dir`; returns the row counts."""
    if version not in VERSIONS:
        raise CourseError(
            f"unknown data version {version!r}: set data.version in params.yaml to one of {', '.join(VERSIONS)}"
        )
    train = read_rows(raw_dir / "train.csv")
    validation = read_rows(raw_dir / "validation.csv")
    wanted = VERSIONS[version]
    if len(train) < wanted:
        raise CourseError(f"{raw_dir / 'train.csv'} has {len(train)} rows, version {version} needs {wanted}")
    write_rows(train[:wanted], out_dir / "train.csv")
    write_rows(validation, out_dir / "validation.csv")
    return {"train": wanted, "validation": len(validation)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--version", required=True, help=f"one of {', '.join(VERSIONS)}")
    parser.add_argument("--out-dir", type=Path, default=WEEK_DIR / "artifacts" / "prepared")
    args = parser.parse_args()
    counts = prepare(args.version, args.out_dir)
    print(f"data {args.version}: {counts['train']} training and {counts['validation']} validation sentences "
          f"in {args.out_dir}")


if __name__ == "__main__":
    run_cli(main)
