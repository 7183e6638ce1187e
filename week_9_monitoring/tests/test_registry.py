"""The MLflow Model Registry as production, against a real `mlflow server` on loopback (SQLite backend,
artifacts on S3 served by moto): register, promote, refuse, roll back, serve the champion; a registry
that is down or an alias that does not exist is one line and production unchanged; a fetch killed
halfway leaves the old cache. The candidate is made for real by `dvc repro` in a throwaway project."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import signal
import subprocess
from pathlib import Path

import boto3
import pytest
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer

from helpers.dvc_project import Project
from helpers.loop_project import first_model_project, production_listing, record
from helpers.mlflow_server import CREDENTIALS, free_port, mlflow_server
from monitoring import model_cache, registry

BUCKET = "course-registry"
NAME = "cola-onnx"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, object]:
    """moto's S3 on loopback with the registry's bucket: (endpoint, a client to look inside)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
    )
    client.create_bucket(Bucket=BUCKET)
    yield endpoint, client
    server.stop()


@pytest.fixture(scope="module")
def server(s3: tuple[str, object], tmp_path_factory: pytest.TempPathFactory) -> str:
    """One `mlflow server` for the module (SQLite + S3 artifacts); stopped at its end."""
    with mlflow_server(tmp_path_factory.mktemp("mlflow"), s3[0], BUCKET) as uri:
        yield uri


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return first_model_project(tmp_path_factory.mktemp("registry"))


def run(project: Project, *args: str, uri: str, **env: str) -> subprocess.CompletedProcess:
    return project.run("python", *args, check=False, env={"MLFLOW_TRACKING_URI": uri, **env})


