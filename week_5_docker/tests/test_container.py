"""The image is really built and run: it answers like the in-process model, as a non-root user,
with a working HEALTHCHECK, nothing from the build context it should not have, and a clear
start-up error when the model is missing.

Docker is used when it answers, else podman (see container_engine.py). With neither, these
tests are skipped with the reason shown by `pytest -rs`; CI sets MLOPS_REQUIRE_CONTAINERS=1,
which turns that skip into a failure, so CI can never pass without building the image.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import container_engine as engine
from helpers import containers, image_secrets
from inference_onnx import ColaOnnxPredictor
from source import WEEK_DIR, read_split

IMAGE = "mlops-basics/cola-api:test"
# A fake AWS key (AWS's documentation example): a layer holding it must fail the image's secret scan.
PLANTED_KEY = Path(__file__).parent / "fixtures" / "planted_aws_key.env"
PORT = 8000
# Planted in the build context; none of it may reach the image.
CANARY = "canary-4f1d0c2e-not-a-real-key"
APP_FILES = {
    "app.py",
    "batcher.py",
    "errors.py",
    "inference_onnx.py",
    "requirements-serve.txt",
    "schemas.py",
    "settings.py",
    "source.py",
}


@pytest.fixture(scope="module")
def container_engine() -> str:
    found, why = engine.find_engine()
    if found is None:
        if os.environ.get("MLOPS_REQUIRE_CONTAINERS") == "1":
            pytest.fail(f"MLOPS_REQUIRE_CONTAINERS=1 but {why}")
        pytest.skip(f"container tests skipped: {why}")
    return found


@pytest.fixture(scope="module")
def build_context(exported: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the week as a learner has it after `convert_model_to_onnx.py`, plus things that must stay out."""
    context = tmp_path_factory.mktemp("context")
    for path in WEEK_DIR.iterdir():
        if path.is_file():
            shutil.copy2(path, context / path.name)
    shutil.copytree(exported["export_dir"], context / "artifacts" / "onnx")
    # What a learner's folder also holds: keys in .env, a checkpoint, a W&B run. .dockerignore must keep them out.
    (context / ".env").write_text(f"AWS_SECRET_ACCESS_KEY={CANARY}\nWANDB_API_KEY={CANARY}\n")
    (context / "artifacts" / "checkpoints").mkdir()
    (context / "artifacts" / "checkpoints" / "best.ckpt").write_text(CANARY)
    (context / "wandb").mkdir()
    (context / "wandb" / "debug.log").write_text(CANARY)
    return context


@pytest.fixture(scope="module")
def image(container_engine: str, build_context: Path) -> Iterator[str]:
    engine.build(build_context, IMAGE, engine=container_engine)
    yield IMAGE
    containers.remove_test_containers(container_engine)


@pytest.fixture(scope="module")
def service(image: str, container_engine: str) -> Iterator[containers.RunningContainer]:
    with containers.running_container(image, port=PORT, ready_path="/ready", engine=container_engine) as running:
        yield running


def post(url: str, body: object) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_container_answers_like_the_in_process_model(service: containers.RunningContainer, exported: dict) -> None:
    sentences = [row["sentence"] for row in read_split("validation")][:20]
    predictor = ColaOnnxPredictor(exported["export_dir"], "fp32")
    for sentence in sentences:
        status, body = post(service.url + "/predict", {"text": sentence})
        assert status == 200, body
        expected = predictor.predict(sentence)
        assert body["label"] == expected["label"]
        for label, probability in expected["probabilities"].items():
            assert body["probabilities"][label] == pytest.approx(probability, abs=1e-5)
    status, body = post(service.url + "/predict/batch", {"texts": sentences})
    assert status == 200
    assert [p["label"] for p in body["predictions"]] == [p["label"] for p in predictor.predict_batch(sentences)]


def test_container_rejects_bad_input_with_4xx(service: containers.RunningContainer) -> None:
    status, body = post(service.url + "/predict", {"text": "   "})
    assert status == 422
    assert "text is only whitespace" in body["error"]
    status, body = post(service.url + "/predict/batch", {"texts": ["x"] * 65})
    assert status == 422


def test_healthcheck_reports_healthy(service: containers.RunningContainer) -> None:
    containers.wait_healthy(service.cid, timeout_s=60, engine=service.engine)


def test_runs_as_an_unprivileged_user(image: str, service: containers.RunningContainer) -> None:
    assert engine.inspect_image(image, service.engine)["config"]["User"] == "10001:10001"
    assert containers.exec_in(service.cid, "id", "-u", engine=service.engine).strip() == "10001"


def test_image_holds_only_the_service_and_the_model(image: str, container_engine: str, exported: dict) -> None:
    listing = containers.run_to_completion(image, "find", "/app", "-type", "f", engine=container_engine).stdout.split()
    expected_model = {f"/app/model/{p.name}" for p in exported["export_dir"].iterdir()}
    assert set(listing) == {f"/app/{name}" for name in APP_FILES} | expected_model


def test_no_secret_in_any_layer_env_or_history(image: str, container_engine: str) -> None:
    details = engine.inspect_image(image, container_engine)
    env_names = [item.split("=", 1)[0] for item in details["config"].get("Env") or []]
    assert not [name for name in env_names if any(word in name for word in ("KEY", "SECRET", "TOKEN", "PASSWORD"))]
    assert CANARY not in json.dumps(details)
    # Every file of every layer, read inside the image: the canary from the build context is nowhere.
    result = containers.run_to_completion(
        image, "grep", "-rlF", CANARY, "/", "--exclude-dir=proc", "--exclude-dir=sys", "--exclude-dir=dev",
        user="0", engine=container_engine,
    )  # fmt: skip
    assert result.returncode == 1, f"grep found the canary (or failed):\n{result.stdout}{result.stderr}"


def test_missing_model_stops_the_container_with_a_clear_message(image: str, container_engine: str) -> None:
    result = containers.run_to_completion(image, env={"MODEL_DIR": "/app/no-model-here"}, engine=container_engine)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "cannot start the service: no ONNX export at /app/no-model-here" in output, output


def base_image() -> str:
    """The image the week's Dockerfile builds FROM."""
    lines = (WEEK_DIR / "Dockerfile").read_text().splitlines()
    return next(line.split()[1] for line in lines if line.startswith("FROM "))


def test_detect_secrets_finds_nothing_in_the_images_own_files(image: str, container_engine: str) -> None:
    """detect-secrets over every file the Dockerfile's steps put in the image, and over its configuration."""
    assert image_secrets.scan_image(image, base_image(), container_engine) == []


def test_the_image_scan_fails_on_a_key_baked_into_a_layer(image: str, container_engine: str, tmp_path: Path) -> None:
    """A Dockerfile edit that copies a key file into the image: the same scan names it (the planted fake key)."""
    shutil.copy(PLANTED_KEY, tmp_path / "settings.env")
    (tmp_path / "Dockerfile").write_text(f"FROM {image}\nCOPY settings.env /app/settings.env\n")
    tag = "mlops-basics/cola-api:planted-key"
    engine.build(tmp_path, tag, engine=container_engine)
    try:
        found = image_secrets.scan_image(tag, base_image(), container_engine)
    finally:
        engine.remove_image(tag, container_engine)
    assert found == ["app/settings.env:4: AWS Access Key"]
