"""The `evaluate` stage of the DVC pipeline: score a checkpoint on a validation CSV.

    python evaluate.py --checkpoint artifacts/checkpoints/best.ckpt \
        --data artifacts/prepared/validation.csv --out metrics.json

metrics.json is what `dvc metrics show` and `dvc metrics diff` read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torchmetrics.functional.classification import binary_accuracy, binary_f1_score, binary_matthews_corrcoef

from errors import run_cli
from inference import ColaPredictor
from prepare_data import read_rows


def evaluate(checkpoint: Path, data: Path, batch_size: int = 128) -> dict[str, float]:
    """Accuracy, F1 and MCC of the checkpoint's predictions on the sentences in `data`."""
    rows = read_rows(data)
    predictor = ColaPredictor(checkpoint)
    predicted: list[int] = []
    for start in range(0, len(rows), batch_size):
        batch = [row["sentence"] for row in rows[start : start + batch_size]]
        predicted += [predictor.labels.index(result["label"]) for result in predictor.predict_batch(batch)]
    preds = torch.tensor(predicted)
    labels = torch.tensor([int(row["label"]) for row in rows])
    return {
        "accuracy": round(float(binary_accuracy(preds, labels)), 4),
        "f1": round(float(binary_f1_score(preds, labels)), 4),
        "mcc": round(float(binary_matthews_corrcoef(preds, labels)), 4),
        "n_validation": len(rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("metrics.json"))
    args = parser.parse_args()
    metrics = evaluate(args.checkpoint, args.data)
    args.out.write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"{args.out}: " + ", ".join(f"{name}={value}" for name, value in metrics.items()))


if __name__ == "__main__":
    run_cli(main)
