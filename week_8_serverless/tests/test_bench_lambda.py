"""The cold-start benchmark runs end to end and prints both figures (not a timing test)."""

from __future__ import annotations

import re

from conftest import run_script


def test_cold_start_benchmark_prints_cold_and_warm_figures(exported: dict) -> None:
    result = run_script(
        "-m", "bench.bench_lambda", "--export-dir", str(exported["export_dir"]), "--starts", "2", "--warm", "5"
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"cold start \(new process -> first answer\), 2 runs: p50 \d+\.\d\d s", result.stdout)
    assert re.search(r"warm invocation, 10 calls: p50 \d+\.\d\d ms", result.stdout)


def test_missing_model_is_one_clear_line(tmp_path) -> None:
    result = run_script("-m", "bench.bench_lambda", "--export-dir", str(tmp_path))
    assert result.returncode == 2
    expected = f"error: no model at {tmp_path}: make one with `dvc repro` (trains, then exports; a few minutes)"
    assert result.stderr.strip() == expected
