"""The batching benchmark runs end to end, with either client, and reports every path and target (not a timing test)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conftest import run_script

PATHS = ("def", "dynamic", "raw", "raw_batch")
TARGETS = (
    "| 2 users: /predict/dynamic throughput ≥ 2× /predict |",
    "| 2 users: /predict/dynamic p99 ≤ 25 ms |",
    "| 1 user(s): /predict/dynamic p50 ≤ /predict p50 + 0.5 ms |",
    "| zero errors | 0 | met |",
)


def check_report(out: Path, stdout: str, client: str) -> dict:
    report = json.loads(out.read_text())
    assert report["client"] == client and set(report["users"]) == {"1", "2"}
    for users, level in report["users"].items():
        for path in PATHS:
            figures = level[path]
            assert figures["per_s"] > 0 and 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"], (
                users,
                path,
            )
        for path in ("def", "dynamic"):
            assert level[path]["errors"] == 0 and level[path]["requests"] > 0, (users, path)
    cost = report["client_cost"]
    assert cost["users"] == 2 and cost["own_ms"] > 0 and cost["locust_ms"] > 0
    markdown = out.with_suffix(".md").read_text()
    assert markdown in stdout
    for users in ("1", "2"):
        assert (
            f"| {users}, POST /predict (`def`) |" in markdown
            and f"| {users}, POST /predict/dynamic (batcher) |" in markdown
        )
    for target in TARGETS:
        assert target in markdown, target
    assert markdown.count(" met |") == 4  # every target says met or NOT met
    assert "Locust" in markdown and "http.client threads" in markdown
    return report


@pytest.mark.parametrize("client", ["own", "locust"])
def test_tiny_batching_benchmark_reports_every_path_and_target(exported: dict, tmp_path: Path, client: str) -> None:
    out = tmp_path / "bench_batching.json"
    result = run_script(
        "-m", "bench.bench_batching", "--export-dir", str(exported["export_dir"]), "--users", "1", "2",
        "--requests", "60", "--seconds", "3", "--client", client, "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    check_report(out, result.stdout, client)
    # Locust's own CSV (what a learner reads), one per endpoint and number of users in the last run at least.
    stats = tmp_path / "locust" / "predict_dynamic_2u_stats.csv"
    with stats.open(newline="") as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    assert int(rows["Aggregated"]["Request Count"]) > 0 and rows["Aggregated"]["Failure Count"] == "0"


def test_bad_arguments_are_one_clear_line(exported: dict) -> None:
    result = run_script("-m", "bench.bench_batching", "--export-dir", str(exported["export_dir"]), "--users", "0")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: --users, --threads and --seconds must be at least 1, --requests at least the most users"
    )
