"""The service's settings, read from environment variables (12-factor style, as a container expects).

MODEL_DIR      folder of the ONNX export (model.onnx, tokenizer.json, model_config.json);
               default: artifacts/onnx, where convert_model_to_onnx.py writes
MODEL_VARIANT  fp32 (default) or int8
ORT_THREADS    ONNX Runtime intra-op threads; default: ONNX Runtime's choice (one per core)
BATCH_MAX_SIZE     POST /predict/dynamic: the most sentences in one model call; default 32
BATCH_MAX_WAIT_MS  POST /predict/dynamic: how long the first sentence of a batch may wait for more
                   (milliseconds, may be fractional); default 0: take what is queued, never wait
LOG_TEXT       true: prediction events carry the sentence; false (default): only its hash and length
EVENTS_FILE    also append prediction events (JSON lines) to this file; default: stdout only

A MODEL_DIR fetched from the model registry (`python -m monitoring.registry fetch`) also holds
registered_model.json: which registered model and version it is; /ready reports it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from errors import CourseError
from inference_onnx import EXPORT_DIR, MODEL_FILES
from schemas import MAX_BATCH_ITEMS

REGISTERED_RECORD = "registered_model.json"  # written by monitoring/registry.py beside the files it fetched
BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True)
class Settings:
    model_dir: Path
    variant: str
    threads: int | None
    batch_max_size: int = 32
    batch_max_wait_ms: float = 0.0
    log_text: bool = False
    events_file: Path | None = None


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
    log_text_value = (environ.get("LOG_TEXT") or "false").strip().lower()
    if log_text_value not in BOOLEANS:
        raise CourseError(f"LOG_TEXT={environ.get('LOG_TEXT')!r} is not true or false: set LOG_TEXT=true or unset it")
    events_file = Path(environ["EVENTS_FILE"]) if environ.get("EVENTS_FILE") else None
    return Settings(
        model_dir=model_dir,
        variant=variant,
        threads=threads,
        log_text=BOOLEANS[log_text_value],
        events_file=events_file,
        **read_batching(environ),
    )


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


def read_registered(model_dir: Path) -> dict | None:
    """{"name", "version"} of the registered model MODEL_DIR is a copy of; None without a readable record."""
    try:
        record = json.loads((Path(model_dir) / REGISTERED_RECORD).read_text(encoding="utf-8"))
        return {"name": str(record["name"]), "version": int(record["version"])}
    except (OSError, ValueError, TypeError, KeyError):
        return None
