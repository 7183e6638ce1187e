"""The API serving the ONNX export of a model trained on the Hub source (tests/helpers/hub_server.py).

The export carries its tokenizer, so the service itself never asks the Hub: it is started here with
HF_HUB_OFFLINE=1 set (as in every test of this session) and answers like the export.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app import app
from helpers.hub_repos import glue_splits
from helpers.hub_runs import WEEK_DIR, hub_export, model_options
from inference_onnx import ColaOnnxPredictor


@pytest.fixture(scope="module", params=sorted(model_options()))
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    export = hub_export(tmp_path_factory.getbasetemp(), request.param)
    assert export["done"].returncode == 0, export["done"].stderr[-4000:]
    return export


def test_the_api_serves_the_hub_export(exported: dict) -> None:
    texts = [row["sentence"] for row in glue_splits(WEEK_DIR / "data")["validation"][:8]]
    expected = ColaOnnxPredictor(exported["export_dir"], "fp32").predict_batch(texts)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODEL_DIR", str(exported["export_dir"]))
        patch.delenv("MODEL_VARIANT", raising=False)
        with TestClient(app) as client:
            assert client.get("/health").status_code == 200
            for text, want in zip(texts[:2], expected, strict=False):
                response = client.post("/predict", json={"text": text})
                assert response.status_code == 200, response.text
                assert response.json()["label"] == want["label"]
                assert response.json()["score"] == pytest.approx(want["score"], abs=1e-5)
            response = client.post("/predict/batch", json={"texts": texts})
            assert response.status_code == 200, response.text
            assert [p["label"] for p in response.json()["predictions"]] == [p["label"] for p in expected]
