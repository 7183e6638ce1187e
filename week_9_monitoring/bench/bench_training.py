"""Training speed: every sentence padded to max_length (before) vs each batch padded to its longest sentence.

    python -m bench.bench_training                                 # 3 epochs, max_length 64, batch 64
    python -m bench.bench_training --epochs 1 --limit-batches 3    # a quick smoke run (numbers meaningless)

What is measured, and how it is kept fair:
  - two copies of the same model (model.py's ColaModel, the same seed, AdamW at --lr) train on the
    same sentences in the same shuffled order; only the padding differs:
      "max_length" tokenizes every sentence padded to --max-length, as data.py did before;
      "dynamic" is data.py as it is: each batch padded to its longest sentence;
  - a training step is what model.py's training_step computes (forward, cross-entropy, backward)
    plus the optimizer step, and fetching the batch from the DataLoader; Lightning's loop around
    it is the same for both and left out;
  - the two alternate step by step (A B, B A, ...), so a burst of load from other processes on a
    shared machine hits both alike; the first --warmup steps of each are not timed;
  - then both models are validated (accuracy and MCC, and validation sentences/s), so a reader
    sees the speed did not cost accuracy.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import lightning as L
import torch
from torch.nn.functional import cross_entropy
from torchmetrics.functional.classification import binary_accuracy, binary_matthews_corrcoef

from data import ColaDataModule
from errors import CourseError, run_cli
from model import ColaModel
from source import base_model_name

TARGET_SPEEDUP = 2.5  # dynamic vs max_length padding, training sentences/s (issue 19)
MODES = ("max_length", "dynamic")


class MaxLengthPadding(ColaDataModule):
    """The data module as it was: every sentence padded to `max_length` when tokenized."""

    def tokenize(self, batch: dict) -> dict:
        return self.tokenizer(batch["sentence"], truncation=True, padding="max_length", max_length=self.max_length)


@dataclass
class Run:
    """One padding mode: its data, model, optimizer and what was measured."""

    mode: str
    data: ColaDataModule
    model: ColaModel
    optimizer: torch.optim.Optimizer
    seconds: float = 0.0
    sentences: int = 0
    positions: int = 0  # token positions computed, padding included
    words: int = 0  # the real tokens among them
    metrics: dict[str, float] = field(default_factory=dict)

    def step(self, batches: object, timed: bool) -> bool:
        """One training step on the next batch; False when the epoch has no batch left."""
        start = time.perf_counter()
        batch = next(batches, None)
        if batch is None:
            return False
        loss = cross_entropy(self.model(batch["input_ids"], batch["attention_mask"]), batch["label"])
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        if timed:
            self.seconds += time.perf_counter() - start
            self.sentences += len(batch["label"])
            self.positions += batch["input_ids"].numel()
            self.words += int(batch["attention_mask"].sum())
        return True

    @torch.inference_mode()
    def validate(self) -> None:
        """Accuracy, MCC and sentences/s on the whole validation split."""
        self.model.eval()
        start, preds, labels = time.perf_counter(), [], []
        for batch in self.data.val_dataloader():
            preds.append(self.model(batch["input_ids"], batch["attention_mask"]).argmax(dim=1))
            labels.append(batch["label"])
        seconds = time.perf_counter() - start
        preds, labels = torch.cat(preds), torch.cat(labels)
        self.metrics = {
            "accuracy": float(binary_accuracy(preds, labels)),
            "mcc": float(binary_matthews_corrcoef(preds, labels)),
            "val_sentences_per_s": len(labels) / seconds,
        }


def make_run(mode: str, args: argparse.Namespace) -> Run:
    """A fresh model from the seed, with the data module of `mode`."""
    L.seed_everything(args.seed, workers=True, verbose=False)
    model_name = base_model_name("offline")
    data = (MaxLengthPadding if mode == "max_length" else ColaDataModule)(
        model_name, "offline", args.batch_size, args.max_length
    )
    data.setup("fit")
    model = ColaModel(model_name, lr=args.lr, max_length=args.max_length)
    return Run(mode, data, model, torch.optim.AdamW(model.parameters(), lr=args.lr))


def train_alternately(runs: list[Run], args: argparse.Namespace) -> None:
    """`--epochs` epochs of both runs, one step each in turn, the order swapped every step."""
    done = 0
    for _ in range(args.epochs):
        iterators = [iter(run.data.train_dataloader()) for run in runs]
        for run in runs:
            run.model.train()
        for index in range(args.limit_batches or 10**9):
            order = list(zip(runs, iterators, strict=True))
            stepped = [run.step(batches, timed=done >= args.warmup) for run, batches in order[:: 1 - 2 * (index % 2)]]
            if not all(stepped):
                break
            done += 1


def cpu_name() -> str:
    """The CPU's model name, vendor, family and model number (Linux), else what platform knows."""
    try:
        info = dict(
            (key.strip(), value.strip())
            for key, _, value in (line.partition(":") for line in Path("/proc/cpuinfo").read_text().splitlines())
            if value
        )
    except OSError:
        return platform.processor() or "unknown"
    return (
        f"{info.get('model name', 'unknown')} ({info.get('vendor_id', '?')} family {info.get('cpu family', '?')} "
        f"model {info.get('model', '?')})"
    )


