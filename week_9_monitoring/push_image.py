"""Push the serving image to Amazon ECR: create the repository if missing, log in, tag, push.

    python push_image.py cola-api:latest                 # pushes as <registry>/<ECR_REPOSITORY>:<git sha>
    python push_image.py cola-api:latest --tag v1

Configuration comes from the environment (see .env.example), never from this file:
    AWS_REGION        the region of the registry (AWS_DEFAULT_REGION works too)
    ECR_REPOSITORY    the repository name, e.g. mlops-basics/cola-api
    AWS credentials   as boto3 finds them: a role (CI, with OIDC), AWS_PROFILE, or keys
    AWS_ENDPOINT_URL  only for an AWS stand-in such as moto (the tests)
    ECR_REGISTRY      only to push to another registry than the one ECR names (the tests' local one)

The image is pushed with Docker, or podman where there is no Docker (CONTAINER_ENGINE chooses).
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from errors import CourseError, run_cli
from source import WEEK_DIR

ENGINES = ("docker", "podman")


@dataclass(frozen=True)
class EcrSettings:
    region: str
    repository: str
    endpoint_url: str | None
    registry_override: str | None


@dataclass(frozen=True)
class PushResult:
    reference: str  # registry/repository:tag
    digest: str  # sha256:... of the manifest in the registry


def read_settings(environ: dict[str, str] | None = None) -> EcrSettings:
    """The ECR settings from the environment; a missing one raises CourseError naming the variable."""
    environ = os.environ if environ is None else environ
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or ""
    repository = environ.get("ECR_REPOSITORY") or ""
    missing = [name for name, value in (("AWS_REGION", region), ("ECR_REPOSITORY", repository)) if not value]
    if missing:
        raise CourseError(f"set {' and '.join(missing)} (see .env.example), e.g. AWS_REGION=eu-west-1")
    return EcrSettings(
        region=region,
        repository=repository,
        endpoint_url=environ.get("AWS_ENDPOINT_URL") or None,
        registry_override=environ.get("ECR_REGISTRY") or None,
    )


def ecr_client(settings: EcrSettings) -> Any:  # boto3 clients have no static type
    import boto3

    # A fresh session reads the credentials now; boto3's default session would keep the first ones it found.
    session = boto3.session.Session()
    return session.client("ecr", region_name=settings.region, endpoint_url=settings.endpoint_url)


def aws_error(error: Exception, settings: EcrSettings) -> CourseError:
    """Turn a boto3 error into one line that says what to set or check."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    where = settings.endpoint_url or f"ECR in {settings.region}"
    if isinstance(error, NoCredentialsError):
        return CourseError("no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    if isinstance(error, EndpointConnectionError):
        return CourseError(f"cannot reach {where}: check AWS_REGION, AWS_ENDPOINT_URL and your network")
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "?")
        return CourseError(f"{where} refused the request ({code}): {error}")
    return CourseError(f"{where}: {error}")


def ensure_repository(ecr: Any, name: str) -> str:
    """The repository's URI, creating the repository (scan on push) if it does not exist yet."""
    try:
        found = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
        return found["repositoryUri"]
    except ecr.exceptions.RepositoryNotFoundException:
        created = ecr.create_repository(repositoryName=name, imageScanningConfiguration={"scanOnPush": True})
        return created["repository"]["repositoryUri"]


def registry_login(ecr: Any) -> tuple[str, str, str]:
    """(registry host, user, password) from ECR's authorization token (valid for 12 hours)."""
    data = ecr.get_authorization_token()["authorizationData"][0]
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    host = data["proxyEndpoint"].removeprefix("https://").removeprefix("http://")
    return host, user, password


def find_engine() -> str:
    """docker when it answers, else podman; CONTAINER_ENGINE chooses explicitly."""
    requested = os.environ.get("CONTAINER_ENGINE")
    candidates = [requested] if requested else list(ENGINES)
    for engine in candidates:
        if engine and shutil.which(engine):
            if subprocess.run([engine, "info"], capture_output=True, timeout=30).returncode == 0:
                return engine
    raise CourseError("no container engine answers: start Docker (or install podman, see the week 5 README)")


def is_loopback(registry: str) -> bool:
    """A registry on this machine speaks plain HTTP (Docker allows 127.0.0.0/8 by itself; podman needs a flag)."""
    host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    return host in ("localhost", "127.0.0.1")


def engine_run(engine: str, *args: str, stdin: str | None = None) -> str:
    """Run a docker/podman command; its stdout, or a CourseError with its last lines."""
    result = subprocess.run([engine, *args], input=stdin, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
        raise CourseError(f"`{engine} {args[0]}` failed: {tail}")
    return result.stdout


def push(image: str, tag: str, settings: EcrSettings, engine: str | None = None) -> PushResult:
    """Create the repository if needed, log in with an ECR token, tag `image` and push it."""
    from botocore.exceptions import BotoCoreError, ClientError

    engine = engine or find_engine()
    ecr = ecr_client(settings)
    try:
        uri = ensure_repository(ecr, settings.repository)
        host, user, password = registry_login(ecr)
    except (BotoCoreError, ClientError) as error:
        raise aws_error(error, settings) from error
    registry = settings.registry_override or host
    reference = f"{registry}/{settings.repository}:{tag}" if settings.registry_override else f"{uri}:{tag}"
    tls = ["--tls-verify=false"] if engine == "podman" and is_loopback(registry) else []
    # --password-stdin: the token never shows in the process list or the shell history.
    engine_run(engine, "login", *tls, "--username", user, "--password-stdin", registry, stdin=password)
    engine_run(engine, "tag", image, reference)
    with tempfile.TemporaryDirectory() as tmp:
        digest_file = Path(tmp) / "digest"
        if engine == "podman":
            engine_run(engine, "push", *tls, "--digestfile", str(digest_file), reference)
            digest = digest_file.read_text().strip()
        else:
            engine_run(engine, "push", reference)
            digest = engine_run(engine, "image", "inspect", "--format", "{{index .RepoDigests 0}}", reference)
            digest = digest.strip().rpartition("@")[2]
    return PushResult(reference=reference, digest=digest)


def git_sha(cwd: Path = WEEK_DIR) -> str:
    """The short commit id: a tag that says exactly which code an image holds."""
    result = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise CourseError("not in a git checkout: pass --tag TAG")
    return result.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("image", help="a local image, e.g. cola-api:latest")
    parser.add_argument("--tag", help="the tag in ECR (default: the git commit, 12 characters)")
    args = parser.parse_args()
    result = push(args.image, args.tag or git_sha(), read_settings())
    print(f"pushed {result.reference}")
    print(f"digest {result.digest}")


if __name__ == "__main__":
    run_cli(main)
