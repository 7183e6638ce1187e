"""The API benchmark runs end to end and reports every path it promises (not a timing test)."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from bench.bench_api import ceiling_row
from bench.http_floor import bare_app, fastapi_app
from conftest import run_script


def test_small_api_benchmark_reports_every_path_without_errors(exported: dict, tmp_path) -> None:
    out = tmp_path / "bench_api.json"
    result = run_script(
        "-m", "bench.bench_api", "--export-dir", str(exported["export_dir"]), "--requests", "200", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    for path in ("raw", "api", "raw_batch", "api_batch", "floor_fastapi", "floor_fastapi_async", "floor_bare"):
        figures = report[path]
        assert figures["per_s"] > 0 and 0 < figures["p50_ms"] <= figures["p99_ms"]
    for path in ("api", "floor_fastapi", "floor_fastapi_async", "floor_bare"):
        assert report[path]["requests"] == 200 and report[path]["errors"] == 0, path
    assert report["api_batch"]["requests"] == 10 and report["api_batch"]["errors"] == 0
    markdown = out.with_suffix(".md").read_text()
    assert "| POST /predict, 2 clients |" in markdown and "/predict throughput ≥ 80% of raw" in markdown
    assert markdown.count("| ceiling for /predict: ") == 3
    assert markdown in result.stdout


def test_the_floor_apps_answer_like_the_api_without_a_model() -> None:
    """The floors must do the API's HTTP work: same validation, same response shape, no model."""
    with TestClient(fastapi_app) as client:
        for path in ("/predict", "/predict-async"):
            answer = client.post(path, json={"text": "The dog sleeps."})
            assert answer.status_code == 200
            assert answer.json() == {
                "text": "The dog sleeps.",
                "label": "acceptable",
                "score": 0.9,
                "probabilities": {"unacceptable": 0.1, "acceptable": 0.9},
            }
            assert client.post(path, json={"text": "   "}).status_code == 422  # app.py's schemas validate
    with TestClient(bare_app) as client:
        answer = client.post("/predict", json={"text": "The dog sleeps."})
        assert answer.status_code == 200 and answer.json()["label"] == "acceptable"


def test_the_ceiling_adds_the_floor_and_the_model_costs() -> None:
    """1 / (1/floor + 1/raw): a floor as fast as the model leaves at most half of raw."""
    assert (
        ceiling_row("same speed", 1000, 1000)
        == "| ceiling for /predict: same speed + the model | 50% of raw | target out of reach |"
    )
    assert ceiling_row("fast", 9000, 1000).endswith("| 90% of raw | target within reach |")


def test_bad_arguments_are_one_clear_line(exported: dict) -> None:
    result = run_script("-m", "bench.bench_api", "--export-dir", str(exported["export_dir"]), "--requests", "10")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --requests must be at least 64, --concurrency and --threads at least 1"


def test_missing_image_is_named(exported: dict) -> None:
    result = run_script(
        "-m", "bench.bench_api",
        "--export-dir",
        str(exported["export_dir"]),
        "--requests",
        "64",
        "--image",
        "no/such:image",
    )
    assert result.returncode == 2
    assert "no image 'no/such:image' found with docker or podman" in result.stderr
    # Checked before the load: no request was measured (no progress bar) before the error.
    assert "POST /predict" not in result.stderr and "raw" not in result.stderr
