"""The Lambda handler on committed events of every shape it accepts, and on malformed ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from inference_onnx import ColaOnnxPredictor
from source import WEEK_DIR

EVENTS = Path(__file__).parent / "fixtures" / "events"
GOOD = ["rest_v1.json", "http_v2.json", "http_v2_base64.json", "direct.json"]
SENTENCE = "Anna will helps the children."


def event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


@pytest.mark.parametrize("name", GOOD)
def test_every_event_shape_is_answered_like_the_model(lambda_module: ModuleType, exported: dict, name: str) -> None:
    answer = lambda_module.handler(event(name), None)
    assert answer["statusCode"] == 200
    assert answer["headers"] == {"Content-Type": "application/json"} and answer["isBase64Encoded"] is False
    body = json.loads(answer["body"])
    expected = ColaOnnxPredictor(exported["export_dir"], "fp32").predict(SENTENCE)
    assert body["text"] == SENTENCE and body["label"] == expected["label"]
    assert body["probabilities"]["acceptable"] == pytest.approx(expected["probabilities"]["acceptable"], abs=1e-6)


BAD = [
    ("bad_rest_v1_truncated_json.json", 400, "the body is not valid JSON"),
    ("bad_http_v2_no_body.json", 400, "the request has no body"),
    ("bad_http_v2_whitespace_text.json", 400, "text is only whitespace"),
    ("bad_http_v2_number_text.json", 400, "text: Input should be a valid string"),
    ("bad_http_v2_broken_base64.json", 400, "marked base64 but does not decode"),
    ("bad_http_v2_get.json", 405, "use POST, not GET"),
    ("bad_direct_empty_sentence.json", 400, "sentence: String should have at least 1 character"),
    ("bad_direct_list.json", 400, "sentence: Input should be a valid string"),
    ("bad_unknown_shape.json", 400, "unknown event"),
]


@pytest.mark.parametrize(("name", "status", "message"), BAD, ids=[b[0] for b in BAD])
def test_malformed_events_get_a_4xx_that_says_why(
    lambda_module: ModuleType, name: str, status: int, message: str
) -> None:
    answer = lambda_module.handler(event(name), None)
    assert answer["statusCode"] == status
    assert message in json.loads(answer["body"])["error"]


@pytest.mark.parametrize("value", [None, "a string", 42, ["list"]], ids=["null", "string", "number", "list"])
def test_an_event_that_is_not_an_object_is_a_400(lambda_module: ModuleType, value: object) -> None:
    answer = lambda_module.handler(value, None)
    assert answer["statusCode"] == 400 and "must be a JSON object" in json.loads(answer["body"])["error"]


def test_the_model_is_loaded_once_at_import_not_per_event(lambda_module: ModuleType) -> None:
    predictor = lambda_module.PREDICTOR
    for _ in range(3):
        lambda_module.handler(event("direct.json"), None)
    assert lambda_module.PREDICTOR is predictor


def test_a_missing_model_fails_the_init_with_a_clear_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import lambda_handler"],
        cwd=WEEK_DIR,
        env={**os.environ, "MODEL_DIR": str(tmp_path / "nowhere")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert f"no ONNX export at {tmp_path / 'nowhere'}" in result.stderr


def test_the_handler_imports_no_torch(exported: dict) -> None:
    code = (
        "import sys, lambda_handler\n"
        "print(sorted(m for m in ('torch', 'lightning', 'transformers') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=WEEK_DIR, env={**os.environ, "MODEL_DIR": str(exported["export_dir"])},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
