"""The Lambda image, built as in week 5 and run with its real runtime client (awslambdaric) against a
Runtime API stand-in on loopback: every event shape is answered as the in-process handler answers it,
also on a read-only root file system with only /tmp writable, as Lambda runs it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from conftest import CANARY
from helpers import container_engine as engine
from helpers import containers, image_secrets
from helpers.lambda_runtime_api import RuntimeApi

LAMBDA_IMAGE = "mlops-basics/cola-lambda:test"
EVENTS = Path(__file__).parent / "fixtures" / "events"
# Writes to each place, as the function's user; prints {place: "ok" or the error's name}.
WRITE_PROBE = """
import errno, json, os
places = {"tmp": "/tmp", "home": os.path.expanduser("~"), "task": "/var/task", "root": "/"}
result = {}
for name, folder in places.items():
    try:
        with open(os.path.join(folder, "probe"), "w") as f:
            f.write("x")
        result[name] = "ok"
    except OSError as error:
        result[name] = errno.errorcode.get(error.errno, str(error.errno))
print(json.dumps(result))
"""


def lambda_file_system(engine_name: str) -> list[str]:
    """Run flags for Lambda's file system: the image read-only, a writable tmpfs on /tmp and nowhere else.

    podman adds tmpfs mounts on /tmp, /var/tmp and /run to a --read-only container unless told not to.
    """
    flags = ["--read-only", "--tmpfs", "/tmp:rw,size=512m"]
    return [*flags, "--read-only-tmpfs=false"] if engine_name == "podman" else flags


@pytest.fixture(scope="module")
def lambda_image(container_engine: str, build_context: Path) -> str:
    engine.build(build_context, LAMBDA_IMAGE, dockerfile="Dockerfile.lambda", engine=container_engine)
    return LAMBDA_IMAGE


@pytest.fixture(scope="module")
def runtime(lambda_image: str, container_engine: str) -> Iterator[RuntimeApi]:
    """The image running, polling a Runtime API stand-in on 127.0.0.1 (host network) for events."""
    api = RuntimeApi()
    cid = containers.start(
        lambda_image,
        env={"AWS_LAMBDA_RUNTIME_API": api.address},
        extra_args=["--network", "host"],
        engine=container_engine,
    )
    try:
        yield api
    finally:
        logs = containers.logs(cid, container_engine)
        containers.stop(cid, container_engine)
        api.close()
        print(logs)


@pytest.fixture(scope="module")
def read_only_runtime(lambda_image: str, container_engine: str) -> Iterator[tuple[RuntimeApi, str]]:
    """The image as Lambda runs it: read-only root file system, only /tmp writable; yields (api, container id)."""
    api = RuntimeApi()
    cid = containers.start(
        lambda_image,
        env={"AWS_LAMBDA_RUNTIME_API": api.address},
        extra_args=["--network", "host", *lambda_file_system(container_engine)],
        engine=container_engine,
    )
    try:
        yield api, cid
    finally:
        containers.stop(cid, container_engine)
        api.close()


@pytest.mark.parametrize(
    "name", sorted(p.name for p in EVENTS.glob("*.json")), ids=lambda n: n.removesuffix(".json")
)
def test_the_container_answers_every_event_like_the_in_process_handler(
    runtime: RuntimeApi, lambda_module: ModuleType, name: str
) -> None:
    event = json.loads((EVENTS / name).read_text())
    kind, answer = runtime.invoke(event)
    assert kind == "response", answer
    expected = lambda_module.handler(event, None)
    assert answer["statusCode"] == expected["statusCode"]
    assert answer["headers"] == expected["headers"]
    got, want = json.loads(answer["body"]), json.loads(expected["body"])
    if answer["statusCode"] == 200:
        assert got["label"] == want["label"]
        assert got["probabilities"]["acceptable"] == pytest.approx(want["probabilities"]["acceptable"], abs=1e-5)
    else:
        assert got == want


def test_the_image_runs_unprivileged_and_holds_no_torch(lambda_image: str, container_engine: str) -> None:
    config = engine.inspect_image(lambda_image, container_engine)["config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["python", "-m", "awslambdaric"] and config["Cmd"] == ["lambda_handler.handler"]
    listing = containers.run_to_completion(
        lambda_image, "-c", "import importlib.util as u; print([m for m in ('torch', 'fastapi') if u.find_spec(m)])",
        entrypoint="python", engine=container_engine,
    )  # fmt: skip
    assert listing.stdout.strip() == "[]", listing.stderr


def test_no_secret_from_the_build_context_in_any_file_of_the_image(lambda_image: str, container_engine: str) -> None:
    """The build context holds a .env with keys (see conftest.build_context); grep every file of the image."""
    result = containers.run_to_completion(
        lambda_image, "-rlF", CANARY, "/", "--exclude-dir=proc", "--exclude-dir=sys", "--exclude-dir=dev",
        user="0", entrypoint="grep", engine=container_engine,
    )  # fmt: skip
    assert result.returncode == 1, f"grep found the canary (or failed):\n{result.stdout}{result.stderr}"
    config = engine.inspect_image(lambda_image, container_engine)["config"]
    env_names = [item.split("=", 1)[0] for item in config["Env"]]
    assert not [name for name in env_names if name.startswith("AWS_") or "KEY" in name or "SECRET" in name]


def test_only_tmp_is_writable_with_lambdas_file_system(lambda_image: str, container_engine: str) -> None:
    """The flags really give Lambda's file system: the same writes that pass in /tmp (and $HOME, which is /tmp)
    fail everywhere else."""
    result = engine.engine_command(
        container_engine, "run", "--rm", "--label", containers.TEST_LABEL, *engine.env_args("CONTAINER_RUN_ARGS"),
        *lambda_file_system(container_engine),
        "--entrypoint", "python", lambda_image, "-c", WRITE_PROBE, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # HOME is /tmp in the image (Dockerfile.lambda), so a library's cache under ~ lands in /tmp.
    assert json.loads(result.stdout) == {"tmp": "ok", "home": "ok", "task": "EROFS", "root": "EROFS"}


def test_the_function_answers_on_a_read_only_file_system(
    read_only_runtime: tuple[RuntimeApi, str], lambda_module: ModuleType, container_engine: str
) -> None:
    """Nothing the function does at init or per event writes outside /tmp (no cache in $HOME, as Lambda needs)."""
    api, cid = read_only_runtime
    for name in ("direct.json", "http_v2.json", "rest_v1.json"):
        event = json.loads((EVENTS / name).read_text())
        kind, answer = api.invoke(event)
        assert kind == "response", f"{name}: {answer}\n{containers.logs(cid, container_engine)}"
        assert answer["statusCode"] == 200 == lambda_module.handler(event, None)["statusCode"], answer
    assert api.init_error is None
    logs = containers.logs(cid, container_engine)
    # ONNX Runtime warns "Failed to persist telemetry device ID" when it cannot write under $HOME.
    for sign in ("Read-only file system", "Permission denied", "EROFS", "Failed to persist"):
        assert sign not in logs, logs


def test_detect_secrets_finds_nothing_in_the_lambda_images_own_files(lambda_image: str, container_engine: str) -> None:
    """The week-5 image scan (tests/helpers/image_secrets.py) over the Lambda image's own layers and configuration."""
    lines = (Path(__file__).parents[1] / "Dockerfile.lambda").read_text().splitlines()
    base = next(line.split()[1] for line in lines if line.startswith("FROM "))
    assert image_secrets.scan_image(lambda_image, base, container_engine) == []
