"""Drift detection: does recent production traffic still look like the data the model was trained on?

    python -m monitoring.drift reference                         # once per model: artifacts/monitoring/reference.json
    python -m monitoring.drift check --events logs/events.jsonl  # the tests as a table, and a verdict
    python -m monitoring.drift check --events logs/events.jsonl --last 500 --json drift.json --fail-on-drift

`check` compares a window of logged prediction events (monitoring/prediction_events.py) with a reference
set of sentences and the model's predictions on them, one statistical test per question:

  test               kind     compares                                          test used
  text_length        feature  characters per sentence                           two-sample Kolmogorov-Smirnov
  word_count         feature  words per sentence                                two-sample Kolmogorov-Smirnov
  oov_rate           feature  share of a sentence's words unseen in training    Mann-Whitney U, one-sided
  domain_classifier  feature  can a classifier tell production from reference?  AUC and Mann-Whitney U on
                                                                                held-out scores
  predicted_label    label    how often each label is predicted                 chi-square on a 2 x labels table
  score              label    the model's confidence (the winning probability)  two-sample Kolmogorov-Smirnov

Each test reports drift when its p-value is below alpha (monitoring/monitoring.yaml). A window with no
drift still fails some test now and then by chance; monitoring/monitoring.yaml says how often at most.

The text tests need the sentences, which events carry only when the service runs with
LOG_TEXT=true. Without them those tests are reported as "not run", never as passed. The label
tests compare with the reference model's own predictions; events from another model version
are not compared with it (rebuild the reference for the new model).

The reference (`python -m monitoring.drift reference`) is the "reference" half of data/validation.csv (even
idx) with the model's predictions on it, plus the vocabulary of data/train.csv for the unseen-
word test. Validation sentences rather than training sentences, because production sentences
are new to the model too: the generator never repeats a sentence across splits, so validation
lacks some of the commonest training sentences, and against training sentences the domain
classifier flagged about 5% of clean windows at alpha 0.01. Compare like with like. The other
half ("holdout") is left for test windows and the demo (support/shifted_text.py): a window that
overlapped its own reference would make the false-alarm rate look better than it is.

Exit codes of `check`: 0 ran (drift or not); 3 drift found with --fail-on-drift (for cron or a
CI schedule); 2 a problem with the input, explained on one line.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from scipy.stats import chi2_contingency, ks_2samp, mannwhitneyu
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from errors import CourseError, run_cli
from monitoring.prediction_events import PredictionEvent, read_events, utc_timestamp
from source import OFFLINE_DATA_DIR, RESTORE_DATA, WEEK_DIR
from support.shifted_text import validation_half

CONFIG_PATH = WEEK_DIR / "monitoring" / "monitoring.yaml"
FAIL_ON_DRIFT_EXIT = 3
NO_TEXT = "events carry no text (set LOG_TEXT=true)"

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


def read_sentences(path: Path) -> list[str]:
    """The `sentence` column of a CSV file such as data/train.csv."""
    if not path.is_file():
        raise CourseError(f"{path} is missing: {RESTORE_DATA}")
    with open(path, encoding="utf-8", newline="") as handle:
        return [row["sentence"] for row in csv.DictReader(handle)]


def build_reference(export_dir: Path, data_dir: Path | None = None) -> Reference:
    """The training vocabulary, and the exported model's predictions on the reference half of validation."""
    from inference_onnx import ColaOnnxPredictor  # onnxruntime: only `reference` needs it, not `check`

    data_dir = Path(data_dir or OFFLINE_DATA_DIR)
    train = read_sentences(data_dir / "train.csv")
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


# ----------------------------------------------------------------------------------- the window


def parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise CourseError(f"{text!r} is not a time: write it like 2026-11-23T15:00:00Z") from error
    if moment.tzinfo is None:
        raise CourseError(f"{text!r} has no time zone: add Z for UTC, e.g. 2026-11-23T15:00:00Z")
    return moment


