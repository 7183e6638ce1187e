"""How a week's trained model judges everyday English: 100 hand-written minimal pairs.

    .venv/bin/python bundle/everyday_eval.py                      # week 0's artifacts/checkpoints/best.ckpt
    .venv/bin/python bundle/everyday_eval.py --week week_4_onnx --checkpoint PATH --out report.json

`bundle/everyday/pairs.tsv` holds 100 pairs written by hand, not by the offline grammar: the same
everyday sentence once correct and once with one CoLA-like error (20 each of agreement, verb
form, word order, a missing word, a doubled word). They use common words and constructions the
grammar may not have, which is the point: they measure whether the embedded model judges
English or only its own grammar.

Two figures, per error kind and overall:
- pair accuracy: the share of pairs where the model gives the correct sentence a higher
  P(acceptable) than the broken one (a ranking; it does not depend on the 0.5 threshold);
- sentence accuracy: the share of the 200 sentences whose predicted label is right.
Also printed: how many of the correct sentences are called unacceptable, the failure a learner
meets first when typing a sentence of their own.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAIRS = Path(__file__).resolve().parent / "everyday" / "pairs.tsv"


@dataclass(frozen=True)
class Pair:
    kind: str
    acceptable: str
    unacceptable: str


def read_pairs(path: Path = PAIRS) -> list[Pair]:
    """The hand-written pairs, in file order."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [Pair(row["kind"], row["acceptable"], row["unacceptable"]) for row in rows]


def score_pairs(pairs: list[Pair], p_acceptable: list[float]) -> dict:
    """Pair and sentence accuracy, overall and per kind, from P(acceptable) of each pair's two sentences.

    `p_acceptable` holds 2 * len(pairs) values: the acceptable sentence then the unacceptable one, per pair.
    """
    if len(p_acceptable) != 2 * len(pairs):
        raise ValueError(f"expected {2 * len(pairs)} probabilities, got {len(p_acceptable)}")
    tallies: dict[str, dict[str, int]] = defaultdict(lambda: {"pairs": 0, "pair_right": 0, "sentence_right": 0})
    rejected_good = 0
    for i, pair in enumerate(pairs):
        good, bad = p_acceptable[2 * i], p_acceptable[2 * i + 1]
        for key in (pair.kind, "all"):
            tally = tallies[key]
            tally["pairs"] += 1
            tally["pair_right"] += int(good > bad)
            tally["sentence_right"] += int(good >= 0.5) + int(bad < 0.5)
        rejected_good += int(good < 0.5)
    report = {
        kind: {
            "pairs": t["pairs"],
            "pair_accuracy": t["pair_right"] / t["pairs"],
            "sentence_accuracy": t["sentence_right"] / (2 * t["pairs"]),
        }
        for kind, t in tallies.items()
    }
    report["all"]["correct_called_unacceptable"] = rejected_good / len(pairs)
    return report


def predict_acceptable(week_dir: Path, checkpoint: Path | None, sentences: list[str]) -> list[float]:
    """P(acceptable) of each sentence from the week's own ColaPredictor (imported from the week folder)."""
    sys.path.insert(0, str(week_dir))
    from inference import ColaPredictor  # the week's module: the learner's exact inference path

    predictor = ColaPredictor(checkpoint)
    results = predictor.predict_batch(sentences)
    return [result["probabilities"]["acceptable"] for result in results]


def format_report(report: dict) -> str:
    """A small Markdown table, a row per error kind and one for all pairs."""
    lines = ["| error kind | pairs | pair accuracy | sentence accuracy |", "|---|---|---|---|"]
    for kind in sorted(k for k in report if k != "all") + ["all"]:
        row = report[kind]
        lines.append(f"| {kind} | {row['pairs']} | {row['pair_accuracy']:.2f} | {row['sentence_accuracy']:.2f} |")
    lines.append(
        f"\ncorrect sentences called unacceptable: {report['all']['correct_called_unacceptable']:.0%} "
        f"of {report['all']['pairs']}"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--week", default="week_0_project_setup", help="the week folder whose model to ask")
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="default: the week's artifacts/checkpoints/best.ckpt"
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the report as JSON here")
    args = parser.parse_args()
    week_dir = (ROOT / args.week).resolve()
    if not (week_dir / "inference.py").is_file():
        parser.error(f"{week_dir} has no inference.py: pass a week folder, e.g. --week week_0_project_setup")
    checkpoint = args.checkpoint or week_dir / "artifacts" / "checkpoints" / "best.ckpt"
    if not checkpoint.is_file():
        parser.error(
            f"no checkpoint at {checkpoint}: run `python train.py` in {week_dir.name} first, or pass --checkpoint"
        )
    pairs = read_pairs()
    sentences = [s for pair in pairs for s in (pair.acceptable, pair.unacceptable)]
    report = score_pairs(pairs, predict_acceptable(week_dir, checkpoint.resolve(), sentences))
    print(format_report(report))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
