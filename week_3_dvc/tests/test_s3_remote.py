"""The S3 remote, against a real S3 API on loopback (moto's server), and its error messages."""

from __future__ import annotations

import shutil
import socket

import boto3
import pytest
from moto.server import ThreadedMotoServer

from helpers.dvc_project import Project, md5

BUCKET = "course-dvc"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",  # no 1-second probe of the instance metadata service
}


@pytest.fixture(scope="module")
def s3_endpoint() -> str:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, **lowercase(CREDENTIALS)).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def lowercase(env: dict) -> dict:
    return {"aws_access_key_id": env["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
            "region_name": env["AWS_DEFAULT_REGION"]}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The week with only the prepare stage run: data to push, no training needed."""
    project = Project(tmp_path_factory.mktemp("repo"))
    project.dvc("repro", "prepare")
    return project


def s3_env(endpoint: str, url: str = f"s3://{BUCKET}/store") -> dict:
    return {**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, "DVC_S3_URL": url}


def test_s3_round_trip_restores_identical_files(project: Project, s3_endpoint: str) -> None:
    env = s3_env(s3_endpoint)
    week = project.week
    project.run("python", "remote.py", "use-s3", env=env)
    assert "s3://" not in (week / ".dvc" / "config").read_text()  # only in the git-ignored config.local
    assert f"s3://{BUCKET}/store" in (week / ".dvc" / "config.local").read_text()
    data = week / "artifacts/prepared/train.csv"
    before = md5(data)

    # Only the prepare stage ran here: push and pull its outputs (training is test_dvc_pipeline's job).
    push = project.run("python", "remote.py", "push", "-r", "s3", "prepare", env=env)
    assert f"bucket {BUCKET}" in push.stdout
    keys = [obj["Key"] for obj in boto3.client("s3", endpoint_url=s3_endpoint, **lowercase(CREDENTIALS))
            .list_objects_v2(Bucket=BUCKET, Prefix="store/")["Contents"]]
    assert any(before[2:] in key for key in keys)  # DVC stores files by content hash

    shutil.rmtree(week / ".dvc" / "cache")
    shutil.rmtree(week / "artifacts" / "prepared")
    project.run("python", "remote.py", "pull", "-r", "s3", "prepare", env=env)
    assert md5(data) == before


def error_of(project: Project, *args: str, env: dict) -> str:
    result = project.run("python", "remote.py", *args, check=False, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def test_missing_bucket_url_names_the_variable(project: Project) -> None:
    message = error_of(project, "use-s3", env={"DVC_S3_URL": ""})
    assert "DVC_S3_URL" in message


def test_unreachable_endpoint_says_what_to_check(project: Project, s3_endpoint: str) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    project.run("python", "remote.py", "use-s3", env=s3_env(closed))
    message = error_of(project, "check", "-r", "s3", env=s3_env(closed))
    assert "cannot reach S3" in message and "AWS_ENDPOINT_URL" in message
    project.run("python", "remote.py", "use-s3", env=s3_env(s3_endpoint))  # leave it usable


def test_unknown_bucket_says_to_create_it(project: Project, s3_endpoint: str) -> None:
    env = s3_env(s3_endpoint, url="s3://no-such-bucket/store")
    project.run("python", "remote.py", "use-s3", env=env)
    message = error_of(project, "check", "-r", "s3", env=env)
    assert "does not exist" in message and "DVC_S3_URL" in message


def test_missing_credentials_name_the_variables(project: Project, s3_endpoint: str) -> None:
    env = {**s3_env(s3_endpoint), "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
           "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent"}
    project.run("python", "remote.py", "use-s3", env=env)
    message = error_of(project, "check", "-r", "s3", env=env)
    assert "AWS_ACCESS_KEY_ID" in message


def test_unknown_remote_name_lists_the_known_ones(project: Project) -> None:
    message = error_of(project, "check", "-r", "nowhere", env={})
    assert "no DVC remote named 'nowhere'" in message and "local" in message
