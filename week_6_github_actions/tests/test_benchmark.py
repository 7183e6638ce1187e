"""A smoke run of bench/benchmark.py: every engine measured and reported. Not a timing test."""

from __future__ import annotations

import json

import pytest

from conftest import run_script

ENGINES = ["PyTorch eager", "ONNX Runtime fp32", "ONNX Runtime int8"]


def test_tiny_benchmark_reports_all_three_engines(exported: dict, tmp_path) -> None:
    out = tmp_path / "bench.json"
    done = run_script(
        "-m", "bench.benchmark",
        "--checkpoint", str(exported["checkpoint"]),
        "--export-dir", str(exported["export_dir"]),
        "--repeats", "5", "--warmup", "1", "--rounds", "1", "--threads", "1",
        "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert [row.split("|")[1].strip() for row in rows[1:]] == ENGINES
    assert "threads: 1" in done.stdout and "Machine:" in done.stdout

    report = json.loads(out.read_text())
    assert [r["engine"] for r in report["results"]] == ENGINES
    for result in report["results"]:
        assert 0 < result["p50_ms"] <= result["p95_ms"]
        assert set(result["throughput"]) == {"32", "64"} and min(result["throughput"].values()) > 0
        assert 0.5 < result["accuracy"] <= 1 and result["size_mb"] > 0
    # Eager PyTorch and ONNX fp32 run the same weights on the same inputs.
    assert report["results"][0]["accuracy"] == report["results"][1]["accuracy"]
    assert len(report["targets"]) == 3 and all(isinstance(t["met"], bool) for t in report["targets"])
    change = report["targets"][2]
    accuracies = [r["accuracy"] for r in report["results"]]
    assert change["measured"] == pytest.approx(100 * (accuracies[2] - accuracies[1]))
    assert change["met"] == (abs(change["measured"]) <= 1.0)
    assert out.with_suffix(".md").read_text().startswith("| engine |")


def test_missing_checkpoint_is_one_clear_line(exported: dict, tmp_path) -> None:
    done = run_script(
        "-m",
        "bench.benchmark",
        "--checkpoint",
        str(tmp_path / "none.ckpt"),
        "--export-dir",
        str(exported["export_dir"]),
    )
    assert done.returncode == 2
    assert "python train.py" in done.stderr and "Traceback" not in done.stderr
