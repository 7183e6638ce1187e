"""The FastAPI service: answers like the ONNX model, 4xx with a message for every kind of bad input."""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app import app
from errors import CourseError
from inference_onnx import ColaOnnxPredictor
from schemas import MAX_BATCH_ITEMS, MAX_TEXT_CHARS
from settings import read_settings
from source import WEEK_DIR, read_split
from support.local_server import local_server, server_command

SENTENCES = ["The dogs are chasing a cat.", "The dogs is chasing a cat.", "Anna will helps the children."]


def validation_sentences(count: int) -> list[str]:
    return [row["sentence"] for row in read_split("validation")][:count]


@pytest.fixture(scope="module")
def client(exported: dict) -> TestClient:
    """The app in-process, started (lifespan and all) with MODEL_DIR pointing at the session's export."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODEL_DIR", str(exported["export_dir"]))
        patch.delenv("MODEL_VARIANT", raising=False)
        patch.delenv("ORT_THREADS", raising=False)
        patch.delenv("EVENTS_FILE", raising=False)
        with TestClient(app) as test_client:
            yield test_client


@pytest.fixture(scope="module")
def predictor(exported: dict) -> ColaOnnxPredictor:
    return ColaOnnxPredictor(exported["export_dir"], "fp32")


def assert_same_prediction(got: dict, expected: dict) -> None:
    assert got["label"] == expected["label"]
    assert got["score"] == pytest.approx(expected["score"], abs=1e-6)
    assert got["probabilities"].keys() == expected["probabilities"].keys()
    for label, probability in expected["probabilities"].items():
        assert got["probabilities"][label] == pytest.approx(probability, abs=1e-6)


def test_predict_answers_like_the_onnx_model(client: TestClient, predictor: ColaOnnxPredictor) -> None:
    for sentence in SENTENCES:
        response = client.post("/predict", json={"text": sentence})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["text"] == sentence
        assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert body["score"] == max(body["probabilities"].values())
        assert_same_prediction(body, predictor.predict(sentence))


def test_batch_keeps_order_and_matches_single_predictions(client: TestClient, predictor: ColaOnnxPredictor) -> None:
    texts = validation_sentences(MAX_BATCH_ITEMS)
    response = client.post("/predict/batch", json={"texts": texts})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["text"] for p in predictions] == texts
    for got, expected in zip(predictions, predictor.predict_batch(texts), strict=True):
        # Padding to the batch's longest sentence leaves each sentence's result (almost) unchanged.
        assert got["label"] == expected["label"]
        assert got["probabilities"]["acceptable"] == pytest.approx(expected["probabilities"]["acceptable"], abs=1e-5)


def test_health_and_ready(client: TestClient, exported: dict) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "model_dir": str(exported["export_dir"]),
        "variant": "fp32",
        "labels": ["unacceptable", "acceptable"],
        "model_version": json.loads((exported["export_dir"] / "model_config.json").read_text())["model_version"],
        "registered": None,  # artifacts/onnx straight from the export, not fetched from the registry
        "events": {"file": None, "status": "stdout only", "write_errors": 0, "last_error": None},
    }


def test_openapi_docs_describe_both_prediction_endpoints(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/predict", "/predict/batch", "/health", "/ready"} <= set(schema["paths"])
    text_schema = schema["components"]["schemas"]["PredictRequest"]["properties"]["text"]
    assert text_schema["maxLength"] == MAX_TEXT_CHARS
    assert re.search(text_schema["pattern"], "  a ") and not re.search(text_schema["pattern"], " \t\u3000\x1c")


def test_openapi_documents_every_status_with_its_body(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    def body_of(path: str, method: str, status: str) -> str:
        return paths[path][method]["responses"][status]["content"]["application/json"]["schema"]["$ref"]

    for path in ("/predict", "/predict/batch"):
        assert set(paths[path]["post"]["responses"]) == {"200", "422", "500"}
        assert body_of(path, "post", "422") == "#/components/schemas/BadInput"
        assert body_of(path, "post", "500") == "#/components/schemas/ErrorBody"
    assert body_of("/ready", "get", "503") == "#/components/schemas/NotReady"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"text": "The dog \xff sleeps."}', "the body is not UTF-8 (invalid start byte at byte 18)"),
        (b"[" * 100_000, "the body's JSON is nested too deeply to read"),
        (b'{"text": "The dog \\ud800 sleeps."}', "text: Input should be a valid string, unable to parse"),
        (b'{"\\udfff": 1}', "the body: Input should be a valid string"),
    ],
    ids=["not-utf8", "nested-too-deeply", "lone-surrogate", "lone-surrogate-key"],
)
def test_a_body_that_cannot_be_decoded_is_a_422_like_any_bad_input(
    client: TestClient, content: bytes, message: str
) -> None:
    """FastAPI alone answers these with an undocumented 400 (or a 500 when the error echoes a surrogate)."""
    response = client.post("/predict", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    body = response.json()
    assert message in body["error"]
    assert "\n" not in body["error"]
    assert body["detail"][0]["loc"][0] == "body"


def test_wrong_method_and_path_say_what_to_do(client: TestClient) -> None:
    wrong_method = client.delete("/predict")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"
    assert wrong_method.json()["error"] == "DELETE is not allowed on /predict: use POST"
    wrong_path = client.post("/predicts", json={"text": "x"})
    assert wrong_path.status_code == 404
    assert wrong_path.json()["error"] == "there is no /predicts: the endpoints are listed at /docs"


BAD_BODIES = [
    pytest.param({"text": ""}, "text: String should have at least 1 character", id="empty"),
    pytest.param({"text": " \n\t "}, "text is only whitespace", id="whitespace"),
    pytest.param({"text": "a" * (MAX_TEXT_CHARS + 1)}, f"at most {MAX_TEXT_CHARS} characters", id="too-long"),
    pytest.param({"text": 123}, "text: Input should be a valid string", id="number"),
    pytest.param({"text": ["a", "b"]}, "text: Input should be a valid string", id="list"),
    pytest.param({"txt": "The dog sleeps."}, "txt: Extra inputs are not permitted", id="misspelt-field"),
    pytest.param({}, "text: Field required", id="no-field"),
    pytest.param(["The dog sleeps."], "the body must be a JSON object", id="json-list"),
]


@pytest.mark.parametrize(("body", "message"), BAD_BODIES)
def test_bad_input_is_a_422_that_says_what_is_wrong(client: TestClient, body: object, message: str) -> None:
    response = client.post("/predict", json=body)
    assert response.status_code == 422
    assert message in response.json()["error"]


@pytest.mark.parametrize(
    ("content", "content_type", "message"),
    [
        (b'{"text": "The dog', "application/json", "the body is not valid JSON"),
        (b"The dog sleeps.", "text/plain", "the body was sent as text/plain: send JSON"),
        (b"\xff\xfe not UTF-8", "text/plain", "the body was sent as text/plain: send JSON"),
        (b"", "application/json", "the body is empty"),
    ],
    ids=["truncated-json", "plain-text", "plain-bytes-not-utf8", "empty-body"],
)
def test_a_body_that_is_not_json_is_a_422(client: TestClient, content: bytes, content_type: str, message: str) -> None:
    response = client.post("/predict", content=content, headers={"content-type": content_type})
    assert response.status_code == 422
    assert message in response.json()["error"]


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        ([], "texts: List should have at least 1 item"),
        (["The dog sleeps."] * (MAX_BATCH_ITEMS + 1), f"texts: List should have at most {MAX_BATCH_ITEMS} items"),
        (["The dog sleeps.", 7, "   "], "texts.1: Input should be a valid string; texts.2: Value error"),
        ("The dog sleeps.", "texts: Input should be a valid list"),
    ],
    ids=["empty-list", "too-many", "bad-items-named-by-index", "string-not-list"],
)
def test_bad_batches_are_rejected_with_the_item_named(client: TestClient, texts: object, message: str) -> None:
    response = client.post("/predict/batch", json={"texts": texts})
    assert response.status_code == 422
    assert message in response.json()["error"]


def test_without_a_model_ready_is_503_and_predict_a_500_with_an_error_line(exported: dict) -> None:
    """After shutdown (the lifespan dropped the model) and before exit: the documented 503 and 500 bodies."""
    serving = app.state.predictor  # the module's `client` shares this app object: restored below
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MODEL_DIR", str(exported["export_dir"]))
            with TestClient(app):
                pass  # start-up loads the model, shutdown drops it
        assert app.state.predictor is None
        unstarted = TestClient(app, raise_server_exceptions=False)  # no `with`: the lifespan does not run
        ready = unstarted.get("/ready")
        assert ready.status_code == 503
        assert ready.json() == {"status": "not ready", "error": "the model is not loaded"}
        failed = unstarted.post("/predict", json={"text": "The dog sleeps."})
        assert failed.status_code == 500
        assert failed.json() == {"error": "the service failed on this request (RuntimeError): see its log"}
    finally:
        app.state.predictor = serving


def test_cpu_bound_endpoints_do_not_block_the_event_loop() -> None:
    """`def` endpoints run in FastAPI's thread pool; an `async def` doing model work would stall every request."""
    endpoints = {route.path: route.endpoint for route in app.routes if hasattr(route, "endpoint")}
    assert not inspect.iscoroutinefunction(endpoints["/predict"])
    assert not inspect.iscoroutinefunction(endpoints["/predict/batch"])


