"""Predict whether sentences are grammatically acceptable, from the trained checkpoint.

    python inference.py "The boy is sitting on a bench." "Boy the bench on sitting is."

The config training saved beside the checkpoint (best.config.yaml) says how to serve it: the
tokenizer of the base model, the max_length sentences were cut to, and the names of the labels.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from transformers.utils import logging as transformers_logging

from config import base_model, load_saved_config, saved_config_path
from errors import CourseError, run_cli
from model import ColaModel
from source import load_tokenizer
from train import checkpoint_path


class ColaPredictor:
    """Loads a checkpoint once, then classifies sentences."""

    def __init__(self, checkpoint: Path | None = None) -> None:
        checkpoint = Path(checkpoint or checkpoint_path())
        if not checkpoint.is_file():
            raise CourseError(
                f"no trained model at {checkpoint}: run `python train.py` first, "
                "or pass --checkpoint PATH"
            )
        # Building the module loads the base model first, and transformers reports its fresh
        # classifier head as "newly initialized"; the checkpoint's trained weights replace it
        # right after, so that report would only mislead here.
        transformers_logging.set_verbosity_error()
        config = load_saved_config(checkpoint)
        self.model = ColaModel.load_from_checkpoint(checkpoint, map_location="cpu")
        self.model.eval()
        model_name = base_model(config, config.data.source)
        if model_name != self.model.hparams.model_name:
            raise CourseError(
                f"{saved_config_path(checkpoint)} describes {model_name}, but {checkpoint.name} was trained "
                f"from {self.model.hparams.model_name}: the config belongs to another run; retrain"
            )
        self.tokenizer = load_tokenizer(model_name)
        self.max_length = config.data.max_length  # what training tokenized to
        self.labels = list(config.data.labels)
        if len(self.labels) != self.model.model.config.num_labels:
            raise CourseError(
                f"{saved_config_path(checkpoint)} names {len(self.labels)} labels, but the model has "
                f"{self.model.model.config.num_labels} classes: the config belongs to another run; retrain"
            )

    @torch.no_grad()
    def predict_batch(self, sentences: list[str]) -> list[dict]:
        """One result per sentence: label, score and both class probabilities."""
        for sentence in sentences:
            if not sentence or not sentence.strip():
                raise CourseError("the sentence is empty: give some text to classify")
        encoded = self.tokenizer(
            sentences, truncation=True, padding=True, max_length=self.max_length, return_tensors="pt"
        )
        logits = self.model(encoded["input_ids"], encoded["attention_mask"])
        # Softmax over the class dimension (dim=1), so each row sums to 1.
        probabilities = torch.softmax(logits, dim=1).tolist()
        results = []
        for sentence, probs in zip(sentences, probabilities, strict=True):
            best = max(range(len(self.labels)), key=lambda i: probs[i])
            results.append(
                {
                    "sentence": sentence,
                    "label": self.labels[best],
                    "score": probs[best],
                    "probabilities": dict(zip(self.labels, probs, strict=True)),
                }
            )
        return results

    def predict(self, sentence: str) -> dict:
        """Classify one sentence."""
        return self.predict_batch([sentence])[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("sentences", nargs="+", help="one or more sentences, each in quotes")
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: artifacts/checkpoints/best.ckpt")
    args = parser.parse_args()
    predictor = ColaPredictor(args.checkpoint)
    for result in predictor.predict_batch(args.sentences):
        probs = "  ".join(f"{label}={p:.3f}" for label, p in result["probabilities"].items())
        print(f"{result['label']:>12} ({result['score']:.3f})  [{probs}]  {result['sentence']}")


if __name__ == "__main__":
    run_cli(main)
