"""PyTorch eager vs ONNX Runtime fp32 vs ONNX Runtime int8, on this machine, in one run.

    python -m bench.benchmark                                 # artifacts/checkpoints/best.ckpt vs artifacts/onnx/
    python -m bench.benchmark --out artifacts/benchmark.json  # also writes benchmark.json and benchmark.md
    python -m bench.benchmark --repeats 5 --rounds 1          # a quick smoke run (numbers meaningless)

What is measured, and how it is kept fair:
  - every engine gets the very same int64 arrays: the export's tokenizer, truncated at the
    checkpoint's max_length, tokenized once before any timing (tokenization is not timed);
  - one sentence: a batch of 1, NOT padded (the dynamic sequence axis lets a service skip the
    padding), cycling through the validation sentences; p50/p95 over --repeats calls after
    --warmup calls;
  - throughput: the validation sentences in full batches of 32 and 64, each padded to its
    longest sentence, --rounds passes; sentences per second of model time;
  - --pad-to-max-length pads every input to max_length instead, as training did;
  - the same number of threads for both runtimes (torch.set_num_threads and onnxruntime's
    intra_op_num_threads; default os.cpu_count()), one inter-op thread each;
  - accuracy on the whole offline validation set; size of the weights file each engine loads.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from tqdm import tqdm

from convert_model_to_onnx import CHECKPOINT, load_classifier, sha256
from errors import CourseError, run_cli
from inference_onnx import EXPORT_DIR, MODEL_FILES, ColaOnnxPredictor
from source import read_split

Inputs = dict[str, np.ndarray]
BLOCKS = 10  # one-sentence calls are interleaved between the engines in this many blocks
TURN_WARMUP = 10  # untimed calls at the start of each engine's turn (see measure())
BUSY_WARNING_CORES = 0.2  # other processes' average CPU use above which the report warns
TARGET_ONE_SENTENCE_SPEEDUP = 5.0  # ONNX Runtime fp32 p50 vs PyTorch eager p50, one sentence
TARGET_INT8_THROUGHPUT_GAIN = 1.4  # int8 vs fp32 sentences/s at batch 64
TARGET_INT8_ACCURACY_POINTS = 1.0  # |int8 - fp32| validation accuracy, in percentage points


@dataclass
class Engine:
    """Something that turns encoded inputs into (batch, 2) logits, and what it weighs on disk."""

    name: str
    run: Callable[[Inputs], np.ndarray]
    size_mb: float
    size_of: str


@dataclass
class Result:
    """One engine's measurements."""

    engine: str
    p50_ms: float
    p95_ms: float
    throughput: dict[int, float] = field(default_factory=dict)  # batch size -> sentences/s
    accuracy: float = 0.0
    size_mb: float = 0.0
    size_of: str = ""


def torch_engine(checkpoint: Path) -> Engine:
    """The Lightning model in eval mode, called under inference_mode (no autograd bookkeeping)."""
    model = load_classifier(checkpoint)

    def run(inputs: Inputs) -> np.ndarray:
        with torch.inference_mode():
            ids, mask = torch.from_numpy(inputs["input_ids"]), torch.from_numpy(inputs["attention_mask"])
            return model(ids, mask).numpy()

    # The transformer's state dict is what the ONNX file holds too; best.ckpt also stores the
    # optimizer's moments and metric state, which a server never loads.
    buffer = io.BytesIO()
    torch.save(model.model.state_dict(), buffer)
    return Engine("PyTorch eager", run, buffer.getbuffer().nbytes / 1e6, "state_dict (torch.save)")


def ort_engine(predictor: ColaOnnxPredictor) -> Engine:
    path = predictor.export_dir / MODEL_FILES[predictor.variant]
    return Engine(f"ONNX Runtime {predictor.variant}", predictor.logits, path.stat().st_size / 1e6, path.name)


def call_times(engine: Engine, inputs: list[Inputs], indices: Iterable[int]) -> list[float]:
    """Seconds per call: one call per index, cycling through `inputs`."""
    times = []
    for i in indices:
        batch = inputs[i % len(inputs)]
        start = time.perf_counter()
        engine.run(batch)
        times.append(time.perf_counter() - start)
    return times


