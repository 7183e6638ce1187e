"""A smoke run of bench/bench_training.py: both padding modes trained, timed and reported. Not a timing test."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import WEEK_DIR

BATCH, MAX_LENGTH = 16, 32


def run_bench(*args: str) -> subprocess.CompletedProcess:
    """The benchmark as a learner runs it, from the week folder."""
    return subprocess.run(
        [sys.executable, "-m", "bench.bench_training", *args],
        cwd=WEEK_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
    )


def test_tiny_run_reports_both_paddings_and_the_target() -> None:
    done = run_bench(
        "--epochs", "1", "--limit-batches", "3", "--warmup", "1", "--threads", "1",
        "--batch-size", str(BATCH), "--max-length", str(MAX_LENGTH),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [line.split("|")[1:-1] for line in done.stdout.splitlines() if line.startswith("| ")]
    assert rows[0][0].strip() == "padding" and len(rows) == 3
    table = {row[0].strip(): [float(cell.strip().rstrip("%")) for cell in row[1:]] for row in rows[1:]}
    assert list(table) == ["max_length", "dynamic"]
    for speed, seconds, positions, padding, val_speed, accuracy, mcc in table.values():
        assert speed > 0 and seconds > 0 and positions > 0 and val_speed > 0
        assert 0 <= padding < 100 and 0 <= accuracy <= 1 and -1 <= mcc <= 1
    # max_length pads every sentence to MAX_LENGTH; dynamic computes fewer positions, less of them padding.
    assert table["max_length"][2] == BATCH * MAX_LENGTH
    assert table["dynamic"][2] < BATCH * MAX_LENGTH and table["dynamic"][3] < table["max_length"][3]

    speedup = re.search(r"^speedup: .* = ([0-9.]+)x \(target >= 2\.5x\) -> (met|NOT met)$", done.stdout, re.M)
    assert speedup, done.stdout
    ratio = float(speedup.group(1))
    assert abs(ratio - table["dynamic"][0] / table["max_length"][0]) < 0.02 * ratio + 0.01  # printed rounded
    assert (speedup.group(2) == "met") == (ratio >= 2.5)
    assert re.search(r"^machine: .+ \d+ cores, torch threads 1,", done.stdout, re.M)
    assert re.search(r"^other processes' CPU while this ran \(cores\): ", done.stdout, re.M)


def test_bad_settings_are_one_clear_line() -> None:
    done = run_bench("--max-length", "4")
    assert done.returncode == 2
    assert "--max-length 4 is too short" in done.stderr and "Traceback" not in done.stderr
    done = run_bench("--epochs", "1", "--limit-batches", "2", "--warmup", "2", "--threads", "1")
    assert done.returncode == 2
    assert "--warmup 2 leaves none of the 2 training steps timed" in done.stderr and "Traceback" not in done.stderr