def test_settings_errors_name_the_variable() -> None:
    assert read_settings({}).variant == "fp32"
    assert read_settings({"MODEL_VARIANT": "int8", "ORT_THREADS": "2"}).threads == 2
    with pytest.raises(CourseError, match="MODEL_VARIANT='fp16' is not a model variant"):
        read_settings({"MODEL_VARIANT": "fp16"})
    with pytest.raises(CourseError, match="ORT_THREADS='two' is not a positive whole number"):
        read_settings({"ORT_THREADS": "two"})


def test_missing_model_stops_the_start_up_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(CourseError, match="no ONNX export at"), TestClient(app):
        pass


# ----------------------------------------------------------------------------- a real server


def test_real_server_on_loopback_answers_concurrent_clients(exported: dict, predictor: ColaOnnxPredictor) -> None:
    sentences = validation_sentences(24)
    expected = {s: predictor.predict(s) for s in sentences}
    with local_server(exported["export_dir"]) as url, httpx.Client(base_url=url, trust_env=False) as http:
        with ThreadPoolExecutor(max_workers=8) as pool:
            responses = list(pool.map(lambda s: http.post("/predict", json={"text": s}), sentences))
        assert [r.status_code for r in responses] == [200] * len(sentences)
        for sentence, response in zip(sentences, responses, strict=True):
            assert_same_prediction(response.json(), expected[sentence])
        assert http.post("/predict", json={"text": "  "}).status_code == 422


