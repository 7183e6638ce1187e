"""push_image.py against real servers on loopback: moto for ECR's API, a real OCI registry for the image.

The image is pushed, deleted locally, pulled back by its reference, and must have the digest the
push reported and still answer /predict. Nothing of the AWS credentials used may be in the image.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from errors import CourseError
from helpers import container_engine as engine
from helpers import containers
from helpers.registry import local_registry, registry_binary
from inference_onnx import ColaOnnxPredictor
from push_image import EcrSettings, push, read_settings

REGION = "eu-west-1"
REPOSITORY = "mlops-basics/cola-api"
# What CI would have in its environment while building and pushing; none of it may reach the image.
SECRET_KEY = "wJalrXUtnFEMI-test-secret-not-real"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIATESTNOTAREALKEY1",
    "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(scope="module")
def aws(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's server on loopback, with test credentials in the environment; yields its endpoint."""
    for name, value in CREDENTIALS.items():
        monkeypatch_module.setenv(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, container_engine: str) -> Iterator[str]:
    """A registry server on loopback; without one, skipped with the reason (a failure when CI requires it)."""
    if registry_binary() is None:
        why = "no OCI registry server to push to: apt-get install docker-registry (tools/containers/setup.sh does)"
        if os.environ.get("MLOPS_REQUIRE_CONTAINERS") == "1":
            pytest.fail(why)
        pytest.skip(why)
    with local_registry(tmp_path_factory.mktemp("registry")) as address:
        yield address


def settings_for(aws: str, registry: str) -> EcrSettings:
    return EcrSettings(region=REGION, repository=REPOSITORY, endpoint_url=aws, registry_override=registry)


@pytest.fixture(scope="module")
def pushed(image: str, aws: str, registry: str, container_engine: str) -> dict:
    result = push(image, "test-1", settings_for(aws, registry), engine=container_engine)
    return {"result": result, "settings": settings_for(aws, registry)}


def test_push_creates_the_repository_in_ecr(pushed: dict, aws: str) -> None:
    ecr = boto3.client("ecr", region_name=REGION, endpoint_url=aws)
    (repository,) = ecr.describe_repositories(repositoryNames=[REPOSITORY])["repositories"]
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    assert pushed["result"].reference.endswith(f"/{REPOSITORY}:test-1")
    assert pushed["result"].digest.startswith("sha256:") and len(pushed["result"].digest) == 71


def test_pushing_again_reuses_the_repository(image: str, pushed: dict, container_engine: str) -> None:
    again = push(image, "test-2", pushed["settings"], engine=container_engine)
    assert again.digest == pushed["result"].digest  # same image, same manifest
    ecr = boto3.client("ecr", region_name=REGION, endpoint_url=pushed["settings"].endpoint_url)
    assert [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]] == [REPOSITORY]


def test_pulled_image_has_the_pushed_digest_and_answers(pushed: dict, container_engine: str, exported: dict) -> None:
    reference = pushed["result"].reference
    engine.engine_command(container_engine, "image", "rm", "--force", reference)
    tls = ["--tls-verify=false"] if container_engine == "podman" else []
    engine.engine_command(container_engine, "pull", *tls, reference, timeout_s=600)
    details = json.loads(engine.engine_command(container_engine, "image", "inspect", reference).stdout)[0]
    digests = {d.rpartition("@")[2] for d in details.get("RepoDigests", [])}
    assert pushed["result"].digest in digests
    sentence = "Anna will helps the children."
    expected = ColaOnnxPredictor(exported["export_dir"], "fp32").predict(sentence)
    with containers.running_container(reference, port=8000, ready_path="/ready", engine=container_engine) as running:
        from test_container import post

        status, body = post(running.url + "/predict", {"text": sentence})
    assert status == 200 and body["label"] == expected["label"]
    assert body["probabilities"]["acceptable"] == pytest.approx(expected["probabilities"]["acceptable"], abs=1e-5)


def test_no_aws_credential_in_the_image(pushed: dict, container_engine: str) -> None:
    details = engine.inspect_image(pushed["result"].reference, container_engine)
    everything = json.dumps(details)
    for value in CREDENTIALS.values():
        if value != "true":
            assert value not in everything
    assert "AKIA" not in everything
    env_names = [item.split("=", 1)[0] for item in details["config"].get("Env") or []]
    assert not [name for name in env_names if name.startswith("AWS_")]
    steps = " ".join(step["created_by"] for step in details["history"])
    assert "ARG" not in steps.upper().split() and "AWS_" not in steps


def test_missing_settings_name_the_variables() -> None:
    with pytest.raises(CourseError, match="set AWS_REGION and ECR_REPOSITORY"):
        read_settings({})
    assert read_settings({"AWS_DEFAULT_REGION": REGION, "ECR_REPOSITORY": "r"}).region == REGION


def test_unreachable_ecr_is_one_clear_line(image: str, container_engine: str, tmp_path: Path) -> None:
    from helpers.registry import free_port

    settings = EcrSettings(REGION, REPOSITORY, f"http://127.0.0.1:{free_port()}", None)
    with pytest.raises(CourseError, match="cannot reach http://127.0.0.1:.*check AWS_REGION, AWS_ENDPOINT_URL"):
        push(image, "x", settings, engine=container_engine)


def test_missing_credentials_are_named(image: str, aws: str, container_engine: str, monkeypatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(CourseError, match="no AWS credentials: set AWS_PROFILE"):
        push(image, "x", EcrSettings(REGION, REPOSITORY, aws, None), engine=container_engine)
