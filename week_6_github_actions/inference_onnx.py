"""Classify sentences with the exported ONNX model: ONNX Runtime and `tokenizers`, no PyTorch.

    python inference_onnx.py "The boy is sitting on a bench." "Boy the bench on sitting is."
    python inference_onnx.py --variant int8 "The dog sleeps."

Everything this module imports is small (numpy, onnxruntime, tokenizers): a serving image built
on it needs neither torch nor lightning, which is the point of exporting to ONNX.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidGraph, InvalidProtobuf
from tokenizers import Tokenizer

from errors import CourseError, run_cli
from source import WEEK_DIR

EXPORT_DIR = WEEK_DIR / "artifacts" / "onnx"  # where convert_model_to_onnx.py writes by default
CONFIG_NAME = "model_config.json"
TOKENIZER_NAME = "tokenizer.json"
MODEL_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "logits"
# What onnxruntime raises for a truncated, corrupt or incompatible file; none is a RuntimeError.
LOAD_ERRORS = (Fail, InvalidGraph, InvalidProtobuf)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax; subtracting the row maximum keeps exp() from overflowing."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def make_session(model_path: Path, threads: int | None = None) -> ort.InferenceSession:
    """A CPU session with all graph optimizations; `threads` fixes the intra-op thread count."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1  # one sequential graph: a second pool would only compete for cores
    try:
        # Named explicitly: a GPU build of onnxruntime refuses to guess (ValueError since 1.9), and
        # the benchmark must know it measures the CPU.
        return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    except LOAD_ERRORS as error:
        raise CourseError(
            f"cannot load {model_path} ({type(error).__name__}): re-create it with `python convert_model_to_onnx.py`"
        ) from error


def read_export_config(export_dir: Path) -> dict:
    """The model_config.json the converter wrote: labels, max_length, pad token, opset, source."""
    path = export_dir / CONFIG_NAME
    if not export_dir.is_dir() or not path.is_file():
        raise CourseError(
            f"no ONNX export at {export_dir}: make one with `dvc repro` (trains, then exports; a few minutes), "
            "or `python convert_model_to_onnx.py` if you have trained already, or pass --export-dir PATH"
        )
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CourseError(f"{path} is not valid JSON ({error}): re-run `python convert_model_to_onnx.py`") from error


class ColaOnnxPredictor:
    """Loads an ONNX export once, then classifies sentences like week 1's ColaPredictor."""

    def __init__(self, export_dir: Path | str | None = None, variant: str = "fp32", threads: int | None = None) -> None:
        if variant not in MODEL_FILES:
            raise CourseError(f"unknown variant {variant!r}: use one of {', '.join(MODEL_FILES)}")
        self.export_dir = Path(export_dir or EXPORT_DIR)
        self.config = read_export_config(self.export_dir)
        self.labels: list[str] = list(self.config["labels"])
        self.max_length: int = int(self.config["max_length"])
        model_path = self.export_dir / MODEL_FILES[variant]
        if not model_path.is_file():
            raise CourseError(
                f"{model_path} is missing: re-run `python convert_model_to_onnx.py --out-dir {self.export_dir}`"
            )
        self.variant = variant
        self.session = make_session(model_path, threads)
        self.tokenizer = Tokenizer.from_file(str(self.export_dir / TOKENIZER_NAME))
        # tokenizer.json may carry the padding/truncation of whoever saved it last: set them explicitly.
        # Truncate as training did; padding happens in encode(), so its width is chosen per call.
        self.tokenizer.enable_truncation(max_length=self.max_length)
        self.tokenizer.no_padding()
        self.pad_id = int(self.config["pad_id"])

    def encode(self, sentences: list[str], pad_to_max_length: bool = False) -> dict[str, np.ndarray]:
        """int64 input_ids and attention_mask of shape (batch, width).

        width is the longest sentence in the batch (as week 1's predictor pads: the dynamic
        sequence axis makes shorter inputs cheaper), or max_length when `pad_to_max_length`.
        """
        if not sentences:
            raise CourseError("no sentences given: pass at least one sentence to classify")
        for sentence in sentences:
            if not sentence or not sentence.strip():
                raise CourseError("the sentence is empty: give some text to classify")
        encodings = self.tokenizer.encode_batch(sentences)
        width = self.max_length if pad_to_max_length else max(len(e.ids) for e in encodings)
        input_ids = np.full((len(encodings), width), self.pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            input_ids[row, : len(encoding.ids)] = encoding.ids
            attention_mask[row, : len(encoding.ids)] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def logits(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Raw (batch, n_labels) logits for already-encoded inputs."""
        return self.session.run([OUTPUT_NAME], {name: inputs[name] for name in INPUT_NAMES})[0]

    def predict_batch(self, sentences: list[str]) -> list[dict]:
        """One result per sentence: label, score and every class probability."""
        probabilities = softmax(self.logits(self.encode(sentences)))
        results = []
        for sentence, probs in zip(sentences, probabilities.tolist(), strict=True):
            best = int(np.argmax(probs))
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
    parser.add_argument("--export-dir", type=Path, default=EXPORT_DIR, help="default: artifacts/onnx")
    parser.add_argument("--variant", choices=sorted(MODEL_FILES), default="fp32", help="default: fp32")
    args = parser.parse_args()
    predictor = ColaOnnxPredictor(args.export_dir, args.variant)
    for result in predictor.predict_batch(args.sentences):
        probs = "  ".join(f"{label}={p:.3f}" for label, p in result["probabilities"].items())
        print(f"{result['label']:>12} ({result['score']:.3f})  [{probs}]  {result['sentence']}")


if __name__ == "__main__":
    run_cli(main)
