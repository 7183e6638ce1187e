"""The API benchmark runs end to end and reports every path it promises (not a timing test)."""

from __future__ import annotations

import json

from conftest import run_script


def test_small_api_benchmark_reports_every_path_without_errors(exported: dict, tmp_path) -> None:
    out = tmp_path / "bench_api.json"
    result = run_script(
        "bench_api.py", "--export-dir", str(exported["export_dir"]), "--requests", "200", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    for path in ("raw", "api", "raw_batch", "api_batch"):
        figures = report[path]
        assert figures["per_s"] > 0 and 0 < figures["p50_ms"] <= figures["p99_ms"]
    assert report["api"]["requests"] == 200 and report["api"]["errors"] == 0
    assert report["api_batch"]["requests"] == 10 and report["api_batch"]["errors"] == 0
    markdown = out.with_suffix(".md").read_text()
    assert "| POST /predict, 2 clients |" in markdown and "/predict throughput ≥ 80% of raw" in markdown
    assert markdown in result.stdout


def test_bad_arguments_are_one_clear_line(exported: dict) -> None:
    result = run_script("bench_api.py", "--export-dir", str(exported["export_dir"]), "--requests", "10")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --requests must be at least 64, --concurrency and --threads at least 1"


def test_missing_image_is_named(exported: dict) -> None:
    result = run_script(
        "bench_api.py", "--export-dir", str(exported["export_dir"]), "--requests", "64", "--image", "no/such:image"
    )
    assert result.returncode == 2
    assert "no image 'no/such:image' found with docker or podman" in result.stderr
