"""The promotion gate's behaviour tests of a candidate model, in the spirit of CheckList (Ribeiro et al. 2020).

MCC on the validation set says how often the model is right; these tests say whether it is right
for the right reason, on cases made to isolate one capability. Every case comes from a template
of monitoring/gate.yaml: a minimal pair, an acceptable sentence and the same sentence with one
agreement error ("Anna helps the dog." / "Anna help the dog."), its slots filled from the
vocabulary with a fixed seed. Four kinds of test, each with its own pass-rate threshold:

  mft_acceptable     minimum functionality: the acceptable sentence is predicted acceptable
  mft_unacceptable   minimum functionality: the sentence with the error is predicted unacceptable
  invariance         the pair's sentences with another name (or, without a name, another noun of
                     the same number) get the same predicted label as before
  directional        the error lowers P(acceptable): P(error) < P(correct) - min_drop

A model that always answers one class passes one MFT and fails the other completely; one that
learnt nothing about agreement fails the directional test about half the time.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from errors import CourseError
from inference_onnx import ColaOnnxPredictor

KINDS = ("mft_acceptable", "mft_unacceptable", "invariance", "directional")
DESCRIPTIONS = {
    "mft_acceptable": "simple correct sentences are predicted acceptable",
    "mft_unacceptable": "clear agreement errors are predicted unacceptable",
    "invariance": "another name, or another noun of the same number, keeps the predicted label",
    "directional": "introducing an agreement error lowers P(acceptable)",
}
SLOT = re.compile(r"\{([a-z_]+)(?:\.([a-z0-9]+))?\}")
NOUN_FORMS = ("sg", "pl")
VERB_FORMS = ("base", "3sg", "past", "pp", "ing")
SHOWN_FAILURES = 25  # a report lists at most this many failing cases per kind
ACCEPTABLE = "acceptable"


@dataclass
class BehaviourConfig:
    min_pass_rate: dict[str, float]
    min_drop: float
    seed: int
    fillings: int
    vocabulary: dict[str, list[str]]
    templates: list[list[str]]


@dataclass
class Pair:
    """One filled template: the acceptable sentence and the one with the error; `swapped` is its invariance twin."""

    template: int
    correct: str
    error: str
    swapped: tuple[str, str] | None = None  # (correct, error) with one name or noun replaced


@dataclass
class BehaviourCheck:
    kind: str
    description: str
    cases: int
    threshold: float
    failures: list[dict] = field(default_factory=list)
    failed_cases: int = 0

    @property
    def pass_rate(self) -> float:
        return (self.cases - self.failed_cases) / self.cases if self.cases else 0.0

    @property
    def passed(self) -> bool:
        return self.cases > 0 and self.pass_rate >= self.threshold

    def as_dict(self) -> dict:
        return {**vars(self), "pass_rate": round(self.pass_rate, 4), "passed": self.passed}


@dataclass
class BehaviourReport:
    model: str  # the export folder's model_version
    checks: list[BehaviourCheck]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def failed(self) -> list[str]:
        return [check.kind for check in self.checks if not check.passed]

    def as_dict(self) -> dict:
        return {"model": self.model, "passed": self.passed, "checks": [check.as_dict() for check in self.checks]}


def word_form(category: str, entry: str, form: str | None) -> str:
    """The form `form` of one vocabulary entry: "dog/dogs" + "pl" -> "dogs"; a plain word has no forms."""
    if "/" in entry:
        forms = dict(zip(NOUN_FORMS, entry.split("/"), strict=True))
    elif " " in entry:
        forms = dict(zip(VERB_FORMS, entry.split(), strict=True))
    else:
        forms = {None: entry}
    if form not in forms:
        raise CourseError(
            f"monitoring/gate.yaml: {{{category}.{form}}} names a form that {entry!r} does not have "
            f"(it has {', '.join(str(name) for name in forms)}): fix the template or the vocabulary"
        )
    return forms[form]


def fill(template: str, words: dict[str, str]) -> str:
    """The template with each {category.form} replaced by the form of the word drawn for its category."""
    text = SLOT.sub(lambda match: word_form(match[1], words[match[1]], match[2]), template)
    return text[0].upper() + text[1:]


def swap_target(categories: list[str]) -> str | None:
    """The slot an invariance case changes: a name when there is one, else the first noun category."""
    if "name" in categories:
        return "name"
    return next((name for name in categories if name in ("person", "animal", "thing")), None)


def build_pairs(config: BehaviourConfig) -> list[Pair]:
    """`fillings` pairs per template, drawn with `seed`, each with its invariance twin."""
    rng = random.Random(config.seed)
    pairs = []
    for number, (correct, error) in enumerate(config.templates):
        categories = list(dict.fromkeys(match[1] for match in SLOT.finditer(correct + error)))
        unknown = [name for name in categories if name not in config.vocabulary]
        if unknown:
            raise CourseError(
                f"monitoring/gate.yaml: template {number + 1} uses {', '.join(unknown)}, which the vocabulary "
                f"does not define (it has {', '.join(config.vocabulary)}): add them or fix the template"
            )
        target = swap_target(categories)
        for _ in range(config.fillings):
            words = {name: rng.choice(config.vocabulary[name]) for name in categories}
            pair = Pair(number + 1, fill(correct, words), fill(error, words))
            others = [entry for entry in config.vocabulary.get(target, []) if entry != words.get(target)]
            if target and others:
                twin = {**words, target: rng.choice(others)}
                pair.swapped = (fill(correct, twin), fill(error, twin))
            pairs.append(pair)
    return pairs


def run_checks(pairs: list[Pair], p_acceptable: dict[str, float], config: BehaviourConfig) -> list[BehaviourCheck]:
    """The four kinds of test on the model's P(acceptable) of every sentence."""
    checks = {kind: BehaviourCheck(kind, DESCRIPTIONS[kind], 0, float(config.min_pass_rate[kind])) for kind in KINDS}

    def record(kind: str, ok: bool, case: dict) -> None:
        check = checks[kind]
        check.cases += 1
        if not ok:
            check.failed_cases += 1
            if len(check.failures) < SHOWN_FAILURES:
                check.failures.append(case)

    for pair in pairs:
        good, bad = p_acceptable[pair.correct], p_acceptable[pair.error]
        template = pair.template
        case = {"template": template, "sentence": pair.correct, "expected": "acceptable", "p_acceptable": good}
        record("mft_acceptable", good >= 0.5, case)
        case = {"template": template, "sentence": pair.error, "expected": "unacceptable", "p_acceptable": bad}
        record("mft_unacceptable", bad < 0.5, case)
        record(
            "directional",
            bad < good - config.min_drop,
            {"template": template, "correct": pair.correct, "error": pair.error, "p_correct": good, "p_error": bad},
        )
        for original, changed in zip((pair.correct, pair.error), pair.swapped or (), strict=False):
            before, after = p_acceptable[original], p_acceptable[changed]
            same = (before >= 0.5) == (after >= 0.5)
            record(
                "invariance",
                same,
                {"template": template, "sentence": original, "changed": changed, "p_before": before, "p_after": after},
            )
    return list(checks.values())


