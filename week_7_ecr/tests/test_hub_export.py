"""The ONNX export of a model trained on the Hub source, for each base model a learner can select.

Trained and exported as a learner does (`train.py data.source=hub`, then `convert_model_to_onnx.py`)
against the Hub stand-in (tests/helpers/hub_server.py): ONNX Runtime's fused graph agrees with
PyTorch within 1e-4, and the int8 variant is quantized, fused and answers like fp32.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import onnx
import pytest

from helpers.hub_repos import glue_splits
from helpers.hub_runs import WEEK_DIR, hub_export, model_options
from helpers.hub_server import shared_hub
from inference_onnx import CONFIG_NAME, MODEL_FILES, ColaOnnxPredictor

PARITY = 1e-4  # max |probability difference| PyTorch vs ONNX Runtime fp32, as convert_model_to_onnx.py checks
SENTENCES = 64  # validation sentences compared (the test's time; convert checks its own examples too)


@pytest.fixture(scope="module", params=sorted(model_options()))
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    export = hub_export(tmp_path_factory.getbasetemp(), request.param)
    assert export["done"].returncode == 0, export["done"].stderr[-4000:]
    return {**export, "hub_name": model_options()[request.param]}


def sentences() -> list[str]:
    return [row["sentence"] for row in glue_splits(WEEK_DIR / "data")["validation"][:SENTENCES]]


def test_export_checks_parity_and_names_the_hub_model(exported: dict) -> None:
    logged = re.search(
        r"parity: max \|probability difference\| PyTorch vs ONNX Runtime = (\S+)", exported["done"].stderr
    )
    assert logged, exported["done"].stderr[-3000:]
    assert float(logged.group(1)) <= PARITY
    config = json.loads((exported["export_dir"] / CONFIG_NAME).read_text())
    assert config["base_model"] == exported["hub_name"]
    assert (exported["export_dir"] / "tokenizer.json").is_file()  # serving needs no Hub: the tokenizer travels
    assert shared_hub().unknown == []


def test_fp32_matches_pytorch_on_validation_sentences(exported: dict) -> None:
    # PyTorch loads the base model from the Hub stand-in, so it runs as a command with the run's HF_ENDPOINT.
    code = (
        "import json, sys\n"
        "from inference import ColaPredictor\n"
        "predictor = ColaPredictor(sys.argv[1])\n"
        "sentences = json.loads(sys.stdin.read())\n"
        "print(json.dumps([r['probabilities'] for r in predictor.predict_batch(sentences)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(exported["checkpoint"])], input=json.dumps(sentences()),
        cwd=WEEK_DIR, env=exported["env"], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    torch_probs = np.array([list(p.values()) for p in json.loads(done.stdout.strip().splitlines()[-1])])
    onnx_results = ColaOnnxPredictor(exported["export_dir"], "fp32").predict_batch(sentences())
    onnx_probs = np.array([list(result["probabilities"].values()) for result in onnx_results])
    assert np.abs(torch_probs - onnx_probs).max() <= PARITY


def test_int8_is_quantized_fused_and_answers_like_fp32(exported: dict) -> None:
    int8_path = exported["export_dir"] / MODEL_FILES["int8"]
    ops = [node.op_type for node in onnx.load(int8_path).graph.node]
    assert "MatMulInteger" in ops and "QAttention" in ops and "Attention" not in ops
    fp32 = ColaOnnxPredictor(exported["export_dir"], "fp32").predict_batch(sentences())
    int8 = ColaOnnxPredictor(exported["export_dir"], "int8").predict_batch(sentences())
    difference = max(abs(a["score"] - b["score"]) for a, b in zip(fp32, int8, strict=True))
    assert difference < 0.05, difference