def test_int8_variant_is_served_when_asked(exported: dict) -> None:
    with local_server(exported["export_dir"], env={"MODEL_VARIANT": "int8", "ORT_THREADS": "1"}) as url:
        ready = httpx.get(url + "/ready", trust_env=False).json()
        assert ready["variant"] == "int8"
        answer = httpx.post(url + "/predict", json={"text": SENTENCES[0]}, trust_env=False).json()
    assert_same_prediction(answer, ColaOnnxPredictor(exported["export_dir"], "int8").predict(SENTENCES[0]))


def start_up_output(model_dir: Path) -> subprocess.CompletedProcess:
    """Start `uvicorn app:app` with MODEL_DIR=model_dir and return how it ended."""
    environment = {**os.environ, "MODEL_DIR": str(model_dir)}
    return subprocess.run(
        server_command(port=0), cwd=WEEK_DIR, env=environment, capture_output=True, text=True, timeout=60
    )


def test_server_with_no_model_exits_with_a_clear_message(tmp_path: Path) -> None:
    result = start_up_output(tmp_path / "nowhere")
    assert result.returncode != 0
    assert f"cannot start the service: no ONNX export at {tmp_path / 'nowhere'}" in result.stderr
    assert "make one with `dvc repro`" in result.stderr
    assert "Traceback" not in result.stderr  # one line says it all


def test_server_with_a_corrupt_model_exits_with_a_clear_message(exported: dict, tmp_path: Path) -> None:
    broken = tmp_path / "onnx"
    shutil.copytree(exported["export_dir"], broken)
    model = broken / "model.onnx"
    model.write_bytes(model.read_bytes()[:2000])  # a truncated download
    result = start_up_output(broken)
    assert result.returncode != 0
    assert f"cannot start the service: cannot load {model}" in result.stderr
    assert "re-create it with `python convert_model_to_onnx.py`" in result.stderr
    assert "Traceback" not in result.stderr


def test_serving_path_does_not_import_torch(exported: dict) -> None:
    code = (
        "import sys; from fastapi.testclient import TestClient; from app import app\n"
        "with TestClient(app) as c: assert c.post('/predict', json={'text': 'A dog.'}).status_code == 200\n"
        "heavy = sorted(m for m in ('torch', 'lightning', 'transformers') if m in sys.modules); print(heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=WEEK_DIR,
        env={**os.environ, "MODEL_DIR": str(exported["export_dir"])},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    # stdout: the prediction's event line (week 9), then the list of heavy modules imported.
    assert result.stdout.strip().splitlines()[-1] == "[]"
