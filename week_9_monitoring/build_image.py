"""Build the serving image from the model in the DVC remote, not from whatever is on this disk.

    python build_image.py cola-api:latest              # dvc pull artifacts/onnx from the default remote, build
    python build_image.py cola-api:latest -r s3        # from the S3 remote (python remote.py use-s3 first)
    python build_image.py cola-lambda:latest -r s3 -f Dockerfile.lambda   # the Lambda image
    python build_image.py cola-api:latest --champion   # the registry's champion instead (MLFLOW_TRACKING_URI)

1. `dvc pull` the export stage's output (artifacts/onnx) from the remote: the exact model that
   dvc.lock names, so the image holds what git + DVC say it holds;
2. check that the folder matches dvc.lock (`dvc status` of the stage is clean);
3. build with Docker or podman (CONTAINER_BUILD_ARGS as in week 5), labelling the image with
   the git commit and the model's DVC hash, so a running container says which model it serves.

With --champion, steps 1-2 are `python -m monitoring.registry fetch --cache artifacts/onnx` instead:
the model registry's champion (week 9, monitoring/registry.py), with its registered_model.json, so
/ready in the image names the registered version; the label names it too. `dvc checkout
artifacts/onnx` puts the pipeline's model back afterwards.
"""

from __future__ import annotations

import argparse
import os
import shlex

import yaml

from errors import CourseError, run_cli
from push_image import engine_run, find_engine, git_sha
from remote import check, dvc
from source import WEEK_DIR

MODEL_DIR = "artifacts/onnx"
EXPORT_STAGE = "export"
# Lambda runs the function on x86_64 (deploy_lambda.py sets Architectures): build that platform even on an
# Apple-silicon laptop, as a plain image manifest (Lambda refuses BuildKit's provenance attestation index).
LAMBDA_PLATFORM = ["--platform", "linux/amd64"]


def locked_model_hash() -> str:
    """The DVC hash of artifacts/onnx as dvc.lock records it (the export stage's output)."""
    lock = yaml.safe_load((WEEK_DIR / "dvc.lock").read_text())
    for out in lock["stages"][EXPORT_STAGE]["outs"]:
        if out["path"] == MODEL_DIR:
            return out["md5"]
    raise CourseError(f"dvc.lock records no {MODEL_DIR} output: run `dvc repro` and commit dvc.lock")


def pull_model(remote: str | None) -> str:
    """Pull artifacts/onnx from `remote` and check it against dvc.lock; returns the model's hash."""
    print(f"remote: {check(remote)}")
    extra = ["-r", remote] if remote else []
    dvc("pull", *extra, MODEL_DIR)
    status = dvc("status", EXPORT_STAGE)
    if "up to date" not in status:
        raise CourseError(f"{MODEL_DIR} does not match dvc.lock after the pull:\n{status}run `dvc repro`, then push")
    return locked_model_hash()


def fetch_champion() -> str:
    """The registry's champion fetched into artifacts/onnx (checked, crash-safe); returns `name/version`."""
    from monitoring.registry import connect, fetch  # imports MLflow: only for --champion

    record = fetch(connect(), WEEK_DIR / MODEL_DIR)
    print(f"champion: {record['name']} version {record['version']} ({record['model_version']}) in {MODEL_DIR}")
    return f"{record['name']}/{record['version']}"


def platform_flags(dockerfile: str, engine: str) -> list[str]:
    """The build flags a Dockerfile's target needs: the Lambda image is linux/amd64, one plain manifest."""
    if not dockerfile.endswith(".lambda"):
        return []
    # podman writes no attestations (and has no --provenance flag); Docker's BuildKit adds one unless told not to.
    return LAMBDA_PLATFORM + (["--provenance=false"] if engine == "docker" else [])


def build(
    tag: str, model_hash: str | None, engine: str | None = None, dockerfile: str = "Dockerfile", registered: str = ""
) -> None:
    """Build the week's `dockerfile` as `tag`, labelled with the commit and the model hash (or registered version)."""
    engine = engine or find_engine()
    extra = platform_flags(dockerfile, engine) + shlex.split(os.environ.get("CONTAINER_BUILD_ARGS", ""))
    labels = ["--label", f"org.opencontainers.image.revision={git_sha()}"]
    if model_hash:
        labels += ["--label", f"org.mlops-basics.model.dvc-md5={model_hash}"]
    if registered:
        labels += ["--label", f"org.mlops-basics.model.registered={registered}"]
    print(f"building {tag} with {engine} ...")
    engine_run(engine, "build", *extra, *labels, "-f", str(WEEK_DIR / dockerfile), "-t", tag, str(WEEK_DIR))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("tag", help="the image to build, e.g. cola-api:latest")
    parser.add_argument("-r", "--remote", help="DVC remote to pull from (default: DVC's default remote)")
    parser.add_argument("-f", "--dockerfile", default="Dockerfile", help="e.g. Dockerfile.lambda (default: Dockerfile)")
    parser.add_argument("--champion", action="store_true", help="bake the model registry's champion, not DVC's model")
    args = parser.parse_args()
    if not (WEEK_DIR / args.dockerfile).is_file():
        raise CourseError(f"no {args.dockerfile} in {WEEK_DIR}")
    if args.champion:
        registered = fetch_champion()
        build(args.tag, None, dockerfile=args.dockerfile, registered=registered)
        print(f"built {args.tag} (registered model {registered})")
        return
    model_hash = pull_model(args.remote)
    build(args.tag, model_hash, dockerfile=args.dockerfile)
    print(f"built {args.tag} (model {model_hash})")


if __name__ == "__main__":
    run_cli(main)
