"""A smoke run of bench/bench_api_cost.py: every cell served over HTTP and reported. Not a timing test."""

from __future__ import annotations

import json

import pytest

from conftest import run_script


def test_tiny_api_cost_run_fills_every_cell(exported: dict, tmp_path) -> None:
    out = tmp_path / "api_cost"
    done = run_script(
        "-m", "bench.bench_api_cost",
        "--checkpoint", str(exported["checkpoint"]), "--export-dir", str(exported["export_dir"]),
        "--lengths", "8", "40", "--batch-sizes", "1", "3", "--seconds", "0.02", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    # The session's model keeps 32 tokens (conftest's TEST_MAX_LENGTH): 40 is served as 32, and says so.
    assert [row.split("|")[1:3] for row in rows[1:]] == [
        [" fp32 ", " 8 "], [" fp32 ", " 40 (served as 32) "], [" int8 ", " 8 "], [" int8 ", " 40 (served as 32) "]
    ]
    report = json.loads(out.with_suffix(".json").read_text())
    assert len(report["cells"]) == 2 * 2 * 2
    for cell in report["cells"]:
        assert cell["latency_ms"] > 0 and cell["raw_sentences_per_s_at_largest_batch"] > 0
        assert cell["sentences_per_s"] == pytest.approx(cell["batch"] / cell["latency_ms"] * 1e3)
    flops = report["flops_per_sentence"]
    assert set(flops) == {"8", "32"} and 0 < flops["8"] < flops["32"]


def test_a_batch_above_the_apis_limit_is_one_clear_line(exported: dict) -> None:
    done = run_script(
        "-m", "bench.bench_api_cost", "--checkpoint", str(exported["checkpoint"]),
        "--export-dir", str(exported["export_dir"]), "--batch-sizes", "65",
    )  # fmt: skip
    assert done.returncode == 2 and "from 1 to 64" in done.stderr and "Traceback" not in done.stderr