def busy_cpu_seconds() -> float | None:
    """CPU seconds all processes have spent busy since boot (Linux /proc/stat), else None."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def report(runs: list[Run], args: argparse.Namespace, other_cores: float | None) -> str:
    """The table, the target with met / NOT met, and where the figures come from."""
    lines = [
        "| padding | training sentences/s | timed steps (s) | token positions per batch | padding share "
        "| val sentences/s | val accuracy | val MCC |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r.mode} | {r.sentences / r.seconds:.0f} | {r.seconds:.3f} "
            f"| {r.positions / r.sentences * args.batch_size:.0f} | {1 - r.words / r.positions:.0%} "
            f"| {r.metrics['val_sentences_per_s']:.0f} | {r.metrics['accuracy']:.3f} | {r.metrics['mcc']:.3f} |"
        )
    before, after = (r.sentences / r.seconds for r in runs)
    ratio = after / before
    lines += [
        "",
        f"speedup: dynamic / max_length training sentences/s = {ratio:.2f}x (target >= {TARGET_SPEEDUP:g}x) "
        f"-> {'met' if ratio >= TARGET_SPEEDUP else 'NOT met'}",
        f"machine: {cpu_name()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, "
        f"python {platform.python_version()}, torch {torch.__version__}",
        f"settings: epochs={args.epochs}, batch_size={args.batch_size}, max_length={args.max_length}, "
        f"lr={args.lr}, seed={args.seed}, limit_batches={args.limit_batches}, warmup steps={args.warmup}",
        "other processes' CPU while this ran (cores): " + ("unknown" if other_cores is None else f"{other_cores:.2f}"),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="default: os.cpu_count()")
    parser.add_argument("--limit-batches", type=int, default=None, help="training steps per epoch (default: all)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed training steps of each run at the start")
    args = parser.parse_args()
    if min(args.epochs, args.batch_size, args.threads, args.limit_batches or 1) < 1 or args.warmup < 0:
        raise CourseError("--epochs, --batch-size, --threads and --limit-batches must be at least 1, --warmup >= 0")
    if args.max_length < 8:
        raise CourseError(f"--max-length {args.max_length} is too short for a sentence: use 8 or more")
    torch.set_num_threads(args.threads)
    datasets.disable_progress_bars()  # the Map bars of four tokenizations say nothing here
    runs = [make_run(mode, args) for mode in MODES]
    steps = args.epochs * min(args.limit_batches or 10**9, len(runs[0].data.train_dataloader()))
    if args.warmup >= steps:
        raise CourseError(f"--warmup {args.warmup} leaves none of the {steps} training steps timed: lower it")
    start = (busy_cpu_seconds(), sum(os.times()[:4]), time.perf_counter())
    train_alternately(runs, args)
    for run in runs:
        run.validate()
    busy, own, wall = busy_cpu_seconds(), sum(os.times()[:4]), time.perf_counter()
    others = None if busy is None or start[0] is None else max(0.0, busy - start[0] - (own - start[1]))
    print(report(runs, args, None if others is None else others / (wall - start[2])))


if __name__ == "__main__":
    run_cli(main)
