"""The Lambda handler serving the ONNX export of each base model trained on the Hub stand-in.

The export carries its tokenizer, so Lambda's init phase never asks the Hub (HF_HUB_OFFLINE=1 is
set, as in every test of this session); each event shape gets the export's own answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from conftest import import_lambda_handler
from helpers.hub_runs import hub_export, model_options
from inference_onnx import ColaOnnxPredictor

EVENTS = Path(__file__).parent / "fixtures" / "events"  # the committed events test_lambda_handler.py uses
GOOD = ["rest_v1.json", "http_v2.json", "http_v2_base64.json", "direct.json"]
SENTENCE = "Anna will helps the children."  # the sentence in each of them


@pytest.fixture(scope="module", params=sorted(model_options()))
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    export = hub_export(tmp_path_factory.getbasetemp(), request.param)
    assert export["done"].returncode == 0, export["done"].stderr[-4000:]
    return {**export, "hub_name": model_options()[request.param]}


@pytest.fixture(scope="module")
def hub_lambda(exported: dict) -> ModuleType:
    return import_lambda_handler(exported["export_dir"])


def test_lambda_answers_every_event_shape_with_the_hub_export(hub_lambda: ModuleType, exported: dict) -> None:
    assert json.loads((exported["export_dir"] / "model_config.json").read_text())["base_model"] == exported["hub_name"]
    expected = ColaOnnxPredictor(exported["export_dir"], "fp32").predict(SENTENCE)  # the committed events' sentence
    for name in GOOD:
        answer = hub_lambda.handler(json.loads((EVENTS / name).read_text()), None)
        assert answer["statusCode"] == 200, (name, answer)
        result = json.loads(answer["body"])
        assert result["text"] == SENTENCE and result["label"] == expected["label"], name
        acceptable = expected["probabilities"]["acceptable"]
        assert result["probabilities"]["acceptable"] == pytest.approx(acceptable, abs=1e-6), name
    answer = hub_lambda.handler({"sentence": ""}, None)  # bad input is still a 400, whatever the model
    assert answer["statusCode"] == 400
