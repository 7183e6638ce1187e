"""monitoring/promote.py when the champion's cache (production/onnx) is not what the registry says, and
a promotion killed at each step. The registry is the default local store (mlruns/registry.db, no
server); the candidate is made for real by `dvc repro` in a throwaway git+DVC project, and the
champion starts as an older, worse version, so every recovery ends with the candidate promoted."""

from __future__ import annotations

import itertools
import json
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from helpers.dvc_project import Project, md5
from helpers.loop_project import first_model_project, production_listing, record
from monitoring import registry

OLDER = "v0-0000aaaa"  # the model the champion is at the start of every test
NAMES = (f"cola-faults-{n}" for n in itertools.count(1))  # a registered model of its own for each test


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return first_model_project(tmp_path_factory.mktemp("promote"))


def candidate_version(week: Path) -> str:
    return json.loads((week / "artifacts" / "onnx" / "model_config.json").read_text())["model_version"]


def local_registry(week: Path) -> registry.Registry:
    """The project's own local store, as `python -m monitoring.promote` there finds it, under a new name:
    each test starts from an empty registered model (the store itself is kept: MLflow caches its connection)."""
    return registry.connect(f"sqlite:///{week / 'mlruns' / 'registry.db'}", next(NAMES))


@pytest.fixture
def older_champion(project: Project, tmp_path: Path) -> registry.Registry:
    """A new registered model whose champion, version 1, is OLDER (0.5 MCC worse), fetched into production/onnx."""
    week = project.week
    shutil.rmtree(week / "production", ignore_errors=True)
    older = tmp_path / "older"
    shutil.copytree(week / "artifacts" / "onnx", older)
    config = json.loads((older / "model_config.json").read_text())
    (older / "model_config.json").write_text(json.dumps({**config, "model_version": OLDER, "data_version": "v0"}))
    metrics = json.loads((week / "metrics.json").read_text())
    tags = {
        "model_version": OLDER,
        "data_version": "v0",
        "metrics": json.dumps({name: value - 0.5 for name, value in metrics.items()}),
        "validation_md5": md5(week / "artifacts" / "prepared" / "validation.csv"),
    }
    reg = local_registry(week)
    version, _ = registry.register(reg, older, tags)
    registry.set_champion(reg, version)
    registry.fetch(reg, week / "production" / "onnx")
    assert record(week)["model_version"] == OLDER
    return reg


def promote(project: Project, reg: registry.Registry, *args: str) -> subprocess.CompletedProcess:
    return project.run("python", "-m", "monitoring.promote", *args, check=False, env={"REGISTERED_MODEL": reg.name})


def assert_candidate_in_production(week: Path, reg: registry.Registry) -> None:
    """A finished promotion: the alias on the candidate's version, the cache its copy, nothing left over."""
    assert production_listing(week) == ["onnx"]
    held = record(week)
    assert held["model_version"] == candidate_version(week) and held["alias"] == "champion"
    assert registry.champion_version(reg) == held["version"] == 2
    assert held["metrics"] == json.loads((week / "metrics.json").read_text())
    for name in ("model.onnx", "model.int8.onnx", "tokenizer.json", "model_config.json"):
        assert md5(week / "production" / "onnx" / name) == md5(week / "artifacts" / "onnx" / name)


def test_the_better_candidate_is_promoted_over_the_older_champion(
    project: Project, older_champion: registry.Registry
) -> None:
    result = promote(project, older_champion)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{OLDER}  {candidate_version(project.week)}" in result.stdout  # compared with the champion's tags
    assert (
        f"registered: {older_champion.name} version 2" in result.stdout and "promoted: candidate mcc" in result.stdout
    )
    assert_candidate_in_production(project.week, older_champion)


def test_a_deleted_or_altered_cache_is_fetched_again(project: Project, older_champion: registry.Registry) -> None:
    week = project.week
    assert promote(project, older_champion).returncode == 0
    shutil.rmtree(week / "production")
    result = promote(project, older_champion)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "was not a copy of the champion (version 2): fetched it from the registry" in result.stdout
    assert "already in production" in result.stdout
    assert_candidate_in_production(week, older_champion)

    # A model file changed by hand: the cache no longer matches its record's checksums, so the registry's copy returns.
    (week / "production" / "onnx" / "model.onnx").write_bytes(b"not a model")
    assert promote(project, older_champion).returncode == 0
    assert_candidate_in_production(week, older_champion)


# Runs the promotion and SIGKILLs itself at one point, leaving things exactly as a crash there would.
CRASH = """
import os, signal, sys
from pathlib import Path
from monitoring import promote, registry
point = sys.argv[1]
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
if point == "downloaded":  # the candidate's files are in production/onnx.incoming, not yet checked
    registry.verify = die
elif point == "alias moved":  # the registry says the candidate, the cache still holds the old champion
    registry.swap_in = die
else:  # between the swap's two renames
    real = Path.rename
    def rename(self, target):
        if self.name == "onnx.incoming":
            die()
        return real(self, target)
    Path.rename = rename
sys.exit(promote.promote())
"""


@pytest.mark.parametrize(
    ("point", "left", "champion_after_crash", "recovered"),
    [
        ("downloaded", ["onnx", "onnx.download", "onnx.incoming"], 1, "deleted "),
        ("alias moved", ["onnx", "onnx.incoming"], 2, "deleted "),
        ("between renames", ["onnx.incoming", "onnx.previous"], 2, "finished an interrupted fetch"),
    ],
)
def test_a_promotion_killed_halfway_is_finished_by_the_next_run(
    project: Project,
    older_champion: registry.Registry,
    point: str,
    left: list[str],
    champion_after_crash: int,
    recovered: str,
) -> None:
    week = project.week
    crashed = project.run("python", "-c", CRASH, point, check=False, env={"REGISTERED_MODEL": older_champion.name})
    assert crashed.returncode == -signal.SIGKILL, crashed.stdout + crashed.stderr
    assert production_listing(week) == left
    assert registry.champion_version(older_champion) == champion_after_crash
    if "onnx" in left:
        assert record(week)["model_version"] == OLDER  # the old cache is served as it was

    result = promote(project, older_champion)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(recovered), result.stdout
    assert "nothing changed" not in result.stdout
    assert_candidate_in_production(week, older_champion)
