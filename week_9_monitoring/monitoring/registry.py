"""The MLflow Model Registry as production: register exports as versions, move `champion`, fetch it.

    python -m monitoring.registry show                        # the registered model, its versions, the champion
    python -m monitoring.registry fetch --cache production/onnx   # the champion's files, for MODEL_DIR

Words: a *registered model* is a name (REGISTERED_MODEL, default cola-onnx); each model that is
registered under it is a numbered, immutable *version* (its files plus tags: model and data
version, checkpoint SHA-256, validation metrics, the gate's result); an *alias* is a movable
pointer to one version. `champion` is the version in production: monitoring/promote.py moves it,
and the API and the Lambda serve a copy of it (the cache, default production/onnx, holding
registered_model.json beside the files).

Where the registry is: MLFLOW_TRACKING_URI. Unset, it is a local store that needs no server: a
SQLite file mlruns/registry.db and the files under mlruns/registry-artifacts/ in the week folder.
With a server (`mlflow server --backend-store-uri sqlite:///registry.db --artifacts-destination
s3://BUCKET/registry`, MLFLOW_S3_ENDPOINT_URL set for it when S3 is not AWS's), set
MLFLOW_TRACKING_URI=http://HOST:PORT: the server keeps the SQLite file and proxies the files to S3.

A fetch is crash-safe: the files are downloaded into a sibling (CACHE.incoming), checked against
the SHA-256 the version was registered with, and only then renamed into place; a failure at any
point leaves the old cache as it was (recover() tidies what a killed fetch left).
A registry that does not answer, an alias or a version that does not exist: one RegistryError
whose message says what is wrong and how to fix it; the CLI prints it as one line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from errors import CourseError, run_cli
from inference_onnx import CONFIG_NAME
from monitoring.model_cache import (
    DOWNLOAD,
    INCOMING,
    cache_intact,
    file_digests,
    read_cache_record,
    recover,
    sibling,
    swap_in,
    write_json_atomically,
)
from monitoring.prediction_events import utc_timestamp
from settings import REGISTERED_RECORD
from source import WEEK_DIR

CHAMPION = "champion"
DEFAULT_NAME = "cola-onnx"  # REGISTERED_MODEL overrides it (week 2's logger registers checkpoints as cola-classifier)
EXPERIMENT = "cola-registry"  # the runs that hold the registered files
ARTIFACT_PATH = "model"  # the files' folder inside each run
LOCAL_STORE = WEEK_DIR / "mlruns"
CACHE_DIR = WEEK_DIR / "production" / "onnx"  # the served copy of the champion (MODEL_DIR=production/onnx)
# A registry that is down should fail in seconds, not after MLflow's default minutes of retries.
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "30", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}  # fmt: skip
SHOW = "`python -m monitoring.registry show`"


class RegistryError(CourseError):
    """The registry cannot do what was asked: the message names the problem and the fix, on one line."""


def one_line(text: object, limit: int = 200) -> str:
    """The first line of an exception's text, shortened: MLflow's messages can hold a whole response."""
    line = str(text).strip().splitlines()[0] if str(text).strip() else type(text).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def reason_of(error: Exception) -> str:
    """Why a request failed, short: MLflow wraps a refused connection in a paragraph of urllib3's text."""
    text = str(error)
    for needle, reason in (("Connection refused", "connection refused"), ("timed out", "timed out"),
                           ("Name or service not known", "unknown host")):  # fmt: skip
        if needle in text:
            return reason
    return one_line(text, 120)


@dataclass(frozen=True)
class Registry:
    uri: str
    name: str
    client: Any  # mlflow.MlflowClient

    @property
    def local(self) -> bool:
        return not self.uri.startswith(("http://", "https://"))


