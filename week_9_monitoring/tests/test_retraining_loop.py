"""The retraining loop: a filled labelling CSV becomes a new data version, and a new model is
promoted only when it is not worse. The loop runs for real in a throwaway git+DVC repository:
served traffic, drift check, labelling queue, `dvc repro`, promotion and refusal."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from helpers.dvc_project import Project, md5
from helpers.loop_files import csv_rows, data_version
from helpers.loop_project import RETRAINING, first_model_project, record
from monitoring.labelling_queue import read_queue_csv, write_queue_csv
from schemas import MAX_BATCH_ITEMS
from support.local_server import local_server
from support.ops_grammar import other_domain_rows
from support.shifted_text import validation_half

# ----------------------------------------------------------------------------- the loop, for real


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The week with data v1 reproduced and committed (tag `first-model`); nothing promoted yet."""
    project = first_model_project(tmp_path_factory.mktemp("loop"))
    project.git("tag", "first-model")
    return project


def production_files(week: Path) -> dict[str, str]:
    """sha256 of every file under production/, by path: what must not change on a refusal."""
    return {
        str(path.relative_to(week)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted((week / "production").rglob("*"))
        if path.is_file()
    }


def data_hash(lock: dict) -> str:
    """The md5 dvc.lock records for the prepare stage's input data/."""
    return next(dep["md5"] for dep in lock["stages"]["prepare"]["deps"] if dep["path"] == "data")


def comparison_row(old: float, new: float) -> str:
    """The MCC row of monitoring/promote.py's table, as a pattern."""
    return rf"mcc \(decides\)\s+{old:.4f}\s+{new:.4f}\s+{re.escape(f'{new - old:+.4f}')}"


def metrics(week: Path) -> dict:
    return json.loads((week / "metrics.json").read_text())


@pytest.fixture(scope="module")
def first_promotion(project: Project) -> subprocess.CompletedProcess:
    """`python -m monitoring.promote` with an empty registry (the local store under mlruns/): the first model."""
    return project.run("python", "-m", "monitoring.promote", check=False)


def test_the_first_model_is_promoted(project: Project, first_promotion: subprocess.CompletedProcess) -> None:
    week, result = project.week, first_promotion
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "there is no production model yet: the first model is promoted" in result.stdout
    new = metrics(week)
    assert re.search(rf"mcc \(decides\)\s+-\s+{new['mcc']:.4f}", result.stdout)
    assert re.search(rf"accuracy\s+-\s+{new['accuracy']:.4f}", result.stdout)
    promoted = record(week)
    config = json.loads((week / "artifacts" / "onnx" / "model_config.json").read_text())
    assert promoted["model_version"] == config["model_version"] and promoted["model_version"].startswith("v1-")
    assert promoted["data_version"] == "v1"
    assert promoted["metrics"] == new
    for name in ("model.onnx", "model.int8.onnx", "tokenizer.json", "model_config.json"):
        assert md5(week / "production" / "onnx" / name) == md5(week / "artifacts" / "onnx" / name)
    # The registry is the source of truth: version 1 of the registered model, champion, in the local store.
    assert (promoted["name"], promoted["version"], promoted["alias"]) == ("cola-onnx", 1, "champion")
    assert promoted["tags"]["checkpoint_sha256"] == config["source_checkpoint_sha256"]
    assert (week / "mlruns" / "registry.db").is_file()

    # The same model again: nothing to do, production untouched.
    before = production_files(week)
    again = project.run("python", "-m", "monitoring.promote", check=False)
    assert again.returncode == 0
    assert "already in production" in again.stdout
    assert production_files(week) == before


def test_promotion_refuses_a_pipeline_that_is_not_up_to_date(project: Project) -> None:
    week = project.week
    before = production_files(week)
    project.set_params(**{"data.version": "v2"})
    try:
        result = project.run("python", "-m", "monitoring.promote", check=False)
        assert result.returncode == 2
        assert "the pipeline is not up to date" in result.stderr and "run `dvc repro` first" in result.stderr
        assert production_files(week) == before
    finally:
        project.set_params(**{"data.version": "v1"})


@pytest.fixture(scope="module")
def traffic(
    project: Project, first_promotion: subprocess.CompletedProcess, tmp_path_factory: pytest.TempPathFactory
) -> dict:
    """Events of the production model serving held-out sentences, then sentences of another domain.

    The API runs for real (uvicorn on loopback) with LOG_TEXT=true and EVENTS_FILE, as in production.
    Returns the two event files and the true labels of the other-domain sentences.
    """
    week, folder = project.week, tmp_path_factory.mktemp("traffic")
    build = project.run("python", "-m", "monitoring.drift", "reference", "--export-dir", "production/onnx")
    assert "reference.json" in build.stdout
    familiar = [row["sentence"] for row in validation_half("holdout")][:150]
    other = other_domain_rows(200, seed=1)
    events = folder / "events.jsonl"
    with local_server(week / "production" / "onnx", env={"LOG_TEXT": "true", "EVENTS_FILE": str(events)}) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            for sentences in (familiar, [row["sentence"] for row in other]):
                for start in range(0, len(sentences), MAX_BATCH_ITEMS):
                    batch = sentences[start : start + MAX_BATCH_ITEMS]
                    client.post("/predict/batch", json={"texts": batch}).raise_for_status()
    lines = events.read_text().splitlines(keepends=True)
    assert len(lines) == len(familiar) + len(other)
    (folder / "familiar.jsonl").write_text("".join(lines[: len(familiar)]))
    (folder / "drifted.jsonl").write_text("".join(lines[len(familiar) :]))
    return {
        "familiar": folder / "familiar.jsonl",
        "drifted": folder / "drifted.jsonl",
        "labels": {row["sentence"]: row["label"] for row in other},
        "folder": folder,
    }


def test_no_drift_means_nothing_to_retrain(project: Project, traffic: dict) -> None:
    result = project.run(
        "python", "-m", "monitoring.continuous_training", "--events", str(traffic["familiar"]), check=False
    )
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "overall: no drift" in result.stdout
    assert "no drift: production traffic still looks like the training data; nothing to retrain" in result.stdout
    assert "step 2/6" not in result.stdout
    assert data_version(project.week) == "v1"


def test_drift_without_labels_says_how_to_write_the_queue(project: Project, traffic: dict) -> None:
    result = project.run(
        "python", "-m", "monitoring.continuous_training", "--events", str(traffic["drifted"]), check=False
    )
    print(result.stdout)
    assert result.returncode == 4, result.stdout + result.stderr
    assert "overall: DRIFT" in result.stdout
    assert (
        f"python -m monitoring.labelling_queue --events {traffic['drifted']} --out labelling/queue.csv" in result.stdout
    )
    assert "--labelled labelling/queue.csv" in result.stdout
    # A schedule that names the CSV before anybody wrote it waits the same way.
    not_yet = traffic["folder"] / "not-yet.csv"
    result = project.run(
        "python",
        "-m",
        "monitoring.continuous_training",
        "--events",
        str(traffic["drifted"]),
        "--labelled",
        str(not_yet),
        check=False,
    )
    assert result.returncode == 4, result.stdout + result.stderr
    assert (
        f"({not_yet} does not exist yet)" in result.stdout and "python -m monitoring.labelling_queue" in result.stdout
    )
    assert data_version(project.week) == "v1"
    assert not (project.week / "data" / "labelled").exists()


@pytest.fixture(scope="module")
def retrained(project: Project, traffic: dict) -> dict:
    """The drifted traffic queued, labelled (all rows but three) and fed to monitoring/continuous_training.py."""
    week = project.week
    queue, filled = traffic["folder"] / "queue.csv", traffic["folder"] / "filled.csv"
    made = project.run(
        "python",
        "-m",
        "monitoring.labelling_queue",
        "--events",
        str(traffic["drifted"]),
        "--out",
        str(queue),
        "--top",
        "200",
    )
    assert made.returncode == 0, made.stderr
    items = read_queue_csv(queue)
    assert sorted(item.sentence for item in items) == sorted(traffic["labels"])
    # The annotator labels every row but three, chosen by sentence so the test does not depend on the ranking.
    skipped = set(sorted(traffic["labels"])[:3])
    for item in items:
        if item.sentence not in skipped:
            item.label = "acceptable" if traffic["labels"][item.sentence] == 1 else "unacceptable"
    write_queue_csv(items, filled)
    skipped_lines = [line for line, item in enumerate(items, start=2) if item.sentence in skipped]
    lock_before = yaml.safe_load((week / "dvc.lock").read_text())
    production_before = record(week)
    project.set_params(**RETRAINING)

    result = project.run(
        "python",
        "-m",
        "monitoring.continuous_training",
        "--events",
        str(traffic["drifted"]),
        "--labelled",
        str(filled),
        check=False,
    )
    if result.returncode == 0:
        project.commit("data v3: labelled drifted traffic; its model promoted")
    return {
        "result": result,
        "skipped_lines": skipped_lines,
        "lock_before": lock_before,
        "production_before": production_before,
        "filled": filled,
    }


def test_labelled_drift_becomes_v3_and_the_better_model_is_promoted(project: Project, retrained: dict) -> None:
    week, result, skipped_lines = project.week, retrained["result"], retrained["skipped_lines"]
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "overall: DRIFT" in out
    assert "197 labelled and new" in out
    assert f"3 left unlabelled, skipped (lines {', '.join(map(str, skipped_lines))})" in out
    assert "params.yaml: data.version v1 -> v3" in out

    # A new data version: params, the batch, the prepared data, and dvc.lock's record of them.
    assert data_version(week) == "v3"
    assert len(csv_rows(week / "data" / "labelled" / "v3.csv")) == 197
    assert len(csv_rows(week / "artifacts" / "prepared" / "train.csv")) == 3000 + 197
    assert "Running stage 'prepare'" in out and "Running stage 'train'" in out
    lock = yaml.safe_load((week / "dvc.lock").read_text())
    assert data_hash(lock) != data_hash(retrained["lock_before"])
    assert lock["stages"]["prepare"]["params"]["params.yaml"]["data.version"] == "v3"
    assert project.dvc("status", "--json").stdout.strip() == "{}"

    # Promoted by the rule, with the comparison printed.
    new, old = metrics(week), retrained["production_before"]["metrics"]
    assert new["mcc"] >= old["mcc"] + 0.1, f"the retrained model should clearly beat the first one: {new} vs {old}"
    assert re.search(comparison_row(old["mcc"], new["mcc"]), out)
    assert f"promoted: candidate mcc {new['mcc']:.4f} >= production mcc {old['mcc']:.4f}" in out
    promoted = record(week)
    assert promoted["data_version"] == "v3" and promoted["model_version"].startswith("v3-")
    assert promoted["metrics"] == new
    assert md5(week / "production" / "onnx" / "model.onnx") == md5(week / "artifacts" / "onnx" / "model.onnx")
    # The drift reference now describes the promoted model and the data it was trained on.
    reference = json.loads((week / "artifacts" / "monitoring" / "reference.json").read_text())
    assert reference["model_version"] == promoted["model_version"]
    assert {"server", "servers"} & set(reference["vocabulary"])


def test_the_same_labelled_csv_twice_waits_for_new_labels(project: Project, traffic: dict, retrained: dict) -> None:
    before = production_files(project.week)
    result = project.run(
        "python",
        "-m",
        "monitoring.continuous_training",
        "--events",
        str(traffic["drifted"]),
        "--labelled",
        str(retrained["filled"]),
        check=False,
    )
    assert result.returncode == 4, result.stdout + result.stderr  # waits for a person, like an unlabelled queue
    assert "197 already in the training data" in result.stdout
    assert f"drift found, but {retrained['filled']} cannot help: it holds no new sentence" in result.stdout
    assert "python -m monitoring.labelling_queue" in result.stdout
    assert data_version(project.week) == "v3" and not (project.week / "data" / "labelled" / "v4.csv").exists()
    assert production_files(project.week) == before


def test_a_worse_model_is_refused_and_production_is_unchanged(project: Project, retrained: dict) -> None:
    """The first model, checked out again from git and the DVC cache, must not replace the better one."""
    week = project.week
    before, current = production_files(week), record(week)
    project.git("checkout", "-q", "first-model")
    project.dvc("checkout")
    try:
        older = metrics(week)
        assert data_version(week) == "v1" and project.dvc("status", "--json").stdout.strip() == "{}"
        result = project.run("python", "-m", "monitoring.promote", check=False)
        print(result.stdout)
        assert result.returncode == 3, result.stdout + result.stderr
        assert re.search(comparison_row(current["metrics"]["mcc"], older["mcc"]), result.stdout)
        assert (
            f"refused: candidate mcc {older['mcc']:.4f} < production mcc {current['metrics']['mcc']:.4f}; "
            f"production stays version {current['version']} ({current['model_version']}) (nothing changed)"
        ) in result.stdout
        assert production_files(week) == before

        # A deliberate rollback is possible, and says so.
        forced = project.run("python", "-m", "monitoring.promote", "--force", check=False)
        assert forced.returncode == 0, forced.stdout + forced.stderr
        assert "--force: promoted without comparing" in forced.stdout
        assert record(week)["model_version"].startswith("v1-") and record(week)["metrics"] == older
        assert record(week)["version"] == 1  # the first model's version, registered once, is the champion again
    finally:
        project.git("checkout", "-q", "main")
        project.dvc("checkout")