def p_acceptable_of(predictor: ColaOnnxPredictor, sentences: list[str], batch: int = 64) -> dict[str, float]:
    """P(acceptable) of each sentence, from the exported model."""
    unique = list(dict.fromkeys(sentences))
    scores: dict[str, float] = {}
    for start in range(0, len(unique), batch):
        for result in predictor.predict_batch(unique[start : start + batch]):
            scores[result["sentence"]] = round(float(result["probabilities"][ACCEPTABLE]), 4)
    return scores


def check_model(export_dir: Path, config: BehaviourConfig) -> BehaviourReport:
    """Run every behaviour test against the ONNX export in `export_dir`."""
    predictor = ColaOnnxPredictor(export_dir)
    if ACCEPTABLE not in predictor.labels:
        raise CourseError(f"{export_dir}: the model's labels are {predictor.labels}, with no {ACCEPTABLE!r}")
    pairs = build_pairs(config)
    sentences = [s for pair in pairs for s in (pair.correct, pair.error, *(pair.swapped or ()))]
    checks = run_checks(pairs, p_acceptable_of(predictor, sentences), config)
    return BehaviourReport(str(predictor.config.get("model_version") or export_dir), checks)


def summary_lines(report: BehaviourReport, shown: int = 5) -> list[str]:
    """One line per kind of test, then its first `shown` failing cases."""
    lines = [f"behaviour tests of {report.model}:"]
    for check in report.checks:
        verdict = "pass" if check.passed else "FAIL"
        lines.append(
            f"  {check.kind:<17} {verdict:<5} {check.pass_rate:6.1%} of {check.cases} cases "
            f"(needs {check.threshold:.0%}): {check.description}"
        )
        for case in check.failures[: shown if not check.passed else 0]:
            lines.append("      " + describe_case(check.kind, case))
    return lines


def describe_case(kind: str, case: dict) -> str:
    """One failing case on one line."""
    if kind == "directional":
        return f"{case['correct']!r} {case['p_correct']:.2f} -> {case['error']!r} {case['p_error']:.2f}"
    if kind == "invariance":
        return f"{case['sentence']!r} {case['p_before']:.2f} -> {case['changed']!r} {case['p_after']:.2f}"
    return f"{case['sentence']!r}: P(acceptable) {case['p_acceptable']:.2f}, expected {case['expected']}"
