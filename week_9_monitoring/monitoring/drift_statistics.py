"""The statistical tests of the drift check, one per question, each returning a TestResult.

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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
from scipy.stats import chi2_contingency, ks_2samp, mannwhitneyu
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from errors import CourseError
from monitoring.drift_reference import DomainClassifierSettings, Reference, oov_rate

NO_TEXT = "events carry no text (set LOG_TEXT=true)"


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