def select_window(
    events: list[PredictionEvent], last: int | None = None, since: str | None = None
) -> list[PredictionEvent]:
    """The events at or after `since` (an ISO time), then the `last` of them, in file order."""
    if last is not None and last < 1:
        raise CourseError(f"--last {last}: give a positive number of events")
    if since is not None:
        start = parse_time(since)
        events = [e for e in events if parse_time(e.timestamp) >= start]
    if last is not None:
        events = events[-last:]
    return events


# ----------------------------------------------------------------------------------- results


@dataclass
class TestResult:
    """One test on one window. `drifted` and the numbers are None when the test did not run."""

    name: str
    kind: Literal["feature", "label"]
    method: str
    threshold: float  # alpha: drift when p_value < threshold
    statistic: float | None = None
    p_value: float | None = None
    drifted: bool | None = None
    status: Literal["drift", "no drift", "not run"] = "not run"
    detail: str = ""  # what was compared, or why the test did not run
    window_size: int = 0
    reference_size: int = 0

    __test__ = False  # named Test*, but holds no tests: keeps pytest from collecting it


@dataclass
class DriftReport:
    """All tests on one window; `drifted` is True when any test that ran found drift."""

    window_size: int
    window_start: str
    window_end: str
    reference_size: int  # reference predictions the label tests compare with
    model_version: str
    alpha: float
    results: list[TestResult] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return any(result.drifted for result in self.results)

    def result(self, name: str) -> TestResult:
        """The result of the test called `name`."""
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(name)

    def to_dict(self) -> dict:
        """Plain JSON-ready data: what `check --json` writes and monitoring/monitoring_report.py renders."""
        data = asdict(self)
        data["drifted"] = self.drifted
        data["tests_run"] = sum(r.status != "not run" for r in self.results)
        data["tests_drifted"] = sum(bool(r.drifted) for r in self.results)
        return data


def decide(result: TestResult, statistic: float, p_value: float, detail: str) -> TestResult:
    """Fill in the numbers and the verdict of a test that ran."""
    result.statistic = float(statistic)
    result.p_value = float(p_value)
    result.drifted = bool(p_value < result.threshold)
    result.status = "drift" if result.drifted else "no drift"
    result.detail = detail
    return result


# ----------------------------------------------------------------------------------- the tests


def ks_test(result: TestResult, window: list[float], reference: list[float], unit: str) -> TestResult:
    """Two-sample Kolmogorov-Smirnov: the largest gap between the two cumulative distributions."""
    test = ks_2samp(window, reference)
    result.window_size, result.reference_size = len(window), len(reference)
    unit = f" {unit}" if unit else ""
    detail = f"median {np.median(window):.3g}{unit} in the window, {np.median(reference):.3g} in the reference"
    return decide(result, test.statistic, test.pvalue, detail)


