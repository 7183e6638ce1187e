"""How the model's cost grows with sentence length and batch size: fp32 and int8, beside its FLOPs.

    python -m bench.bench_cost                        # artifacts/onnx/ and artifacts/checkpoints/best.ckpt
    python -m bench.bench_cost --out artifacts/cost   # also writes artifacts/cost.json and artifacts/cost.md
    python -m bench.bench_cost --lengths 8 16 --batch-sizes 1 2 --seconds 0.05   # a smoke run

Every cell times one ONNX Runtime session (fp32 or int8) on inputs of exactly L tokens
([CLS], L-2 random vocabulary ids, [SEP]; no padding) in batches of B, for --seconds after a
warm-up call: latency is the median milliseconds per call, throughput B / median sentences/s.

FLOPs per sentence are counted, not estimated: torch.utils.flop_counter.FlopCounterMode runs the
PyTorch model of the checkpoint once per length and adds up its matrix multiplications (what an
encoder's time goes to; embedding lookups, softmax and layer norms are left out, as is usual).
Achieved GFLOP/s = FLOPs per sentence x sentences/s. Beside it, this CPU's own best: a large fp32
matrix multiplication (torch.mm, 1024 x 1024) on the same threads. The fraction says how close
ONNX Runtime gets to the arithmetic the CPU can do; int8 kernels have a higher limit of their
own (4 int8 products where fp32 does 1 on a CPU with VNNI), so int8 may pass 100%.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from bench.benchmark import BUSY_WARNING_CORES, OtherLoad, machine_info
from convert_model_to_onnx import CHECKPOINT, load_classifier
from errors import CourseError, run_cli
from inference_onnx import EXPORT_DIR, ColaOnnxPredictor

Inputs = dict[str, np.ndarray]
VARIANTS = ("fp32", "int8")
MATMUL_SIZE = 1024  # large enough for the CPU's best matmul kernel, small enough to time in a second
FIRST_TOKEN_ID = 5  # below it: [PAD], [UNK], [CLS], [SEP], [MASK] in a BERT vocabulary


def flops_per_sentence(checkpoint: Path, lengths: list[int]) -> dict[int, int]:
    """Matrix-multiplication FLOPs of one sentence of each length, counted on the PyTorch model."""
    model = load_classifier(checkpoint)
    # Same arithmetic, written as plain matmuls: FlopCounterMode does not count the fused attention
    # kernel (scaled_dot_product_attention) that PyTorch picks on a CPU, so its FLOPs would go missing.
    model.model.set_attn_implementation("eager")
    limit = model.model.config.max_position_embeddings
    if max(lengths) > limit:
        raise CourseError(f"--lengths {max(lengths)} is longer than the model's {limit} positions: use at most {limit}")
    counted = {}
    for length in lengths:
        ids = torch.full((1, length), FIRST_TOKEN_ID, dtype=torch.long)
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            model(ids, torch.ones_like(ids))
        counted[length] = int(counter.get_total_flops())
    return counted


def matmul_gflops(threads: int, seconds: float = 1.0) -> float:
    """This CPU's fp32 matrix-multiplication rate (GFLOP/s) on `threads` threads: its practical best."""
    torch.set_num_threads(threads)
    a, b = torch.randn(MATMUL_SIZE, MATMUL_SIZE), torch.randn(MATMUL_SIZE, MATMUL_SIZE)
    torch.mm(a, b)  # warm-up: the first call picks and prepares the kernel
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        calls += 1
    return 2 * MATMUL_SIZE**3 * calls / (time.perf_counter() - start) / 1e9


def synthetic_inputs(predictor: ColaOnnxPredictor, length: int, batch: int, seed: int = 0) -> Inputs:
    """`batch` sentences of exactly `length` tokens: [CLS] + random vocabulary ids + [SEP], no padding."""
    ends = predictor.tokenizer.encode("a").ids  # [CLS] a [SEP]: the model's own special tokens
    middle = np.random.default_rng(seed).integers(
        FIRST_TOKEN_ID, predictor.tokenizer.get_vocab_size(), size=(batch, length - 2)
    )
    input_ids = np.concatenate(
        [np.full((batch, 1), ends[0]), middle, np.full((batch, 1), ends[-1])], axis=1
    ).astype(np.int64)
    return {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids)}


