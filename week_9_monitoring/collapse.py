"""Did the model learn anything? The majority-class baseline, and a loud warning when it did not.

A model that answers the same class for every sentence scores the share of that class as its
accuracy (0.69 on CoLA's validation split, which is 69% "acceptable") and an MCC of about 0.
BERT-Tiny fine-tuned on real CoLA is published with exactly that: MCC 0.0 (GLUE test set).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

MIN_MCC = 0.05  # at or below this the predictions carry (almost) no information about the labels
RULE = "=" * 78


def majority_baseline(labels: Sequence[int]) -> tuple[int | None, float]:
    """The most common label (None on a tie) and its share: the accuracy of always answering it."""
    counts = Counter(int(label) for label in labels).most_common()
    if not counts:
        return None, 0.0
    top = counts[0][1]
    tied = len(counts) > 1 and counts[1][1] == top
    return (None if tied else counts[0][0]), top / len(labels)


def collapse_warning(
    labels: Sequence[int],
    accuracy: float,
    mcc: float,
    preds: Sequence[int] | None = None,
    names: Sequence[str] = ("unacceptable", "acceptable"),
    tries: Sequence[str] = (),
) -> str | None:
    """A multi-line warning when the model predicts one class or its MCC is <= MIN_MCC; else None.

    `preds`, when known, tells a model that answers one class for everything apart from a weak one.
    `tries` are what to change next, in the caller's own words (its flags or config keys).
    """
    one_class = preds is not None and len(preds) > 0 and len({int(p) for p in preds}) == 1
    if not one_class and mcc > MIN_MCC:
        return None
    majority, share = majority_baseline(labels)
    answer = "either class" if majority is None else f'"{names[majority]}"'
    if one_class:
        what = f'it predicts "{names[int(preds[0])]}" for every sentence (MCC {mcc:.3f})'
    else:
        what = f"its MCC is {mcc:.3f} <= {MIN_MCC} (a model that answers one class for everything scores about 0)"
    lines = [
        RULE,
        "WARNING: the model has learned (almost) nothing:",
        f"  {what}.",
        f"  Majority-class baseline: always answering {answer} scores accuracy {share:.3f}",
        f"  on this validation set; this model scores {accuracy:.3f}. Judge it by MCC, not accuracy.",
    ]
    if tries:
        lines += ["  Try:", *(f"  - {step}" for step in tries)]
    return "\n".join([*lines, RULE])