def one_sided_greater(window: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(P(window value > reference value), p-value) by Mann-Whitney U, window larger as the alternative.

    When both samples hold one and the same value (no unseen word anywhere) there is nothing to
    test: the statistic is 0.5 and the p-value 1.
    """
    if np.ptp(np.concatenate([window, reference])) == 0:
        return 0.5, 1.0
    test = mannwhitneyu(window, reference, alternative="greater")
    return test.statistic / (len(window) * len(reference)), test.pvalue


def oov_test(result: TestResult, texts: list[str], reference: Reference) -> TestResult:
    """Are there more words unseen in training per sentence than in the reference half of validation?

    The sentence is the unit, not the word: words of one sentence are not independent draws
    (one foreign sentence brings many unseen words), so a chi-square over word counts would
    find drift far too often. The reference rates come from validation sentences, because
    training sentences have no unseen words by construction.
    """
    vocabulary = set(reference.vocabulary)
    window = np.array([oov_rate(text, vocabulary) for text in texts])
    reference_rates = reference.oov_rates()
    statistic, p_value = one_sided_greater(window, reference_rates)
    result.window_size, result.reference_size = len(window), len(reference_rates)
    detail = (
        f"mean {window.mean():.1%} of words unseen in training in the window, "
        f"{reference_rates.mean():.1%} in the reference; statistic = P(a window sentence has more)"
    )
    return decide(result, statistic, p_value, detail)


def hashed_ngrams(settings: DomainClassifierSettings) -> HashingVectorizer:
    """Character n-grams within words, hashed into a fixed number of columns: no vocabulary to fit or store."""
    return HashingVectorizer(
        analyzer="char_wb",
        ngram_range=(settings.ngram_min, settings.ngram_max),
        n_features=settings.n_features,
        alternate_sign=False,
    )


def domain_model(settings: DomainClassifierSettings) -> LogisticRegression:
    # balanced: the groups may differ in size, and the scores must not just echo that ratio
    return LogisticRegression(C=settings.C, solver="liblinear", class_weight="balanced", random_state=settings.seed)


def domain_classifier_scores(
    reference_texts: list[str], production_texts: list[str], settings: DomainClassifierSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold P(production) of every reference and every production text (the labelling queue uses them).

    A logistic regression learns "reference or production?" in `folds` rounds; each text is
    scored by the round's model that left it out, so a high score means the text looks like
    production to a model that never saw it, not that the model memorised it.
    """
    n_reference = len(reference_texts)
    if min(n_reference, len(production_texts)) < settings.folds:
        raise CourseError(
            f"the domain classifier needs at least {settings.folds} sentences on each side "
            f"(got {n_reference} reference, {len(production_texts)} production): collect more events"
        )
    groups = np.array([0] * n_reference + [1] * len(production_texts))
    features = hashed_ngrams(settings).transform(reference_texts + production_texts)
    folds = StratifiedKFold(n_splits=settings.folds, shuffle=True, random_state=settings.seed)
    scores = cross_val_predict(domain_model(settings), features, groups, cv=folds, method="predict_proba")[:, 1]
    return scores[:n_reference], scores[n_reference:]


def domain_classifier_test(
    result: TestResult, texts: list[str], reference: Reference, settings: DomainClassifierSettings
) -> TestResult:
    """Train "reference or production?" on half of each group, and test it on the other half.

    The statistic is the AUC on the held-out halves: 0.5 = the classifier cannot tell the groups
    apart, 1.0 = it always can. The p-value is a one-sided Mann-Whitney U test on the held-out
    scores (U / (n1 * n2) is that AUC). The held-out sentences never met the model, so under "no
    drift" their scores are exchangeable between the groups and the p-value is exact. Pooled
    out-of-fold scores of a cross-validation are not: the fold models share training rows, and on
    samples without drift that test fired 4% of the time at alpha 0.01 (10% at 0.05).
    """
    rng = np.random.default_rng(settings.seed)  # the same window always gets the same verdict
    production = [texts[i] for i in rng.permutation(len(texts))[: settings.max_rows]]
    known = [reference.texts[i] for i in rng.permutation(len(reference.texts))[: settings.max_rows]]
    p_half, k_half = len(production) // 2, len(known) // 2
    vectorizer = hashed_ngrams(settings)
    features = vectorizer.transform(known[:k_half] + production[:p_half])
    model = domain_model(settings).fit(features, [0] * k_half + [1] * p_half)
    reference_scores = model.predict_proba(vectorizer.transform(known[k_half:]))[:, 1]
    production_scores = model.predict_proba(vectorizer.transform(production[p_half:]))[:, 1]
    statistic, p_value = one_sided_greater(production_scores, reference_scores)
    result.window_size, result.reference_size = len(production), len(known)
    detail = (
        f"AUC {statistic:.3f} on {len(production) - p_half} production + {len(known) - k_half} reference sentences "
        f"it was not trained on (trained on {p_half} + {k_half}); 0.5 = indistinguishable"
    )
    return decide(result, statistic, p_value, detail)


def label_test(result: TestResult, window: list[str], reference: list[str]) -> TestResult:
    """Chi-square on the 2 x labels table of counts: are the labels predicted in the same proportions?

    A table rather than a goodness-of-fit test against fixed proportions, because the reference
    proportions are themselves estimated from a few hundred sentences. With two labels SciPy
    applies Yates' continuity correction, which errs on the side of fewer false alarms.
    """
    result.window_size, result.reference_size = len(window), len(reference)
    labels = sorted(set(window) | set(reference))
    share = ", ".join(
        f"{label} {window.count(label) / len(window):.0%} vs {reference.count(label) / len(reference):.0%}"
        for label in labels
    )
    detail = f"{share} (window vs reference)"
    if len(labels) < 2:
        return decide(result, 0.0, 1.0, f"every prediction is {labels[0]} in both")
    table = [[window.count(label) for label in labels], [reference.count(label) for label in labels]]
    test = chi2_contingency(table)
    return decide(result, test.statistic, test.pvalue, detail)


# ----------------------------------------------------------------------------------- the check


def new_results(alpha: float) -> dict[str, TestResult]:
    """Every test, not run yet: a test that cannot run still appears in the report."""
    return {
        "text_length": TestResult("text_length", "feature", "two-sample KS on characters per sentence", alpha),
        "word_count": TestResult("word_count", "feature", "two-sample KS on words per sentence", alpha),
        "oov_rate": TestResult("oov_rate", "feature", "Mann-Whitney U (one-sided) on the share of unseen words", alpha),
        "domain_classifier": TestResult(
            "domain_classifier", "feature", "held-out AUC of a training-vs-production classifier; Mann-Whitney U", alpha
        ),
        "predicted_label": TestResult("predicted_label", "label", "chi-square on predicted label counts", alpha),
        "score": TestResult("score", "label", "two-sample KS on the winning probability", alpha),
    }


def check_drift(events: list[PredictionEvent], reference: Reference, config: MonitoringConfig) -> DriftReport:
    """Run every test on the window `events` against `reference`; see the module docstring."""
    minimum = config.drift.min_window
    if len(events) < minimum:
        raise CourseError(
            f"the window has {len(events)} events, fewer than drift.min_window={minimum} (monitoring/monitoring.yaml): "
            "wait for more traffic, widen the window (--last, --since), or lower min_window"
        )
    results = new_results(config.drift.alpha)
    ks_test(results["text_length"], [e.text_length for e in events], reference.text_lengths(), "characters")
    ks_test(results["word_count"], [e.word_count for e in events], reference.word_counts(), "words")

    texts = [e.text for e in events if e.text is not None]
    text_tests = (results["oov_rate"], results["domain_classifier"])
    if not texts:
        for result in text_tests:
            result.detail = f"not run: {NO_TEXT}"
    elif len(texts) < minimum:
        for result in text_tests:
            result.detail = (
                f"not run: only {len(texts)} of {len(events)} events carry text, fewer than "
                f"min_window={minimum} (set LOG_TEXT=true)"
            )
    else:
        oov_test(results["oov_rate"], texts, reference)
        domain_classifier_test(results["domain_classifier"], texts, reference, config.domain_classifier)
        if len(texts) < len(events):
            for result in text_tests:
                result.detail += f"; on the {len(texts)} of {len(events)} events that carry text"

    versions = sorted({e.model_version for e in events})
    if versions != [reference.model_version]:
        for result in (results["predicted_label"], results["score"]):
            result.detail = (
                f"not run: the window has predictions of model {', '.join(versions)}, the reference is of "
                f"{reference.model_version}: rebuild it with `python -m monitoring.drift reference`, "
                "or narrow the window"
            )
    else:
        label_test(results["predicted_label"], [e.label for e in events], reference.predicted_labels)
        ks_test(results["score"], [e.score for e in events], reference.scores, "")  # a probability: no unit

    return DriftReport(
        window_size=len(events),
        window_start=events[0].timestamp,
        window_end=events[-1].timestamp,
        reference_size=len(reference.predicted_labels),
        model_version=", ".join(versions),
        alpha=config.drift.alpha,
        results=list(results.values()),
    )


def format_report(report: DriftReport) -> str:
    """The report as a plain-text table and a one-line verdict."""
    lines = [
        f"window: {report.window_size} events from {report.window_start} to {report.window_end} "
        f"(model {report.model_version}); alpha {report.alpha} per test",
        f"{'test':<18} {'kind':<8} {'statistic':>10} {'p-value':>10} {'threshold':>10}  verdict",
    ]
    for r in report.results:
        if r.status == "not run":
            lines.append(f"{r.name:<18} {r.kind:<8} {'-':>10} {'-':>10} {'-':>10}  {r.detail}")
        else:
            verdict = "DRIFT" if r.drifted else "ok"
            lines.append(
                f"{r.name:<18} {r.kind:<8} {r.statistic:>10.4g} {r.p_value:>10.3g} {'p < ' + str(r.threshold):>10}"
                f"  {verdict:<5}  {r.detail}"
            )
    not_run = sum(r.status == "not run" for r in report.results)
    ran = len(report.results) - not_run
    drifted = sum(bool(r.drifted) for r in report.results)
    skipped = f"; {not_run} not run" if not_run else ""
    if report.drifted:
        lines.append(f"overall: DRIFT ({drifted} of {ran} tests that ran{skipped})")
    else:
        lines.append(f"overall: no drift ({ran} tests ran{skipped})")
    return "\n".join(lines)


def run_check(
    events_path: Path,
    reference_path: Path | None = None,
    config: MonitoringConfig | None = None,
    last: int | None = None,
    since: str | None = None,
) -> DriftReport:
    """Read the events file, select the window, and check it against the reference."""
    config = config or load_config()
    events = select_window(list(read_events(events_path)), last=last, since=since)
    reference = load_reference(Path(reference_path or config.reference_path()))
    return check_drift(events, reference, config)


# ----------------------------------------------------------------------------------- CLI


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=CONFIG_PATH, help="default: monitoring/monitoring.yaml")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("reference", help="build the reference from the training data and the model")
    build.add_argument(
        "--export-dir", type=Path, default=WEEK_DIR / "artifacts" / "onnx", help="default: artifacts/onnx"
    )
    build.add_argument("--data-dir", type=Path, default=OFFLINE_DATA_DIR, help="default: data")
    build.add_argument("--out", type=Path, help="default: reference.path in monitoring/monitoring.yaml")
    check = commands.add_parser("check", help="test a window of events for drift")
    check.add_argument("--events", type=Path, required=True, help="a JSON-lines events file (EVENTS_FILE)")
    check.add_argument("--reference", type=Path, help="default: reference.path in monitoring/monitoring.yaml")
    check.add_argument("--last", type=int, help="only the last N events")
    check.add_argument("--since", help="only events at or after this time, e.g. 2026-11-23T15:00:00Z")
    check.add_argument("--json", type=Path, help="also write the report as JSON to this file")
    check.add_argument("--fail-on-drift", action="store_true", help=f"exit {FAIL_ON_DRIFT_EXIT} when drift is found")
    args = parser.parse_args()
    config = load_config(args.config)

    if args.command == "reference":
        reference = build_reference(args.export_dir, args.data_dir)
        path = save_reference(reference, args.out or config.reference_path())
        print(
            f"{path}: model {reference.model_version}, {len(reference.vocabulary)} words, "
            f"{len(reference.texts)} reference sentences and the model's predictions on them"
        )
        return

    report = run_check(args.events, args.reference, config, args.last, args.since)
    print(format_report(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    if args.fail_on_drift and report.drifted:
        sys.exit(FAIL_ON_DRIFT_EXIT)


if __name__ == "__main__":
    run_cli(main)
