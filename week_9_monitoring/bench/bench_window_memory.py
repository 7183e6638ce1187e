"""Does the memory of the drift check and the labelling queue stay flat as the events file grows?

    python -m bench.bench_window_memory                        # 400,000 events (about 200 MB), --last 500
    python -m bench.bench_window_memory --events 10000 400000  # two sizes: flat means the same peak for both

Writes N made-up prediction events (held-out sentences with their text, as the API logs them with
LOG_TEXT=true) and a drift reference (the reference half of validation with made-up predictions: the
figures are about memory, not about drift) into a temporary folder. Then it runs, each in its own
child process, exactly what a learner runs:

    python -m monitoring.drift check --events FILE --reference REF --last 500
    python -m monitoring.labelling_queue --events FILE --reference REF --last 500 --out QUEUE --force

and reads each child's peak resident memory (ru_maxrss of RUSAGE_CHILDREN, read by a small wrapper
process per command, so one command's peak never hides another's). It prints beside each figure the
import floor (the same process importing its modules and reading nothing) and the issue's target of
150 MB at 400,000 events. Not a timed test: tests/test_bench_window_memory.py only checks that it runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from errors import CourseError, run_cli
from monitoring.drift_reference import Reference, save_reference, words
from monitoring.prediction_events import build_event, utc_timestamp
from source import WEEK_DIR, read_split
from support.shifted_text import validation_half

TARGET_MB = 150
MODEL_VERSION = "bench-v1"
# Runs a command and prints the peak RSS (KiB on Linux) of its process tree's largest member.
WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(code)\n"
)


def write_reference(path: Path) -> Path:
    """A valid drift reference without a model: the reference half, seeded made-up predictions."""
    rng = random.Random(0)
    texts = [row["sentence"] for row in validation_half("reference")]
    scores = [rng.uniform(0.5, 1.0) for _ in texts]
    return save_reference(
        Reference(
            built_at=utc_timestamp(),
            model_version=MODEL_VERSION,
            labels=["unacceptable", "acceptable"],
            vocabulary=sorted({w for row in read_split("train") for w in words(row["sentence"])}),
            texts=texts,
            predicted_labels=[rng.choice(["unacceptable", "acceptable"]) for _ in texts],
            scores=scores,
        ),
        path,
    )


def write_events(path: Path, count: int) -> int:
    """`count` events, one a line, cycling through the held-out sentences; returns the file's size in bytes."""
    rng = random.Random(1)
    pool = []
    for i, row in enumerate(validation_half("holdout")):
        p = rng.uniform(0.0, 1.0)
        probabilities = {"unacceptable": 1 - p, "acceptable": p}
        label = max(probabilities, key=probabilities.get)
        result = {"label": label, "score": probabilities[label], "probabilities": probabilities}
        event = build_event(
            result,
            row["sentence"],
            request_id=f"bench{i}",
            index=0,
            source="api",
            model_config={"model_version": MODEL_VERSION, "data_version": "v2"},
            latency_ms=1.0,
            log_text=True,
        )
        pool.append(event.model_dump(exclude_none=True))
    start = time.time() - count  # one event a second, ending now
    with open(path, "w", encoding="utf-8") as handle:
        for n in range(count):
            event = dict(pool[n % len(pool)])
            event["timestamp"] = utc_timestamp_at(start + n)
            event["event_id"] = f"bench-{n}"
            handle.write(json.dumps(event, ensure_ascii=False, separators=(", ", ": ")) + "\n")
    return path.stat().st_size


def utc_timestamp_at(seconds: float) -> str:
    from datetime import UTC, datetime

    return utc_timestamp(datetime.fromtimestamp(seconds, UTC))


def peak_mb(command: list[str]) -> float:
    """The peak resident memory of `command` run in a child process, in MB; CourseError when it fails."""
    result = subprocess.run(
        [sys.executable, "-c", WRAPPER, *command], cwd=WEEK_DIR, capture_output=True, text=True, timeout=1800
    )
    if result.returncode != 0:
        raise CourseError(f"{' '.join(command[2:5])} failed (exit {result.returncode}): {result.stderr.strip()}")
    return int(result.stdout.split()[-1]) / 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, nargs="+", default=[400_000], help="events per file (default 400000)")
    parser.add_argument("--last", type=int, default=500, help="the window, as --last of both commands")
    args = parser.parse_args()
    python = sys.executable
    floors = {
        "drift check": peak_mb([python, "-c", "import monitoring.drift"]),
        "labelling queue": peak_mb(
            [python, "-c", "import monitoring.labelling_queue, monitoring.drift, monitoring.drift_statistics"]
        ),
    }
    print(f"python {platform.python_version()}, {platform.machine()}; target: {TARGET_MB} MB at 400,000 events")
    print(
        f"{'command':<16} {'events':>9} {'file MB':>8} {'peak MB':>8} {'floor MB':>9} {'above floor':>12}"
        f"  <= {TARGET_MB} MB"
    )
    with tempfile.TemporaryDirectory(prefix="bench_window_memory_") as folder:
        folder = Path(folder)
        reference = write_reference(folder / "reference.json")
        for count in args.events:
            events = folder / "events.jsonl"
            size_mb = write_events(events, count) / 1e6
            common = ["--events", str(events), "--reference", str(reference), "--last", str(args.last)]
            commands = {
                "drift check": [python, "-m", "monitoring.drift", "check", *common],
                "labelling queue": [
                    python, "-m", "monitoring.labelling_queue", *common, "--out", str(folder / "queue.csv"), "--force"
                ],
            }  # fmt: skip
            for name, command in commands.items():
                # Whole MB, rounded before subtracting, so the three columns add up as printed.
                peak, floor = round(peak_mb(command)), round(floors[name])
                print(
                    f"{name:<16} {count:>9,} {size_mb:>8.0f} {peak:>8} {floor:>9} "
                    f"{peak - floor:>12}  {'yes' if peak <= TARGET_MB else 'no'}"
                )
    print(
        "floor: the same process importing its modules and reading nothing (scikit-learn, SciPy and the "
        "pandas/pyarrow scikit-learn imports); flat in the file size means the same peak for every --events"
    )


if __name__ == "__main__":
    run_cli(main)
