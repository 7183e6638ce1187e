"""A smoke run of bench/bench_cost.py: every cell measured, FLOPs counted exactly. Not a timing test."""

from __future__ import annotations

import json

import pytest

from conftest import WEEK_DIR, run_script


def encoder_flops(config, tokens: int) -> int:
    """A BERT classifier's matmul FLOPs for one sentence, by hand: what the counter must find.

    Per layer and token: Q, K, V and output projections (4 x 2d^2) and the feed-forward pair
    (2 x 2 d d_ff); per layer, attention scores and their weighted sum (2 x 2 L^2 d). Then the
    pooler (2d^2) and the classifier (2 d labels) on the [CLS] token only.
    """
    d, d_ff, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    per_layer = tokens * (8 * d * d + 4 * d * d_ff) + 4 * tokens * tokens * d
    return layers * per_layer + 2 * d * d + 2 * d * 2


def test_tiny_cost_run_reports_every_cell_and_counts_the_flops(exported: dict, tmp_path) -> None:
    out = tmp_path / "cost"
    done = run_script(
        "-m", "bench.bench_cost",
        "--checkpoint", str(exported["checkpoint"]), "--export-dir", str(exported["export_dir"]),
        "--lengths", "8", "16", "--batch-sizes", "1", "2", "--seconds", "0.02", "--threads", "1",
        "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert [row.split("|")[1:3] for row in rows[1:]] == [
        [" fp32 ", " 8 "], [" fp32 ", " 16 "], [" int8 ", " 8 "], [" int8 ", " 16 "]
    ]
    assert "batch 2: ms, sentences/s" in rows[0] and "fp32 matmul rate" in done.stdout

    report = json.loads(out.with_suffix(".json").read_text())
    assert len(report["cells"]) == 2 * 2 * 2 and report["matmul_gflops"] > 0
    for cell in report["cells"]:
        assert cell["latency_ms"] > 0
        assert cell["sentences_per_s"] == pytest.approx(cell["batch"] / cell["latency_ms"] * 1e3)
        flops = report["flops_per_sentence"][str(cell["tokens"])]
        assert cell["gflops_per_s"] == pytest.approx(flops * cell["sentences_per_s"] / 1e9)
    base = json.loads((WEEK_DIR / "offline_model" / "config.json").read_text())  # the session model's encoder
    for tokens in (8, 16):  # every matmul counted, the attention's too
        assert report["flops_per_sentence"][str(tokens)] == encoder_flops(base, tokens)


@pytest.mark.parametrize(
    ("option", "message"), [("2", "too short"), ("100000", "longer than the model's 512 positions")]
)
def test_impossible_lengths_are_one_clear_line(exported: dict, option: str, message: str) -> None:
    done = run_script(
        "-m", "bench.bench_cost", "--checkpoint", str(exported["checkpoint"]),
        "--export-dir", str(exported["export_dir"]), "--lengths", option, "--seconds", "0.01",
    )  # fmt: skip
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