def measure(
    engines: list[Engine], singles: list[Inputs], by_size: dict[int, list[Inputs]], args: argparse.Namespace
) -> list[Result]:
    """One-sentence p50/p95 and batch throughput for every engine.

    The engines take turns, block by block, instead of one finishing before the next starts:
    on a shared machine a burst of background load then hits all three alike. Each turn starts
    with a few untimed calls: both runtimes keep their worker threads spinning for a moment after
    a call, and the previous engine's spinning threads must not be billed to the next one.
    """
    for engine in engines:
        call_times(engine, singles, range(args.warmup))
        for batches in by_size.values():
            engine.run(batches[0])
    single = {e.name: [] for e in engines}
    seconds = {e.name: dict.fromkeys(by_size, 0.0) for e in engines}
    blocks = np.array_split(np.arange(args.repeats), min(BLOCKS, args.repeats))
    with tqdm(total=len(blocks) + args.rounds, unit="block", desc="one sentence") as progress:
        for block in blocks:
            for engine in engines:
                call_times(engine, singles, block[:TURN_WARMUP])
                single[engine.name] += call_times(engine, singles, block)
            progress.update()
        progress.set_description("batches")
        for _ in range(args.rounds):
            for engine in engines:
                call_times(engine, singles, range(TURN_WARMUP))
                for size, batches in by_size.items():
                    seconds[engine.name][size] += sum(call_times(engine, batches, range(len(batches))))
            progress.update()
    results = []
    for engine in engines:
        p50, p95 = np.percentile(single[engine.name], [50, 95]) * 1e3
        result = Result(engine.name, float(p50), float(p95), size_mb=engine.size_mb, size_of=engine.size_of)
        for size, batches in by_size.items():
            result.throughput[size] = args.rounds * len(batches) * size / seconds[engine.name][size]
        results.append(result)
    return results


def accuracy(engine: Engine, batches: list[Inputs], labels: list[int]) -> float:
    predicted = np.concatenate([engine.run(batch).argmax(axis=1) for batch in batches])
    return float((predicted == np.array(labels)).mean())


def busy_cpu_seconds() -> float | None:
    """CPU seconds all processes have spent busy since boot (Linux /proc/stat), else None."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class OtherLoad:
    """Measures how many cores OTHER processes kept busy while the block ran.

    Eager PyTorch slows down many times over when another process takes one of its cores, so
    a number measured on a busy machine must say so; a load average would lag behind.
    """

    cores: float | None = None

    def __enter__(self) -> OtherLoad:
        self.start = (busy_cpu_seconds(), sum(os.times()[:2]), time.perf_counter())
        return self

    def __exit__(self, *exc: object) -> None:
        busy, own, wall = busy_cpu_seconds(), sum(os.times()[:2]), time.perf_counter()
        if busy is not None and self.start[0] is not None:
            others = (busy - self.start[0]) - (own - self.start[1])
            self.cores = max(0.0, others) / (wall - self.start[2])


def machine_info(threads: int) -> dict:
    """Where the numbers come from: they only mean something next to this."""
    cpu, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass  # not Linux: platform.processor() is the best there is
    # int8 matmuls are only fast with int8 dot-product instructions; say whether this CPU has them.
    int8_dot = sorted(flags & {"avx512_vnni", "avx_vnni", "amx_int8"}) or ["none found"]
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "int8_dot_product": "/".join(int8_dot),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "onnx": onnx.__version__,
    }


def check_targets(results: list[Result]) -> list[dict]:
    """The week's targets, each with the measured figure, its unit and whether it was met."""
    by_name = {r.engine: r for r in results}
    eager, fp32, int8 = by_name["PyTorch eager"], by_name["ONNX Runtime fp32"], by_name["ONNX Runtime int8"]
    speedup = eager.p50_ms / fp32.p50_ms
    targets = [
        {
            "target": f"ONNX Runtime fp32 >= {TARGET_ONE_SENTENCE_SPEEDUP:g}x faster than eager, one sentence p50",
            "measured": speedup,
            "unit": "x",
            "required": TARGET_ONE_SENTENCE_SPEEDUP,
            "met": speedup >= TARGET_ONE_SENTENCE_SPEEDUP,
        }
    ]
    if 64 in int8.throughput:
        gain = int8.throughput[64] / fp32.throughput[64]
        targets.append(
            {
                "target": f"int8 >= {TARGET_INT8_THROUGHPUT_GAIN:g}x fp32 throughput at batch 64",
                "measured": gain,
                "unit": "x",
                "required": TARGET_INT8_THROUGHPUT_GAIN,
                "met": gain >= TARGET_INT8_THROUGHPUT_GAIN,
            }
        )
    change = 100 * (int8.accuracy - fp32.accuracy)  # signed, so a reader sees which way it moved
    targets.append(
        {
            "target": f"int8 validation accuracy within {TARGET_INT8_ACCURACY_POINTS:g} point of fp32",
            "measured": change,
            "unit": "points",
            "required": TARGET_INT8_ACCURACY_POINTS,
            "met": abs(change) <= TARGET_INT8_ACCURACY_POINTS,
        }
    )
    return targets


