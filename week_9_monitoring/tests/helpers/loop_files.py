"""What the retraining loop writes, read back: the rows of a CSV, and the data version in params.yaml."""

from __future__ import annotations

import csv
from pathlib import Path

import yaml


def csv_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def data_version(week: Path) -> str:
    return yaml.safe_load((week / "params.yaml").read_text())["data"]["version"]
