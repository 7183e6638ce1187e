"""The image is built from the model in the S3 DVC remote (moto on loopback), not from the local disk."""

from __future__ import annotations

import shutil

import pytest
from test_s3_remote import s3_endpoint, s3_env  # noqa: F401 (s3_endpoint is a fixture used below)

from build_image import platform_flags
from helpers import container_engine as engine
from helpers import containers
from helpers.dvc_project import Project, md5

TAG = "mlops-basics/cola-api:from-s3"
LAMBDA_TAG = "mlops-basics/cola-lambda:from-s3"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str) -> dict:  # noqa: F811
    """A learner's repo after `dvc repro` (a 1-epoch model) and `dvc push` to S3, with the local copies deleted."""
    project = Project(tmp_path_factory.mktemp("repo"))
    project.set_params(**{"train.max_epochs": "1", "train.max_length": "32"})
    project.dvc("repro")
    project.commit("a model version")
    env = s3_env(s3_endpoint)
    project.run("python", "remote.py", "use-s3", env=env)
    project.run("python", "remote.py", "push", "-r", "s3", env=env)
    model_dir = project.week / "artifacts" / "onnx"
    original = {path.name: md5(path) for path in sorted(model_dir.iterdir())}
    shutil.rmtree(project.week / ".dvc" / "cache")
    shutil.rmtree(model_dir)
    return {"project": project, "env": env, "original": original}


def test_image_is_built_from_the_model_in_s3(project: dict, container_engine: str) -> None:
    repo: Project = project["project"]
    env = {**project["env"], "CONTAINER_ENGINE": container_engine}
    result = repo.run("python", "build_image.py", TAG, "-r", "s3", env=env)
    assert "built " + TAG in result.stdout
    pulled = {path.name: md5(path) for path in sorted((repo.week / "artifacts" / "onnx").iterdir())}
    assert pulled == project["original"]

    labels = engine.inspect_image(TAG, container_engine)["config"]["Labels"]
    lock = (repo.week / "dvc.lock").read_text()
    assert labels["org.mlops-basics.model.dvc-md5"] in lock
    assert labels["org.opencontainers.image.revision"] == repo.git("rev-parse", "--short=12", "HEAD").strip()

    files = [f"/app/model/{name}" for name in pulled]
    inside = containers.run_to_completion(TAG, "md5sum", *files, engine=container_engine).stdout
    assert {line.split()[1].rpartition("/")[2]: line.split()[0] for line in inside.splitlines()} == pulled


def test_unreachable_remote_stops_before_building(project: dict, container_engine: str) -> None:
    repo: Project = project["project"]
    env = {**project["env"], "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "CONTAINER_ENGINE": container_engine}
    repo.run("python", "remote.py", "use-s3", env=env)
    try:
        result = repo.run("python", "build_image.py", "never:built", "-r", "s3", check=False, env=env)
    finally:
        repo.run("python", "remote.py", "use-s3", env=project["env"])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot reach S3" in result.stderr
    exists = engine.engine_command(container_engine, "image", "inspect", "never:built", check=False)
    assert exists.returncode != 0, "the image must not be built when the model cannot be pulled"


def test_the_lambda_image_is_built_for_x86_64_lambda(project: dict, container_engine: str) -> None:
    """Lambda runs x86_64 (deploy_lambda.py's Architectures): the image must be linux/amd64 on any laptop."""
    repo: Project = project["project"]
    env = {**project["env"], "CONTAINER_ENGINE": container_engine}
    repo.run("python", "build_image.py", LAMBDA_TAG, "-r", "s3", "-f", "Dockerfile.lambda", env=env)
    details = engine.inspect_image(LAMBDA_TAG, container_engine)["inspect"]
    assert (details["Os"], details["Architecture"]) == ("linux", "amd64")


def test_platform_flags_only_for_the_lambda_image() -> None:
    assert platform_flags("Dockerfile", "docker") == []
    assert platform_flags("Dockerfile.lambda", "podman") == ["--platform", "linux/amd64"]
    # BuildKit would add a provenance attestation, making the pushed tag an index Lambda does not accept.
    assert platform_flags("Dockerfile.lambda", "docker") == ["--platform", "linux/amd64", "--provenance=false"]