def shown_uri(uri: str) -> str:
    """`uri` without a user or password in it: the record is baked into images and printed."""
    parts = urlsplit(uri)
    return (
        urlunsplit(parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")))
        if (parts.username or parts.password) and parts.hostname
        else uri
    )


def tracking_uri(environ: dict | os._Environ | None = None) -> str:
    """MLFLOW_TRACKING_URI, or the local SQLite store under the week's mlruns/."""
    environ = os.environ if environ is None else environ
    return environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{LOCAL_STORE / 'registry.db'}"


def connect(uri: str | None = None, name: str | None = None) -> Registry:
    """A client for the registry at `uri` (default: tracking_uri()); nothing is contacted yet."""
    for variable, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(variable, value)
    from mlflow import MlflowClient  # slow to import: only commands that use the registry pay for it

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # not "waiting for the model version" on every register

    uri = uri or tracking_uri()
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    name = name or os.environ.get("REGISTERED_MODEL") or DEFAULT_NAME
    return Registry(uri, name, MlflowClient(tracking_uri=uri, registry_uri=uri))


@contextmanager
def answering(registry: Registry, doing: str) -> Iterator[None]:
    """Turn what MLflow raises while `doing` into one RegistryError naming the problem and the fix."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except RegistryError:
        raise
    except MlflowException as error:
        text = one_line(error.message if hasattr(error, "message") else error)
        if getattr(error, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
            raise RegistryError(
                f"{doing}: {text} in the registry at {registry.uri}: promote a model first "
                f"(`python -m monitoring.promote`), or check REGISTERED_MODEL and MLFLOW_TRACKING_URI"
            ) from error
        raise RegistryError(
            f"{doing}: the registry at {registry.uri} did not answer ({reason_of(error)}): start it (see the README, "
            "`mlflow server`), or set MLFLOW_TRACKING_URI to a running one (unset: the local store)"
        ) from error
    except OSError as error:  # a local store that cannot be written, a connection refused outside MLflow
        raise RegistryError(
            f"{doing}: the registry at {registry.uri} failed ({one_line(error)}): check MLFLOW_TRACKING_URI "
            "and that its store can be reached and written"
        ) from error


def experiment_id(registry: Registry) -> str:
    """The experiment whose runs hold the registered files; created on first use."""
    client = registry.client
    found = client.get_experiment_by_name(EXPERIMENT)
    if found is not None:
        return found.experiment_id
    # A server decides where files go (--artifacts-destination); a local store keeps them beside its SQLite file.
    location = None
    if registry.local:
        store = (
            Path(registry.uri.removeprefix("sqlite:///")).parent
            if registry.uri.startswith("sqlite:///")
            else LOCAL_STORE
        )
        location = (store / "registry-artifacts").as_uri()
    return client.create_experiment(EXPERIMENT, artifact_location=location)


def versions(registry: Registry) -> list[Any]:
    """Every version of the registered model, oldest first; [] when the name is not registered yet."""
    with answering(registry, f"listing the versions of {registry.name}"):
        found = registry.client.search_model_versions(f"name='{registry.name}'")
    return sorted(found, key=lambda version: int(version.version))


def register(registry: Registry, export_dir: Path, tags: dict[str, str]) -> tuple[int, bool]:
    """Register the export's files as a new version tagged with `tags`; (version, registered now?).

    A candidate already registered (same model_version tag, same files) is not registered twice.
    """
    digests = file_digests(export_dir)
    if CONFIG_NAME not in digests:
        raise CourseError(f"{export_dir} holds no {CONFIG_NAME}: run `dvc repro` to export the model first")
    tags = {**tags, "files_sha256": json.dumps(digests, sort_keys=True)}
    for version in versions(registry):
        if (
            version.tags.get("model_version") == tags.get("model_version")
            and version.tags.get("files_sha256") == tags["files_sha256"]
        ):
            return int(version.version), False
    client = registry.client
    with answering(registry, f"registering {export_dir} as a version of {registry.name}"):
        run = client.create_run(experiment_id(registry), run_name=tags.get("model_version"))
        client.log_artifacts(run.info.run_id, str(export_dir), artifact_path=ARTIFACT_PATH)
        client.set_terminated(run.info.run_id, "FINISHED")
        if not client.search_registered_models(filter_string=f"name = '{registry.name}'"):
            client.create_registered_model(registry.name, description="CoLA acceptability classifier, ONNX export")
        source = f"{run.info.artifact_uri}/{ARTIFACT_PATH}"
        created = client.create_model_version(registry.name, source=source, run_id=run.info.run_id, tags=tags)
    return int(created.version), True


def set_tag(registry: Registry, version: int, key: str, value: str) -> None:
    with answering(registry, f"tagging version {version} of {registry.name}"):
        registry.client.set_model_version_tag(registry.name, str(version), key, value)


def describe(registry: Registry, version: int, alias: str | None = None) -> dict:
    """One version as the cache's record keeps it: name, version, alias, tags, and the tags read back as values."""
    with answering(registry, f"reading version {version} of {registry.name}"):
        found = registry.client.get_model_version(registry.name, str(version))
    tags = dict(found.tags)
    record = {"name": registry.name, "version": int(found.version), "alias": alias, "run_id": found.run_id}
    return {**record, "tags": tags, **values_of(tags)}


def values_of(tags: dict[str, str]) -> dict:
    """The typed fields the promotion rule and the report read: model and data version, metrics, gate."""

    def parsed(key: str) -> Any:
        try:
            return json.loads(tags[key]) if key in tags else None
        except ValueError:
            return None

    return {
        "model_version": tags.get("model_version"),
        "data_version": tags.get("data_version"),
        "source_checkpoint_sha256": tags.get("checkpoint_sha256"),
        "validation_md5": tags.get("validation_md5"),
        "metrics": parsed("metrics") or {},
        "gate": parsed("gate"),
    }


def champion_version(registry: Registry, alias: str = CHAMPION) -> int | None:
    """The version `alias` points at; None when the model is not registered yet or has no such alias."""
    with answering(registry, f"reading the alias {alias} of {registry.name}"):
        if not registry.client.search_registered_models(filter_string=f"name = '{registry.name}'"):
            return None
        aliases = registry.client.get_registered_model(registry.name).aliases
    return int(aliases[alias]) if alias in aliases else None


def require_champion(registry: Registry, alias: str = CHAMPION) -> int:
    """The version `alias` points at; a RegistryError saying how to make one when there is none."""
    version = champion_version(registry, alias)
    if version is None:
        raise RegistryError(
            f"{registry.name} has no version with the alias {alias} in the registry at {registry.uri}: "
            "promote a model first (`python -m monitoring.promote`), or check REGISTERED_MODEL and MLFLOW_TRACKING_URI"
        )
    return version


def require_version(registry: Registry, version: int) -> int:
    """`version` when the registered model has it; a RegistryError listing how to see the versions otherwise."""
    known = [int(found.version) for found in versions(registry)]
    if version not in known:
        raise RegistryError(
            f"{registry.name} has no version {version} (it has {', '.join(map(str, known)) or 'none'}): "
            f"pick one that {SHOW} lists"
        )
    return version


def set_champion(registry: Registry, version: int, alias: str = CHAMPION) -> None:
    """Point `alias` at `version`: this is the promotion (or the rollback) itself."""
    with answering(registry, f"moving the alias {alias} of {registry.name} to version {version}"):
        registry.client.set_registered_model_alias(registry.name, alias, str(version))


# ----------------------------------------------------------------------------- the cache


def verify(folder: Path, record: dict) -> None:
    """The downloaded files are the registered ones: same names, same SHA-256."""
    expected = json.loads(record["tags"].get("files_sha256") or "{}")
    got = file_digests(folder)
    if not expected or got != expected:
        wrong = sorted(name for name in set(expected) | set(got) if expected.get(name) != got.get(name))
        raise RegistryError(
            f"the registry's copy of {record['name']} version {record['version']} does not match the SHA-256 it was "
            f"registered with ({', '.join(wrong) or 'no checksums recorded'}): register the export again "
            "(`python -m monitoring.promote`) and promote the new version"
        )


def stage(registry: Registry, version: int, cache: Path, alias: str | None = CHAMPION) -> Path:
    """Download `version` into CACHE.incoming and verify it; the cache itself is not touched.

    The record is written last, so a staged folder holding it is complete (see recover())."""
    record = {**describe(registry, version, alias), "registry": shown_uri(registry.uri), "fetched_at": utc_timestamp()}
    incoming = sibling(cache, INCOMING)
    shutil.rmtree(incoming, ignore_errors=True)
    download = sibling(cache, DOWNLOAD)
    shutil.rmtree(download, ignore_errors=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    try:
        with answering(registry, f"downloading {registry.name} version {version}"):
            registry.client.download_artifacts(record["run_id"], ARTIFACT_PATH, str(download))
        (download / ARTIFACT_PATH).rename(incoming)
        verify(incoming, record)
        write_json_atomically(incoming / REGISTERED_RECORD, record)
    except BaseException:
        shutil.rmtree(incoming, ignore_errors=True)  # the old cache is untouched: nothing to undo there
        raise
    finally:
        shutil.rmtree(download, ignore_errors=True)
    return incoming


def fetch(registry: Registry, cache: Path, version: int | None = None) -> dict:
    """Put the champion (or `version`) into `cache`, crash-safely; returns its record. Unchanged if already there."""
    recover(cache)
    alias = CHAMPION if version is None else None
    version = require_champion(registry) if version is None else require_version(registry, version)
    held = read_cache_record(cache)
    if held and held.get("name") == registry.name and held.get("version") == version and cache_intact(cache, held):
        return held
    swap_in(stage(registry, version, cache, alias), cache)
    return read_cache_record(cache) or {}


# ----------------------------------------------------------------------------- the CLI


def show(registry: Registry) -> str:
    """The registered model's versions, one line each, the champion marked."""
    listed = versions(registry)
    if not listed:
        return (
            f"{registry.name}: no versions in the registry at {registry.uri}; `python -m monitoring.promote` adds one"
        )
    champion = champion_version(registry)
    lines = [f"{registry.name} in {registry.uri}: champion = {'version ' + str(champion) if champion else 'none'}"]
    for found in listed:
        values = values_of(dict(found.tags))
        mcc = values["metrics"].get("mcc")
        gate = values["gate"]
        lines.append(
            f"  version {found.version}{' (champion)' if int(found.version) == champion else ''}: "
            f"{values['model_version']}, data {values['data_version']}, "
            f"mcc {'-' if mcc is None else format(mcc, '.4f')}, "
            f"gate {'-' if not isinstance(gate, dict) else 'passed' if gate.get('passed') else 'FAILED'}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("what", choices=["show", "fetch"])
    parser.add_argument("--cache", type=Path, default=CACHE_DIR, help="fetch: where the copy goes (production/onnx)")
    parser.add_argument("--version", type=int, help="fetch: this version instead of the champion")
    args = parser.parse_args()
    registry = connect()
    if args.what == "show":
        print(show(registry))
        return
    record = fetch(registry, args.cache, args.version)
    print(f"{args.cache} holds {record['name']} version {record['version']} ({record['model_version']})")
    print(f"serve it with MODEL_DIR={args.cache}")


if __name__ == "__main__":
    run_cli(main)
