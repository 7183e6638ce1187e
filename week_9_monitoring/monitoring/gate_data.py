"""The promotion gate's data checks, with pandera: a labelled batch or a prepared data version.

Each check is a pandera Check on a DataFrame of the rows (see monitoring/gate.yaml for the numbers):

  schema             the columns are exactly those the pipeline writes (sentence,label for a batch;
                     sentence,label,idx for a prepared version), every cell text
  label_set          every label is one of the configured labels (0, 1)
  not_empty          no sentence is empty or only spaces
  length_range       every sentence has min_words to max_words words
  no_duplicates      no two sentences read the same to the model (comparison_key), and for a batch,
                     none is already in the data version it extends
  not_in_validation  no sentence is in the validation set, after the same normalisation: a
                     validation sentence in training makes the metrics look better than the model is
  label_balance      the share of acceptable sentences moves at most max_balance_shift from the
                     previous data version

pandera validates lazily, so one run reports every failing row of every check, with the CSV line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaError, SchemaErrors

from errors import CourseError
from monitoring.labelled_data import comparison_key
from prepare_data import FIELDS, LABELLED_FIELDS, RAW_DIR, read_rows, training_rows, version_number

SHOWN_FAILURES = 20  # a report lists at most this many failing rows per check
CHECKS = ("schema", "label_set", "not_empty", "length_range", "no_duplicates", "not_in_validation", "label_balance")


@dataclass
class DataConfig:
    labels: list[int]
    min_words: int
    max_words: int
    max_duplicates: int
    max_balance_shift: float


@dataclass
class DataCheck:
    """One check's outcome: how many rows failed it, and the first SHOWN_FAILURES of them."""

    name: str
    passed: bool
    failed_rows: int = 0
    detail: str = ""
    failures: list[dict] = field(default_factory=list)  # {"line", "sentence", "value"}


@dataclass
class DataReport:
    """The data checks of one batch or data version."""

    subject: str  # "batch data/labelled/v3.csv" or "data version v3 (artifacts/prepared/train.csv)"
    rows: int
    checks: list[DataCheck]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def failed(self) -> list[str]:
        return [check.name for check in self.checks if not check.passed]

    def as_dict(self) -> dict:
        return {
            "subject": self.subject,
            "rows": self.rows,
            "passed": self.passed,
            "checks": [vars(check) for check in self.checks],
        }


def read_frame(path: Path) -> pd.DataFrame:
    """A CSV as text cells (an empty cell stays ""), so the schema sees what the file holds."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise CourseError(f"cannot read {path} as CSV ({error}): write it again with the pipeline") from error


def acceptable_share(labels: pd.Series) -> float:
    return float((labels.astype(str) == "1").mean()) if len(labels) else 0.0


def schema_check(frame: pd.DataFrame, columns: list[str]) -> DataCheck:
    """The columns, in order, and text in every cell: the other checks need this one to pass."""
    schema = pa.DataFrameSchema({name: pa.Column(str) for name in columns}, strict=True, ordered=True)
    try:
        schema.validate(frame)
    except (SchemaError, SchemaErrors):  # SchemaErrors: pandera collects a missing column's errors
        return DataCheck("schema", False, len(frame), f"columns {list(frame.columns)}, expected {columns}")
    return DataCheck("schema", True, detail=f"columns {columns}")


def row_checks(
    config: DataConfig, validation_keys: set[str], earlier_keys: set[str]
) -> dict[str, tuple[str, Callable[[pd.DataFrame], pd.Series]]]:
    """name -> (the column it reports, a function giving True for every row that passes)."""
    labels = {str(label) for label in config.labels}
    return {
        "label_set": ("label", lambda df: df["label"].isin(labels)),
        "not_empty": ("sentence", lambda df: df["sentence"].str.strip() != ""),
        "length_range": (
            "words",
            lambda df: df["words"].between(config.min_words, config.max_words) | (df["words"] == 0),
        ),
        "no_duplicates": ("key", lambda df: ~(df["key"].duplicated() | df["key"].isin(earlier_keys))),
        "not_in_validation": ("key", lambda df: ~df["key"].isin(validation_keys)),
    }


def check_frame(
    frame: pd.DataFrame,
    columns: list[str],
    config: DataConfig,
    validation_keys: set[str],
    previous: pd.DataFrame | None,
    batch: bool,
) -> list[DataCheck]:
    """Every check of CHECKS on `frame` (rows of a CSV, line = index + 2).

    `previous` is the previous data version's rows (None for v1). For a batch, its sentences must
    not repeat them, and the balance compared is that of the version the batch makes.
    """
    shape = schema_check(frame, columns)
    if not shape.passed:
        return [shape] + [DataCheck(name, False, detail="not run: the schema failed") for name in CHECKS[1:]]
    rows = frame.assign(
        key=frame["sentence"].map(comparison_key),
        words=frame["sentence"].str.split().str.len().fillna(0).astype(int),
    )
    earlier = set(previous["sentence"].map(comparison_key)) if batch and previous is not None else set()
    described = row_checks(config, validation_keys, earlier)
    schema = pa.DataFrameSchema(checks=[pa.Check(test, name=name) for name, (_, test) in described.items()])
    failing: dict[str, list[int]] = {name: [] for name in described}
    try:
        schema.validate(rows, lazy=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases
        for name in described:
            failing[name] = sorted({int(index) for index in cases.loc[cases["check"] == name, "index"].dropna()})
    results = [shape]
    for name, (column, _) in described.items():
        rows_failing = failing[name]
        if name == "no_duplicates" and len(rows_failing) <= config.max_duplicates:
            rows_failing = []
        shown = [
            {"line": index + 2, "sentence": str(rows.at[index, "sentence"]), "value": plain(rows.at[index, column])}
            for index in rows_failing[:SHOWN_FAILURES]
        ]
        results.append(DataCheck(name, not rows_failing, len(rows_failing), describe(name, config), shown))
    results.append(balance_check(rows["label"], previous, config, batch))
    return results


def plain(value: object) -> object:
    """A cell as JSON can hold it: numpy's integers become Python's."""
    return value.item() if hasattr(value, "item") else value


def describe(name: str, config: DataConfig) -> str:
    return {
        "label_set": f"labels in {config.labels}",
        "not_empty": "no empty sentence",
        "length_range": f"{config.min_words} to {config.max_words} words",
        "no_duplicates": f"at most {config.max_duplicates} sentence(s) that read the same as another",
        "not_in_validation": "no validation sentence, after normalisation",
    }[name]


def balance_check(labels: pd.Series, previous: pd.DataFrame | None, config: DataConfig, batch: bool) -> DataCheck:
    """The share of acceptable sentences against the previous version's (pandera on a one-row frame)."""
    if previous is None:
        return DataCheck("label_balance", True, detail="no previous data version to compare with")
    before = acceptable_share(previous["label"])
    after = acceptable_share(pd.concat([previous["label"], labels]) if batch else labels)
    shares = pd.DataFrame({"shift": [abs(after - before)]})
    limit = pa.Check.le(config.max_balance_shift, name="label_balance")
    detail = f"acceptable share {after:.3f}, previous version {before:.3f} (allowed change {config.max_balance_shift})"
    try:
        pa.DataFrameSchema({"shift": pa.Column(float, limit)}).validate(shares)
    except SchemaError:
        return DataCheck("label_balance", False, 1, detail)
    return DataCheck("label_balance", True, detail=detail)


