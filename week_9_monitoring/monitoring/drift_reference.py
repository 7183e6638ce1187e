"""The drift reference and the monitoring config: what production traffic is compared with.

The reference (`python -m monitoring.drift reference`) is the "reference" half of data/validation.csv (even
idx) with the model's predictions on it, plus the vocabulary of data/train.csv for the unseen-
word test. Validation sentences rather than training sentences, because production sentences
are new to the model too: the generator never repeats a sentence across splits, so validation
lacks some of the commonest training sentences, and against training sentences the domain
classifier flagged about 5% of clean windows at alpha 0.01. Compare like with like. The other
half ("holdout") is left for test windows and the demo (support/shifted_text.py): a window that
overlapped its own reference would make the false-alarm rate look better than it is.

monitoring/monitoring.yaml holds the thresholds (drift alpha, minimum window, domain classifier)
and the labelling queue's weights; load_config checks it and names a bad key.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from errors import CourseError
from monitoring.prediction_events import utc_timestamp
from source import OFFLINE_DATA_DIR, WEEK_DIR, read_split
from support.shifted_text import validation_half

CONFIG_PATH = WEEK_DIR / "monitoring" / "monitoring.yaml"


# ----------------------------------------------------------------------------------- settings


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, not a silent default


class DriftSettings(Strict):
    alpha: float
    min_window: int


class ReferenceSettings(Strict):
    path: Path


class DomainClassifierSettings(Strict):
    max_rows: int
    folds: int
    ngram_min: int
    ngram_max: int
    n_features: int
    C: float
    seed: int = 0


class QueueWeights(Strict):
    uncertainty: float
    oov: float
    domain: float


class QueueSettings(Strict):
    top: int
    weights: QueueWeights


class MonitoringConfig(Strict):
    drift: DriftSettings
    reference: ReferenceSettings
    domain_classifier: DomainClassifierSettings
    labelling_queue: QueueSettings

    def reference_path(self) -> Path:
        """The reference file; a relative path is taken from the week folder."""
        return self.reference.path if self.reference.path.is_absolute() else WEEK_DIR / self.reference.path


def load_config(path: Path | None = None) -> MonitoringConfig:
    """monitoring/monitoring.yaml (or `path`) as a checked MonitoringConfig; CourseError naming the bad key."""
    path = Path(path or CONFIG_PATH)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise CourseError(
            f"cannot read {path} ({error.strerror}): restore it with `git checkout -- {path.name}`"
        ) from error
    except yaml.YAMLError as error:
        raise CourseError(f"{path} is not valid YAML ({error})") from error
    try:
        config = MonitoringConfig.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise CourseError(f"{path} has a wrong setting ({problems}): compare it with the one in git") from error
    if not 0 < config.drift.alpha < 1:
        raise CourseError(f"{path}: drift.alpha={config.drift.alpha} must be between 0 and 1, e.g. 0.01")
    if config.domain_classifier.folds < 2:
        raise CourseError(f"{path}: domain_classifier.folds must be at least 2")
    if config.drift.min_window < config.domain_classifier.folds:
        raise CourseError(f"{path}: drift.min_window must be at least domain_classifier.folds")
    return config


# ----------------------------------------------------------------------------------- words


def words(text: str) -> list[str]:
    """The words of a text, case-folded: runs of letters or digits ("l'école" is "l" and "école")."""
    return re.findall(r"[^\W_]+", text.casefold())


def oov_rate(text: str, vocabulary: set[str]) -> float:
    """The share of the text's words that are not in `vocabulary`.

    A text with no word at all ("?!") counts as entirely unseen: nothing in it is familiar.
    """
    found = words(text)
    if not found:
        return 1.0
    return sum(word not in vocabulary for word in found) / len(found)


# ----------------------------------------------------------------------------------- reference


class Reference(BaseModel):
    """What a window is compared with; `python -m monitoring.drift reference` writes it as JSON."""

    built_at: str
    model_version: str
    labels: list[str]  # the model's label names, in its output order
    vocabulary: list[str]  # every word of data/train.csv: the words the model has seen
    texts: list[str]  # the reference half of data/validation.csv
    predicted_labels: list[str]  # the model's prediction for each of `texts`
    scores: list[float]

    def text_lengths(self) -> list[int]:
        return [len(text) for text in self.texts]

    def word_counts(self) -> list[int]:
        return [len(text.split()) for text in self.texts]  # split on spaces, as prediction events count

    def oov_rates(self) -> np.ndarray:
        vocabulary = set(self.vocabulary)
        return np.array([oov_rate(text, vocabulary) for text in self.texts])


def build_reference(export_dir: Path, data_dir: Path | None = None) -> Reference:
    """The training vocabulary, and the exported model's predictions on the reference half of validation."""
    from inference_onnx import ColaOnnxPredictor  # onnxruntime: only `reference` needs it, not `check`

    data_dir = Path(data_dir or OFFLINE_DATA_DIR)
    train = [row["sentence"] for row in read_split("train", data_dir)]
    texts = [row["sentence"] for row in validation_half("reference", data_dir)]
    predictor = ColaOnnxPredictor(export_dir)
    predictions = predictor.predict_batch(texts)
    return Reference(
        built_at=utc_timestamp(),
        model_version=str(predictor.config.get("model_version") or "unknown"),
        labels=predictor.labels,
        vocabulary=sorted({word for sentence in train for word in words(sentence)}),
        texts=texts,
        predicted_labels=[p["label"] for p in predictions],
        scores=[p["score"] for p in predictions],
    )


def save_reference(reference: Reference, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(reference.model_dump_json(indent=1), encoding="utf-8")
    return path


def load_reference(path: Path) -> Reference:
    """The reference JSON at `path`; CourseError when it is missing or not one."""
    if not path.is_file():
        raise CourseError(f"no drift reference at {path}: build it with `python -m monitoring.drift reference`")
    try:
        return Reference.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as error:
        raise CourseError(
            f"{path} is not a drift reference ({error.error_count()} problems): "
            "rebuild it with `python -m monitoring.drift reference`"
        ) from error
