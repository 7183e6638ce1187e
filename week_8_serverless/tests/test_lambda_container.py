"""The Lambda image, built as in week 5 and run with its real runtime client (awslambdaric) against a
Runtime API stand-in on loopback: every event shape is answered as the in-process handler answers it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from conftest import CANARY
from helpers import container_engine as engine
from helpers import containers
from helpers.lambda_runtime_api import RuntimeApi

LAMBDA_IMAGE = "mlops-basics/cola-lambda:test"
EVENTS = Path(__file__).parent / "fixtures" / "events"


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