def markdown(results: list[Result], machine: dict, targets: list[dict], settings: dict) -> str:
    sizes = sorted({b for r in results for b in r.throughput})
    header = ["engine", "1 sentence p50 (ms)", "1 sentence p95 (ms)"]
    header += [f"batch {b} (sentences/s)" for b in sizes] + ["model size (MB)", "weights file", "val accuracy"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in results:
        cells = [r.engine, f"{r.p50_ms:.2f}", f"{r.p95_ms:.2f}"]
        cells += [f"{r.throughput[b]:.0f}" for b in sizes]
        cells += [f"{r.size_mb:.2f}", r.size_of, f"{r.accuracy:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Targets:"]
    for t in targets:
        value = f"{t['measured']:+.2f} points" if t["unit"] == "points" else f"{t['measured']:.3f}x"
        lines.append(f"- {t['target']}: measured {value} -> {'met' if t['met'] else 'NOT met'}")
    lines += ["", "Machine: " + ", ".join(f"{k}={v}" for k, v in machine.items())]
    lines += ["Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items())]
    return "\n".join(lines)


def batches_of(predictor: ColaOnnxPredictor, sentences: list[str], size: int, pad: bool) -> list[Inputs]:
    """Full batches only, so every timed call does the same amount of work."""
    count = len(sentences) // size
    if count == 0:
        raise CourseError(f"batch size {size} is larger than the {len(sentences)} validation sentences")
    return [predictor.encode(sentences[i * size : (i + 1) * size], pad) for i in range(count)]


def benchmark(args: argparse.Namespace) -> tuple[list[Result], str, dict]:
    """Run every measurement; return the results, the Markdown report and the JSON payload."""
    torch.set_num_threads(args.threads)
    eager = torch_engine(args.checkpoint)  # first: a missing checkpoint is the most likely mistake
    predictors = {v: ColaOnnxPredictor(args.export_dir, v, threads=args.threads) for v in ("fp32", "int8")}
    # Eager and ONNX numbers are only comparable when both come from the same trained weights.
    if predictors["fp32"].config.get("source_checkpoint_sha256") != sha256(Path(args.checkpoint)):
        raise CourseError(
            f"{args.export_dir} was converted from another checkpoint than {args.checkpoint}: "
            f"re-run `python convert_model_to_onnx.py --checkpoint {args.checkpoint} --out-dir {args.export_dir}`"
        )
    engines = [eager] + [ort_engine(p) for p in predictors.values()]

    tokenizer = predictors["fp32"]  # one tokenization, shared by all three engines
    rows = read_split("validation")
    sentences, labels = [row["sentence"] for row in rows], [row["label"] for row in rows]
    singles = [tokenizer.encode([s], args.pad_to_max_length) for s in sentences]
    by_size = {b: batches_of(tokenizer, sentences, b, args.pad_to_max_length) for b in args.batch_sizes}
    eval_batches = [tokenizer.encode(sentences[i : i + 64]) for i in range(0, len(sentences), 64)]

    with OtherLoad() as other:
        results = measure(engines, singles, by_size, args)
    for engine, result in zip(engines, results, strict=True):
        result.accuracy = accuracy(engine, eval_batches, labels)

    machine = machine_info(args.threads)
    settings = {
        "max_length": tokenizer.max_length,
        "one-sentence padding": "max_length" if args.pad_to_max_length else "none",
        "mean one-sentence tokens": f"{statistics.mean(s['input_ids'].shape[1] for s in singles):.1f}",
        "repeats": args.repeats,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "validation sentences": len(sentences),
        "other processes' CPU during timing (cores)": "unknown" if other.cores is None else f"{other.cores:.2f}",
        "checkpoint": args.checkpoint,
        "export_dir": args.export_dir,
    }
    targets = check_targets(results)
    report = markdown(results, machine, targets, settings)
    if other.cores is not None and other.cores > BUSY_WARNING_CORES:
        report += (
            f"\nWARNING: other processes kept {other.cores:.2f} cores busy while this ran; "
            "these timings are not reliable: re-run on an idle machine."
        )
    payload = {
        "results": [asdict(r) for r in results],
        "targets": targets,
        "machine": machine,
        "settings": {k: str(v) for k, v in settings.items()},
        "command": " ".join(["python", *sys.argv]),
    }
    return results, report, payload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT, help="default: artifacts/checkpoints/best.ckpt")
    parser.add_argument("--export-dir", type=Path, default=EXPORT_DIR, help="default: artifacts/onnx")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="default: os.cpu_count()")
    parser.add_argument("--repeats", type=int, default=1000, help="timed one-sentence calls per engine")
    parser.add_argument("--warmup", type=int, default=50, help="untimed one-sentence calls first")
    parser.add_argument("--rounds", type=int, default=20, help="passes over the validation set per batch size")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--pad-to-max-length", action="store_true", help="pad every input to max_length")
    parser.add_argument("--out", type=Path, default=None, help="write FILE.json and FILE.md")
    args = parser.parse_args()
    if args.threads < 1 or args.repeats < 1 or args.rounds < 1:
        raise CourseError("--threads, --repeats and --rounds must be at least 1")
    # Must happen before torch starts any parallel work; one inter-op thread, as for onnxruntime.
    torch.set_num_interop_threads(1)
    print(f"threads: {args.threads} (torch.set_num_threads and onnxruntime intra_op_num_threads)")
    _, report, payload = benchmark(args)
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
        args.out.with_suffix(".md").write_text(report + "\n")
        print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    run_cli(main)
