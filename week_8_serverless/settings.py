"""The service's settings, read from environment variables (12-factor style, as a container expects).

MODEL_DIR      folder of the ONNX export (model.onnx, tokenizer.json, model_config.json);
               default: artifacts/onnx, where convert_model_to_onnx.py writes
MODEL_VARIANT  fp32 (default) or int8
ORT_THREADS    ONNX Runtime intra-op threads; default: ONNX Runtime's choice (one per core)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from errors import CourseError
from inference_onnx import EXPORT_DIR, MODEL_FILES


@dataclass(frozen=True)
class Settings:
    model_dir: Path
    variant: str
    threads: int | None


def read_settings(environ: dict[str, str] | None = None) -> Settings:
    """Settings from `environ` (default: os.environ); a bad value raises CourseError naming the variable."""
    environ = os.environ if environ is None else environ
    model_dir = Path(environ.get("MODEL_DIR") or EXPORT_DIR)
    variant = environ.get("MODEL_VARIANT") or "fp32"
    if variant not in MODEL_FILES:
        raise CourseError(
            f"MODEL_VARIANT={variant!r} is not a model variant: set it to one of {', '.join(MODEL_FILES)}"
        )
    threads_text = environ.get("ORT_THREADS") or ""
    threads = None
    if threads_text:
        if not threads_text.isdigit() or int(threads_text) < 1:
            raise CourseError(
                f"ORT_THREADS={threads_text!r} is not a positive whole number: set it to e.g. 1, or unset it"
            )
        threads = int(threads_text)
    return Settings(model_dir=model_dir, variant=variant, threads=threads)
