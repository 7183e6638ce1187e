"""Cold start and warm invocations of the Lambda handler, measured here (no AWS needed).

    python -m bench.bench_lambda  # needs artifacts/onnx/ (convert_model_to_onnx.py)

Cold start: a fresh Python process that imports lambda_handler (which loads the model, as
Lambda's init phase does) and answers the first event; measured from starting the process to
the answer, several times. Warm: the same process answering more events, one after another.
Lambda itself adds its own start-up of the execution environment (fetching the image, starting
the runtime) on top of the cold figure; this measures the part your code controls.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from errors import CourseError, run_cli
from inference_onnx import EXPORT_DIR
from source import WEEK_DIR

EVENT = WEEK_DIR / "tests" / "fixtures" / "events" / "http_v2.json"
TARGET_COLD_S = 1.5

# Runs in the fresh process: import (= init: the model loads), answer one event, then warm ones.
CHILD = """
import json, sys, time
started = float(sys.argv[1]); warm_calls = int(sys.argv[2])
event = json.load(open(sys.argv[3]))
import lambda_handler
first = lambda_handler.handler(event, None)
cold = time.time() - started
assert first["statusCode"] == 200, first
warm = []
for _ in range(warm_calls):
    began = time.perf_counter()
    lambda_handler.handler(event, None)
    warm.append(time.perf_counter() - began)
print(json.dumps({"cold_s": cold, "warm_s": warm}))
"""


def one_cold_start(export_dir: Path, warm_calls: int) -> dict:
    """Start a fresh interpreter; (wall time to its first answer, its warm call times)."""
    environment = {**os.environ, "MODEL_DIR": str(export_dir)}
    started = time.time()  # wall clock: shared by parent and child
    result = subprocess.run(
        [sys.executable, "-c", CHILD, repr(started), str(warm_calls), str(EVENT)],
        cwd=WEEK_DIR, env=environment, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if result.returncode != 0:
        raise CourseError(f"the handler failed in a fresh process: {result.stderr.strip().splitlines()[-1]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--export-dir", type=Path, default=EXPORT_DIR, help="default: artifacts/onnx")
    parser.add_argument("--starts", type=int, default=10, help="cold starts to measure (default 10)")
    parser.add_argument("--warm", type=int, default=500, help="warm calls in each process (default 500)")
    args = parser.parse_args()
    if args.starts < 1 or args.warm < 1:
        raise CourseError("--starts and --warm must be at least 1")
    if not (args.export_dir / "model.onnx").is_file():
        raise CourseError(
            f"no model at {args.export_dir}: make one with `dvc repro` (trains, then exports; a few minutes)"
        )
    runs = [one_cold_start(args.export_dir, args.warm) for _ in tqdm(range(args.starts), desc="cold starts")]
    cold = np.array([run["cold_s"] for run in runs])
    warm_ms = np.array([t for run in runs for t in run["warm_s"]]) * 1000
    verdict = "met" if np.median(cold) <= TARGET_COLD_S else "NOT met"
    print(
        f"cold start (new process -> first answer), {args.starts} runs: "
        f"p50 {np.median(cold):.2f} s, max {cold.max():.2f} s  (target ≤ {TARGET_COLD_S} s: {verdict})"
    )
    print(
        f"warm invocation, {warm_ms.size} calls: p50 {np.percentile(warm_ms, 50):.2f} ms, "
        f"p99 {np.percentile(warm_ms, 99):.2f} ms"
    )


if __name__ == "__main__":
    run_cli(main)