def cache_files(week: Path) -> dict[str, str]:
    """sha256 of every file under production/, by path: what a refusal or an error must leave as it was."""
    return {
        str(path.relative_to(week)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted((week / "production").rglob("*"))
        if path.is_file()
    }


def assert_one_line_error(result: subprocess.CompletedProcess, *parts: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for part in parts:
        assert part in lines[0], lines[0]


@pytest.fixture(scope="module")
def first(project: Project, server: str) -> dict:
    """`python -m monitoring.promote` against the server: the first model becomes version 1, champion."""
    result = run(project, "-m", "monitoring.promote", uri=server)
    assert result.returncode == 0, result.stdout + result.stderr
    return {"result": result, "registry": registry.connect(server, NAME)}


def test_the_first_candidate_is_registered_and_becomes_the_champion(
    project: Project, first: dict, s3: tuple[str, object]
) -> None:
    week, reg, out = project.week, first["registry"], first["result"].stdout
    assert f"registered: {NAME} version 1" in out and "champion is now cola-onnx version 1" in out
    assert registry.champion_version(reg) == 1
    config = json.loads((week / "artifacts" / "onnx" / "model_config.json").read_text())
    tags = registry.describe(reg, 1)["tags"]
    assert tags["model_version"] == config["model_version"] and tags["data_version"] == "v1"
    assert tags["checkpoint_sha256"] == config["source_checkpoint_sha256"]
    assert json.loads(tags["metrics"]) == json.loads((week / "metrics.json").read_text())
    assert json.loads(tags["gate"])["passed"] is True
    # The files are on S3, where the server put them, and the cache is their verified copy.
    keys = [item["Key"] for item in s3[1].list_objects_v2(Bucket=BUCKET, Prefix="registry/")["Contents"]]
    assert any(key.endswith("/artifacts/model/model.onnx") for key in keys), keys
    for name in ("model.onnx", "model.int8.onnx", "tokenizer.json", "model_config.json"):
        assert model_cache.sha256(week / "production" / "onnx" / name) == model_cache.sha256(
            week / "artifacts" / "onnx" / name
        )
    held = record(week)
    assert (held["name"], held["version"], held["alias"], held["registry"]) == (NAME, 1, "champion", reg.uri)
    assert held["tags"] == tags and held["model_version"] == config["model_version"]
    assert production_listing(week) == ["onnx"]

    shown = run(project, "-m", "monitoring.registry", "show", uri=reg.uri)
    assert shown.returncode == 0, shown.stderr
    assert "champion = version 1" in shown.stdout and "version 1 (champion)" in shown.stdout


def register_better(project: Project, reg: registry.Registry, tmp_path: Path, version_name: str) -> int:
    """A made-up version whose tags say it is far better than the candidate (same validation set)."""
    week = project.week
    fake = tmp_path / version_name
    shutil.copytree(week / "artifacts" / "onnx", fake)
    config = json.loads((fake / "model_config.json").read_text())
    (fake / "model_config.json").write_text(json.dumps({**config, "model_version": version_name}))
    candidate = registry.describe(reg, 1)["tags"]
    metrics = {name: min(1.0, value + 0.5) for name, value in json.loads(candidate["metrics"]).items()}
    tags = {**candidate, "model_version": version_name, "metrics": json.dumps(metrics)}
    tags.pop("files_sha256")
    version, new = registry.register(reg, fake, tags)
    assert new
    return version


def test_refuse_force_and_rollback_move_only_the_alias(
    project: Project, first: dict, server: str, tmp_path: Path
) -> None:
    week, reg = project.week, first["registry"]
    better = register_better(project, reg, tmp_path, "v0-better01")
    fetched = run(project, "-m", "monitoring.promote", "--rollback", str(better), uri=server)
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    assert f"rolled back: champion moves from version 1 to version {better} (v0-better01)" in fetched.stdout
    assert registry.champion_version(reg) == better and record(week)["version"] == better

    # The candidate (version 1, registered already) is worse than the champion: refused, nothing moves.
    before = cache_files(week)
    refused = run(project, "-m", "monitoring.promote", uri=server)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "already registered: cola-onnx version 1" in refused.stdout
    assert f"production stays version {better} (v0-better01) (nothing changed)" in refused.stdout
    assert registry.champion_version(reg) == better and cache_files(week) == before

    # --force keeps its meaning: the candidate becomes the champion without the rule.
    forced = run(project, "-m", "monitoring.promote", "--force", uri=server)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "--force: promoted without comparing" in forced.stdout
    assert registry.champion_version(reg) == 1 and record(week)["version"] == 1

    # A version that does not exist: one line, the alias and the cache stay.
    before = cache_files(week)
    missing = run(project, "-m", "monitoring.promote", "--rollback", "99", uri=server)
    assert_one_line_error(missing, "cola-onnx has no version 99", "python -m monitoring.registry show")
    assert registry.champion_version(reg) == 1 and cache_files(week) == before


def test_the_api_serves_the_champion_from_the_cache(project: Project, first: dict) -> None:
    from app import app

    cache = project.week / "production" / "onnx"
    held = record(project.week)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODEL_DIR", str(cache))
        patch.delenv("MODEL_VARIANT", raising=False)
        patch.delenv("EVENTS_FILE", raising=False)
        with TestClient(app) as client:
            ready = client.get("/ready").json()
            assert ready["registered"] == {"name": NAME, "version": held["version"]}
            assert ready["model_version"] == held["model_version"] and ready["model_dir"] == str(cache)
            answer = client.post("/predict", json={"text": "The dog sleeps."})
            assert answer.status_code == 200 and answer.json()["label"] in ("acceptable", "unacceptable")


def test_the_lambda_logs_the_champion_at_cold_start(
    project: Project, first: dict, caplog: pytest.LogCaptureFixture
) -> None:
    from conftest import import_lambda_handler

    held = record(project.week)
    with caplog.at_level(logging.INFO, logger="lambda_handler"):
        module = import_lambda_handler(project.week / "production" / "onnx")
    assert module.REGISTERED == {"name": NAME, "version": held["version"]}
    assert f"registered {NAME} version {held['version']}" in caplog.text
    assert module.handler({"sentence": "The dog sleeps."}, None)["statusCode"] == 200


def test_a_registry_that_is_down_is_one_line_and_production_unchanged(project: Project, first: dict) -> None:
    week = project.week
    before = cache_files(week)
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for command in (["-m", "monitoring.promote"], ["-m", "monitoring.registry", "fetch"]):
        result = run(project, *command, uri=down)
        assert_one_line_error(
            result, f"the registry at {down} did not answer (connection refused)", "MLFLOW_TRACKING_URI"
        )
        assert cache_files(week) == before


def test_a_missing_alias_or_model_is_one_line(project: Project, first: dict, server: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    unknown = run(project, "-m", "monitoring.registry", "fetch", "--cache", str(cache), uri=server,
                  REGISTERED_MODEL="no-such-model")  # fmt: skip
    assert_one_line_error(unknown, "no-such-model has no version with the alias champion", "monitoring.promote")
    # A registered model with versions but no champion yet.
    other = registry.connect(server, "cola-unpromoted")
    registry.register(other, project.week / "artifacts" / "onnx", {"model_version": "v1-other"})
    no_alias = run(project, "-m", "monitoring.registry", "fetch", "--cache", str(cache), uri=server,
                   REGISTERED_MODEL="cola-unpromoted")  # fmt: skip
    assert_one_line_error(no_alias, "cola-unpromoted has no version with the alias champion")
    assert not cache.exists()


# Fetches a version into a cache and SIGKILLs itself at one point, leaving the folders as a crash there would.
CRASH = """
import os, signal, sys
from pathlib import Path
from monitoring import model_cache, registry
point, cache, version = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
if point == "downloaded":  # the files are in CACHE.incoming, not yet checked
    registry.verify = die
else:  # between the swap's two renames: the old cache moved aside, the new one not yet in place
    real = Path.rename
    def rename(self, target):
        if self.name.endswith(".incoming") and Path(target) == cache:
            die()
        return real(self, target)
    Path.rename = rename
registry.fetch(registry.connect(), cache, version)
"""


def test_a_fetch_killed_halfway_leaves_the_old_cache(
    project: Project, first: dict, server: str, tmp_path: Path
) -> None:
    reg = first["registry"]
    other = register_better(project, reg, tmp_path, "v0-other002")
    cache = tmp_path / "served" / "onnx"
    registry.fetch(reg, cache, 1)
    before = {name: model_cache.sha256(path) for name, path in ((p.name, p) for p in cache.iterdir())}

    crashed = run(project, "-c", CRASH, "downloaded", str(cache), str(other), uri=server)
    assert crashed.returncode == -signal.SIGKILL, crashed.stdout + crashed.stderr
    assert {p.name: model_cache.sha256(p) for p in cache.iterdir()} == before  # the old cache, untouched
    assert model_cache.interrupted(cache)
    left = cache.parent / "onnx.incoming"
    assert model_cache.recover(cache) == f"deleted {left}, left behind by an interrupted fetch"
    assert sorted(p.name for p in cache.parent.iterdir()) == ["onnx"]

    crashed = run(project, "-c", CRASH, "swap", str(cache), str(other), uri=server)
    assert crashed.returncode == -signal.SIGKILL, crashed.stdout + crashed.stderr
    assert sorted(p.name for p in cache.parent.iterdir()) == ["onnx.incoming", "onnx.previous"]
    fetched = run(project, "-m", "monitoring.registry", "fetch", "--cache", str(cache), "--version", str(other),
                  uri=server)  # fmt: skip
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    assert f"{cache} holds cola-onnx version {other} (v0-other002)" in fetched.stdout
    assert sorted(p.name for p in cache.parent.iterdir()) == ["onnx"]
    assert model_cache.read_cache_record(cache)["version"] == other


def test_a_corrupted_copy_in_the_registry_is_refused_and_the_cache_kept(
    project: Project, first: dict, s3: tuple[str, object], tmp_path: Path
) -> None:
    reg = first["registry"]
    corrupt = register_better(project, reg, tmp_path, "v0-corrupt3")
    cache = tmp_path / "served" / "onnx"
    registry.fetch(reg, cache, 1)
    before = model_cache.read_cache_record(cache)
    run_id = registry.describe(reg, corrupt)["run_id"]
    keys = [item["Key"] for item in s3[1].list_objects_v2(Bucket=BUCKET, Prefix="registry/")["Contents"]]
    key = next(k for k in keys if run_id in k and k.endswith("/model_config.json"))
    s3[1].put_object(Bucket=BUCKET, Key=key, Body=b'{"model_version": "tampered"}')
    with pytest.raises(
        registry.RegistryError, match=r"does not match the SHA-256 it was registered with \(model_config.json\)"
    ):
        registry.fetch(reg, cache, corrupt)
    assert model_cache.read_cache_record(cache) == before
    assert sorted(p.name for p in cache.parent.iterdir()) == ["onnx"]
