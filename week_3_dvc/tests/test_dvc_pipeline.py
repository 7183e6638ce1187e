"""The DVC pipeline, run for real in a throwaway git repository: repro, versions, local remote."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

from helpers.dvc_project import Project, md5

QUICK = {"train.max_epochs": "1", "train.max_length": "32"}  # keeps each training run ~15 s


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The week with data v1 reproduced, committed and tagged `data-v1`."""
    project = Project(tmp_path_factory.mktemp("repo"))
    project.set_params(**QUICK)
    project.dvc("repro")
    project.commit("data v1 and its model")
    project.git("tag", "data-v1")
    return project


def rows(path: Path) -> int:
    with open(path, newline="") as handle:
        return sum(1 for _ in csv.DictReader(handle))


def test_repro_runs_every_stage_and_records_it(project: Project) -> None:
    week = project.week
    assert rows(week / "artifacts/prepared/train.csv") == 2000
    assert (week / "artifacts/checkpoints/best.ckpt").is_file()
    metrics = json.loads((week / "metrics.json").read_text())
    assert metrics["n_validation"] == 600 and 0.0 <= metrics["accuracy"] <= 1.0
    lock = (week / "dvc.lock").read_text()
    for stage in ("prepare:", "train:", "evaluate:"):
        assert stage in lock
    assert md5(week / "artifacts/checkpoints/best.ckpt") in lock  # the model is versioned too


def test_repro_without_changes_runs_nothing(project: Project) -> None:
    checkpoint = project.week / "artifacts/checkpoints/best.ckpt"
    before = checkpoint.stat().st_mtime_ns
    output = project.dvc("repro").stdout
    assert "up to date" in output
    assert checkpoint.stat().st_mtime_ns == before


def test_changed_evaluation_reruns_only_evaluate(project: Project) -> None:
    evaluate = project.week / "evaluate.py"
    original = evaluate.read_text()
    evaluate.write_text(original + "\n# a comment changes the file's hash\n")
    try:
        output = project.dvc("repro").stdout
        assert "Running stage 'evaluate'" in output
        assert "Running stage 'train'" not in output and "Running stage 'prepare'" not in output
    finally:
        evaluate.write_text(original)
        project.dvc("repro")


def test_dag_links_the_stages(project: Project) -> None:
    dag = project.dvc("dag", "--md").stdout  # a mermaid flowchart: node1["train"] ... node1-->node2
    names = dict(re.findall(r'(node\d+)\["(\w+)"\]', dag))
    edges = {(names[a], names[b]) for a, b in re.findall(r"(node\d+)-->(node\d+)", dag)}
    assert edges == {("prepare", "train"), ("train", "evaluate"), ("prepare", "evaluate")}


def test_local_remote_push_then_pull_into_an_empty_cache(project: Project) -> None:
    week = project.week
    before = {path: md5(week / path) for path in ("artifacts/prepared/train.csv", "artifacts/checkpoints/best.ckpt")}
    push = project.run("python", "remote.py", "push")
    assert "local folder" in push.stdout
    assert (week / "dvc-remote").is_dir()
    shutil.rmtree(week / ".dvc" / "cache")
    shutil.rmtree(week / "artifacts")
    project.run("python", "remote.py", "pull")
    assert {path: md5(week / path) for path in before} == before


def test_data_v2_is_a_new_version_and_v1_comes_back(project: Project) -> None:
    week = project.week
    v1_model = md5(week / "artifacts/checkpoints/best.ckpt")
    project.set_params(**{"data.version": "v2"})
    output = project.dvc("repro").stdout
    assert "Running stage 'prepare'" in output and "Running stage 'train'" in output
    assert rows(week / "artifacts/prepared/train.csv") == 3000
    project.commit("data v2: 1,000 more sentences")
    project.git("tag", "data-v2")

    diff = project.dvc("metrics", "diff", "data-v1", "--json").stdout
    assert "metrics.json" in json.loads(diff)
    params = project.dvc("params", "diff", "data-v1").stdout
    assert "data.version" in params and "v1" in params and "v2" in params

    # Back to v1: git brings the small files, dvc checkout the data and the model from the cache.
    project.git("checkout", "-q", "data-v1")
    project.dvc("checkout")
    assert rows(week / "artifacts/prepared/train.csv") == 2000
    assert md5(week / "artifacts/checkpoints/best.ckpt") == v1_model
    project.git("checkout", "-q", "main")
    project.dvc("checkout")
    assert rows(week / "artifacts/prepared/train.csv") == 3000