def validation_keys(raw_dir: Path = RAW_DIR) -> set[str]:
    return {comparison_key(row["sentence"]) for row in read_rows(raw_dir / "validation.csv")}


def previous_version(version: str) -> str | None:
    """The data version `version` builds on: v2 -> v1, v3 -> v2, v4 -> v3; None for v1."""
    number = version_number(version)
    return None if number is None or number <= 1 else f"v{number - 1}"


def version_frame(version: str, raw_dir: Path = RAW_DIR) -> pd.DataFrame:
    rows, _ = training_rows(version, raw_dir)
    return pd.DataFrame({"sentence": [r["sentence"] for r in rows], "label": [str(r["label"]) for r in rows]})


def check_batch(path: Path, version: str, config: DataConfig, raw_dir: Path = RAW_DIR) -> DataReport:
    """A labelled batch file (columns sentence,label) that makes data version `version`."""
    return check_batch_frame(read_frame(path), f"batch {path}", version, config, raw_dir)


def check_batch_frame(
    frame: pd.DataFrame, subject: str, version: str, config: DataConfig, raw_dir: Path = RAW_DIR
) -> DataReport:
    """The rows of a labelled batch that makes data version `version`, checked against the version before it."""
    earlier = previous_version(version)
    previous = version_frame(earlier, raw_dir) if earlier else None
    checks = check_frame(frame, LABELLED_FIELDS, config, validation_keys(raw_dir), previous, batch=True)
    return DataReport(f"{subject} (data version {version})", len(frame), checks)


def check_version(prepared_train: Path, version: str, config: DataConfig, raw_dir: Path = RAW_DIR) -> DataReport:
    """A prepared data version: the prepare stage's train.csv (sentence,label,idx)."""
    frame = read_frame(prepared_train)
    earlier = previous_version(version)
    previous = version_frame(earlier, raw_dir) if earlier else None
    checks = check_frame(frame, FIELDS, config, validation_keys(raw_dir), previous, batch=False)
    return DataReport(f"data version {version} ({prepared_train})", len(frame), checks)


def summary_lines(report: DataReport) -> list[str]:
    """One line per check, then the failing rows (at most SHOWN_FAILURES per check)."""
    lines = [f"data checks of {report.subject}: {report.rows} rows"]
    for check in report.checks:
        verdict = "pass" if check.passed else f"FAIL ({check.failed_rows} row(s))" if check.failed_rows else "FAIL"
        lines.append(f"  {check.name:<18} {verdict:<16} {check.detail}")
        for failure in check.failures:
            lines.append(f"      line {failure['line']}: {failure['sentence']!r} ({failure['value']!r})")
    return lines
