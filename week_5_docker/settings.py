"""The service's settings, read from environment variables (12-factor style, as a container expects).

MODEL_DIR      folder of the ONNX export (model.onnx, tokenizer.json, model_config.json);
               default: artifacts/onnx, where convert_model_to_onnx.py writes
MODEL_VARIANT  fp32 (default) or int8
ORT_THREADS    ONNX Runtime intra-op threads; default: ONNX Runtime's choice (one per core)
BATCH_MAX_SIZE     POST /predict/dynamic: the most sentences in one model call; default 32
BATCH_MAX_WAIT_MS  POST /predict/dynamic: how long the first sentence of a batch may wait for more
                   (milliseconds, may be fractional); default 0: take what is queued, never wait
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from errors import CourseError
from inference_onnx import EXPORT_DIR, MODEL_FILES
from schemas import MAX_BATCH_ITEMS


@dataclass(frozen=True)
class Settings:
    model_dir: Path
    variant: str
    threads: int | None
    batch_max_size: int = 32
    batch_max_wait_ms: float = 0.0


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
    return Settings(model_dir=model_dir, variant=variant, threads=threads, **read_batching(environ))


def read_batching(environ: dict[str, str] | os._Environ) -> dict:
    """BATCH_MAX_SIZE and BATCH_MAX_WAIT_MS (see the module's docstring), checked."""
    size_text = environ.get("BATCH_MAX_SIZE") or "32"
    if not size_text.isdigit() or not 1 <= int(size_text) <= MAX_BATCH_ITEMS:
        raise CourseError(
            f"BATCH_MAX_SIZE={size_text!r} is not a whole number from 1 to {MAX_BATCH_ITEMS}: "
            "set it to e.g. 32, or unset it"
        )
    wait_text = environ.get("BATCH_MAX_WAIT_MS") or "0"
    try:
        wait_ms = float(wait_text)
    except ValueError:
        wait_ms = -1.0
    if not 0 <= wait_ms <= 1000:  # also False for nan
        raise CourseError(
            f"BATCH_MAX_WAIT_MS={wait_text!r} is not a number of milliseconds from 0 to 1000: "
            "set it to e.g. 2, or unset it"
        )
    return {"batch_max_size": int(size_text), "batch_max_wait_ms": wait_ms}