def time_cell(predictor: ColaOnnxPredictor, inputs: Inputs, seconds: float) -> float:
    """Median seconds per call over `seconds` of calls (at least 3), after one untimed call."""
    predictor.logits(inputs)
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 3:
        start = time.perf_counter()
        predictor.logits(inputs)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(args: argparse.Namespace) -> dict:
    """Every cell of the table, the FLOPs per length and the CPU's matmul rate."""
    flops = flops_per_sentence(args.checkpoint, args.lengths)
    peak = matmul_gflops(args.threads)
    cells = []
    with OtherLoad() as other, tqdm(total=len(VARIANTS) * len(args.lengths) * len(args.batch_sizes)) as bar:
        for variant in VARIANTS:
            predictor = ColaOnnxPredictor(args.export_dir, variant, threads=args.threads)
            for length in args.lengths:
                for batch in args.batch_sizes:
                    median = time_cell(predictor, synthetic_inputs(predictor, length, batch), args.seconds)
                    throughput = batch / median
                    cells.append({
                        "variant": variant, "tokens": length, "batch": batch,
                        "latency_ms": median * 1e3, "sentences_per_s": throughput,
                        "gflops_per_s": flops[length] * throughput / 1e9,
                    })  # fmt: skip
                    bar.update()
    return {"cells": cells, "flops_per_sentence": flops, "matmul_gflops": peak, "other_cores": other.cores}


def markdown(measured: dict, args: argparse.Namespace, machine: dict) -> str:
    """One table: a row per variant and length, a column per batch size, the FLOPs beside them."""
    largest = max(args.batch_sizes)
    header = ["variant", "tokens", "MFLOP/sentence"] + [f"batch {b}: ms, sentences/s" for b in args.batch_sizes]
    header += [f"GFLOP/s at batch {largest}", "of fp32 matmul rate"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    by_key = {(c["variant"], c["tokens"], c["batch"]): c for c in measured["cells"]}
    for variant in VARIANTS:
        for length in args.lengths:
            row = [variant, str(length), f"{measured['flops_per_sentence'][length] / 1e6:.2f}"]
            for batch in args.batch_sizes:
                cell = by_key[(variant, length, batch)]
                row.append(f"{cell['latency_ms']:.2f} ms, {cell['sentences_per_s']:,.0f}/s")
            rate = by_key[(variant, length, largest)]["gflops_per_s"]
            row += [f"{rate:.1f}", f"{rate / measured['matmul_gflops']:.0%}"]
            lines.append("| " + " | ".join(row) + " |")
    lines += ["", f"This CPU's fp32 matmul rate (torch.mm {MATMUL_SIZE}x{MATMUL_SIZE}, {args.threads} threads): "
              f"{measured['matmul_gflops']:.1f} GFLOP/s"]
    lines += ["Machine: " + ", ".join(f"{k}={v}" for k, v in machine.items())]
    lines += [f"Settings: seconds per cell={args.seconds}, export_dir={args.export_dir}, checkpoint={args.checkpoint}"]
    cores = measured["other_cores"]
    if cores is not None and cores > BUSY_WARNING_CORES:
        lines.append(f"WARNING: other processes kept {cores:.2f} cores busy while this ran; re-run on an idle machine.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT, help="default: artifacts/checkpoints/best.ckpt")
    parser.add_argument("--export-dir", type=Path, default=EXPORT_DIR, help="default: artifacts/onnx")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="default: os.cpu_count()")
    parser.add_argument("--lengths", type=int, nargs="+", default=[8, 32, 64, 128], help="tokens per sentence")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--seconds", type=float, default=1.0, help="timed calls per cell for this long")
    parser.add_argument("--out", type=Path, default=None, help="write FILE.json and FILE.md")
    args = parser.parse_args()
    if args.threads < 1 or args.seconds <= 0 or min(args.batch_sizes) < 1:
        raise CourseError("--threads and --batch-sizes must be at least 1, --seconds more than 0")
    if min(args.lengths) < 3:
        raise CourseError(f"--lengths {min(args.lengths)} is too short: a sentence has [CLS], [SEP] and one token")
    torch.set_num_interop_threads(1)  # as bench/benchmark.py: one inter-op thread, like onnxruntime's
    measured = measure(args)
    report = markdown(measured, args, machine_info(args.threads))
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        payload = {**measured, "command": " ".join(["python", *sys.argv])}
        args.out.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
        args.out.with_suffix(".md").write_text(report + "\n")
        print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    run_cli(main)
