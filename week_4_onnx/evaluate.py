"""The `evaluate` stage of the DVC pipeline: score a checkpoint on a validation CSV.

    python evaluate.py --checkpoint artifacts/checkpoints/best.ckpt \
        --data artifacts/prepared/validation.csv --out metrics.json

metrics.json is what `dvc metrics show` and `dvc metrics diff` read. Beside accuracy it holds
majority_accuracy, what always answering the most common label scores on the same data; a
model that predicts one class, or whose MCC is <= 0.05, is flagged with a loud warning.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torchmetrics.functional.classification import binary_accuracy, binary_f1_score, binary_matthews_corrcoef

from collapse import collapse_warning, majority_baseline
from errors import CourseError, run_cli
from inference import ColaPredictor
from prepare_data import read_rows

TRIES = [
    "a smaller learning rate (train.lr in params.yaml), then `dvc repro`",
    "more epochs (train.max_epochs in params.yaml)",
    "a base model that learns CoLA: python train.py data.source=hub model=electra_small (CoLA dev MCC 57.0 published)",
]


def read_labels(rows: list[dict], data: Path) -> list[int]:
    """The 0/1 labels of `rows`; unlabelled rows (-1, as in CoLA's test split) cannot be scored."""
    labels = [row["label"].strip() for row in rows]
    if not labels:
        raise CourseError(f"{data} has no rows: evaluate on a labelled split such as validation.csv")
    wrong = sorted(set(labels) - {"0", "1"})
    if wrong:
        unlabelled = " (-1 marks an unlabelled row, as in CoLA's test split)" if "-1" in wrong else ""
        raise CourseError(
            f"{data} has labels {', '.join(wrong)}, not only 0 and 1{unlabelled}: "
            "evaluate on a labelled split such as validation.csv"
        )
    return [int(label) for label in labels]


def predict(checkpoint: Path, sentences: list[str], batch_size: int) -> tuple[list[int], list[str]]:
    """The checkpoint's predicted label index for each sentence, and the label names."""
    predictor = ColaPredictor(checkpoint)
    predicted: list[int] = []
    for start in range(0, len(sentences), batch_size):
        batch = sentences[start : start + batch_size]
        predicted += [predictor.labels.index(result["label"]) for result in predictor.predict_batch(batch)]
    return predicted, list(predictor.labels)


def evaluate(checkpoint: Path, data: Path, batch_size: int = 128) -> tuple[dict[str, float], str | None]:
    """Accuracy (beside the majority-class baseline), F1 and MCC on `data`; and a collapse warning or None."""
    rows = read_rows(data)
    labels = read_labels(rows, data)  # before loading the model: a wrong file fails fast
    predicted, names = predict(checkpoint, [row["sentence"] for row in rows], batch_size)
    preds, targets = torch.tensor(predicted), torch.tensor(labels)
    metrics = {
        "accuracy": round(float(binary_accuracy(preds, targets)), 4),
        "majority_accuracy": round(majority_baseline(labels)[1], 4),
        "f1": round(float(binary_f1_score(preds, targets)), 4),
        "mcc": round(float(binary_matthews_corrcoef(preds, targets)), 4),
        "n_validation": len(rows),
    }
    warning = collapse_warning(labels, metrics["accuracy"], metrics["mcc"], predicted, names, TRIES)
    return metrics, warning


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("metrics.json"))
    args = parser.parse_args()
    metrics, warning = evaluate(args.checkpoint, args.data)
    args.out.write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"{args.out}: " + ", ".join(f"{name}={value}" for name, value in metrics.items()))
    if warning:
        print(warning)


if __name__ == "__main__":
    run_cli(main)
