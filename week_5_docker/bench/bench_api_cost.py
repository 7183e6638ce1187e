"""How the served model's cost grows with sentence length and batch size, fp32 and int8, over HTTP.

    python -m bench.bench_api_cost                        # artifacts/onnx/ and artifacts/checkpoints/best.ckpt
    python -m bench.bench_api_cost --out artifacts/api_cost  # also writes api_cost.json and api_cost.md
    python -m bench.bench_api_cost --lengths 8 16 --batch-sizes 1 2 --seconds 0.05   # a smoke run

Week 4's bench/bench_cost.py times ONNX Runtime alone; this times the API a learner runs
(`uvicorn app:app`, one worker on 127.0.0.1, MODEL_VARIANT=fp32 then int8) from one keep-alive
client: POST /predict for batch 1, POST /predict/batch with B copies of the sentence otherwise.
Each sentence is one word repeated so that it is exactly L tokens with [CLS] and [SEP] (checked
with the export's tokenizer). The API truncates at the model's max_length as training did, so a
length above it costs what max_length costs; the table says where that happens. Latency is the
median milliseconds per request over --seconds of requests; throughput is B / median. Beside
each row: the FLOPs per sentence (counted as in bench/bench_cost.py) and, at the largest batch,
ONNX Runtime's own throughput on the same tokens in this process, so what HTTP and JSON add
shows as the gap between the two.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import time
from pathlib import Path

from tqdm import tqdm

from bench.bench_cost import flops_per_sentence, time_cell
from convert_model_to_onnx import CHECKPOINT
from errors import CourseError, run_cli
from inference_onnx import EXPORT_DIR, ColaOnnxPredictor
from support.local_server import local_server

VARIANTS = ("fp32", "int8")
WORD = "dog"  # one token in the course's vocabularies (checked: see sentence_of)


def sentence_of(predictor: ColaOnnxPredictor, tokens: int) -> str:
    """A sentence of exactly `tokens` tokens with [CLS] and [SEP] (truncated at max_length, as served)."""
    sentence = " ".join([WORD] * (tokens - 2))
    if len(predictor.tokenizer.encode(sentence).ids) != min(tokens, predictor.max_length):
        raise CourseError(f"{WORD!r} is not one token in {predictor.export_dir}'s vocabulary: pick another WORD")
    return sentence


def post_median(connection: http.client.HTTPConnection, path: str, body: dict, seconds: float) -> float:
    """Median seconds per POST over `seconds` of requests (at least 3), after one untimed request."""
    payload = json.dumps(body).encode()

    def post() -> None:
        connection.request("POST", path, payload, {"Content-Type": "application/json"})
        response = connection.getresponse()
        answer = response.read()
        if response.status != 200:
            raise CourseError(f"POST {path} answered HTTP {response.status}: {answer[:200]!r}")

    post()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 3:
        start = time.perf_counter()
        post()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(args: argparse.Namespace) -> dict:
    """Every cell through the API, ONNX Runtime's own rate at the largest batch, the FLOPs."""
    flops = flops_per_sentence(args.checkpoint, [min(length, args.max_length) for length in args.lengths])
    largest, cells = max(args.batch_sizes), []
    total = len(VARIANTS) * len(args.lengths) * len(args.batch_sizes)
    with tqdm(total=total, unit="cell") as bar:
        for variant in VARIANTS:
            predictor = ColaOnnxPredictor(args.export_dir, variant, threads=args.threads)
            env = {"MODEL_VARIANT": variant, "ORT_THREADS": str(args.threads)}
            with local_server(args.export_dir, env=env) as url:
                host, port = url.removeprefix("http://").split(":")
                connection = http.client.HTTPConnection(host, int(port), timeout=60)
                for length in args.lengths:
                    sentence = sentence_of(predictor, length)
                    raw = largest / time_cell(predictor, predictor.encode([sentence] * largest), args.seconds)
                    for batch in args.batch_sizes:
                        path, body = ("/predict", {"text": sentence}) if batch == 1 else (
                            "/predict/batch", {"texts": [sentence] * batch})
                        median = post_median(connection, path, body, args.seconds)
                        cells.append({
                            "variant": variant, "tokens": length, "served_tokens": min(length, args.max_length),
                            "batch": batch, "latency_ms": median * 1e3, "sentences_per_s": batch / median,
                            "raw_sentences_per_s_at_largest_batch": raw,
                        })  # fmt: skip
                        bar.update()
                connection.close()
    return {"cells": cells, "flops_per_sentence": flops}


def markdown(measured: dict, args: argparse.Namespace) -> str:
    """A row per variant and length, a column per batch size: ms per request and sentences/s."""
    largest = max(args.batch_sizes)
    header = ["variant", "tokens", "MFLOP/sentence"] + [f"batch {b}: ms, sentences/s" for b in args.batch_sizes]
    header += [f"ONNX Runtime alone, batch {largest}", f"API / alone at batch {largest}"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    by_key = {(c["variant"], c["tokens"], c["batch"]): c for c in measured["cells"]}
    for variant in VARIANTS:
        for length in args.lengths:
            served = min(length, args.max_length)
            label = str(length) if served == length else f"{length} (served as {served})"
            row = [variant, label, f"{measured['flops_per_sentence'][served] / 1e6:.2f}"]
            for batch in args.batch_sizes:
                cell = by_key[(variant, length, batch)]
                row.append(f"{cell['latency_ms']:.2f} ms, {cell['sentences_per_s']:,.0f}/s")
            last = by_key[(variant, length, largest)]
            raw = last["raw_sentences_per_s_at_largest_batch"]
            row += [f"{raw:,.0f}/s", f"{last['sentences_per_s'] / raw:.0%}"]
            lines.append("| " + " | ".join(row) + " |")
    lines += ["", f"One uvicorn worker on 127.0.0.1, one keep-alive client; ONNX Runtime threads: {args.threads}; "
              f"max_length {args.max_length}; {os.cpu_count()} cores; seconds per cell: {args.seconds}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT, help="default: artifacts/checkpoints/best.ckpt")
    parser.add_argument("--export-dir", type=Path, default=EXPORT_DIR, help="default: artifacts/onnx")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads, API and alone (default 1)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[8, 32, 64, 128], help="tokens per sentence")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32, 64], help="at most 64")
    parser.add_argument("--seconds", type=float, default=1.0, help="timed requests per cell for this long")
    parser.add_argument("--out", type=Path, default=None, help="write FILE.json and FILE.md")
    args = parser.parse_args()
    if args.threads < 1 or args.seconds <= 0 or min(args.batch_sizes) < 1 or max(args.batch_sizes) > 64:
        raise CourseError("--threads at least 1, --seconds more than 0, --batch-sizes from 1 to 64 (the API's limit)")
    if min(args.lengths) < 3:
        raise CourseError(f"--lengths {min(args.lengths)} is too short: a sentence has [CLS], [SEP] and one token")
    args.max_length = ColaOnnxPredictor(args.export_dir).max_length  # also: a missing export fails here, at once
    measured = measure(args)
    report = markdown(measured, args)
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        payload = {**measured, "command": " ".join(["python", *sys.argv])}
        args.out.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
        args.out.with_suffix(".md").write_text(report + "\n")
        print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    run_cli(main)
