"""monitoring/promote.py when production/ is not what its record says: a deleted record, a broken
record, a record of another model, and an install killed at every step. Each fault is made for
real in a throwaway git+DVC project (the real `dvc repro` made the candidate); production starts
as an older, worse model, so every recovery ends with the candidate promoted."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from errors import CourseError
from helpers.dvc_project import Project, md5
from helpers.loop_project import first_model_project, production_listing, record
from monitoring.promote import read_record

OLDER = "v0-0000aaaa"  # the model production holds at the start of every test


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return first_model_project(tmp_path_factory.mktemp("promote"))


def candidate_version(week: Path) -> str:
    return json.loads((week / "artifacts" / "onnx" / "model_config.json").read_text())["model_version"]


def installed_version(week: Path) -> str:
    return json.loads((week / "production" / "onnx" / "model_config.json").read_text())["model_version"]


def production_files(week: Path) -> dict[str, str]:
    """sha256 of every file under production/, by path: what an error must leave as it was."""
    return {
        str(path.relative_to(week)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted((week / "production").rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def older_production(project: Project) -> Path:
    """production/ holding OLDER: a copy of the export relabelled, with a record 0.5 MCC worse than the candidate."""
    week = project.week
    production = week / "production"
    shutil.rmtree(production, ignore_errors=True)
    shutil.copytree(week / "artifacts" / "onnx", production / "onnx")
    config_file = production / "onnx" / "model_config.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "model_version": OLDER, "data_version": "v0"}))
    metrics = json.loads((week / "metrics.json").read_text())
    older = {
        "model_version": OLDER,
        "data_version": "v0",
        "metrics": {name: value - 0.5 for name, value in metrics.items()},
        "validation_md5": md5(week / "artifacts" / "prepared" / "validation.csv"),
        "promoted_at": "2026-11-01T00:00:00.000Z",
        "export_dir": "onnx",
    }
    (production / "model.json").write_text(json.dumps(older, indent=2) + "\n")
    return production


def promote(project: Project, *args: str) -> subprocess.CompletedProcess:
    return project.run("python", "-m", "monitoring.promote", *args, check=False)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def assert_candidate_in_production(week: Path) -> None:
    """A finished install: record and copy of the candidate, nothing left over."""
    assert production_listing(week) == ["model.json", "onnx"]
    assert record(week)["model_version"] == installed_version(week) == candidate_version(week)
    assert record(week)["metrics"] == json.loads((week / "metrics.json").read_text())
    for name in ("model.onnx", "model.int8.onnx", "tokenizer.json"):
        assert md5(week / "production" / "onnx" / name) == md5(week / "artifacts" / "onnx" / name)


# ----------------------------------------------------------------------------- the record


def test_a_deleted_record_does_not_let_an_installed_model_be_replaced(project: Project, older_production: Path) -> None:
    week = project.week
    (older_production / "model.json").unlink()
    before = production_files(week)
    result = promote(project)
    assert_one_line_error(
        result,
        f"{older_production / 'model.json'} is missing but {older_production / 'onnx'} holds {OLDER}",
        f"promoting {candidate_version(week)} would replace it without a comparison",
        "(that re-creates its record)",
        "python -m monitoring.promote --force",
    )
    assert production_files(week) == before

    forced = promote(project, "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "--force: " in forced.stdout and "it is replaced without a comparison" in forced.stdout
    assert "promoted: --force: promoted without comparing" in forced.stdout
    assert_candidate_in_production(week)


def test_a_deleted_record_of_the_installed_candidate_is_written_again(project: Project, older_production: Path) -> None:
    week = project.week
    assert promote(project).returncode == 0  # the candidate beats OLDER
    copy = {name: digest for name, digest in production_files(week).items() if "/onnx/" in name}
    (older_production / "model.json").unlink()
    result = promote(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"re-created {older_production / 'model.json'}" in result.stdout
    assert_candidate_in_production(week)
    assert {name: digest for name, digest in production_files(week).items() if "/onnx/" in name} == copy


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda record: record.pop("metrics"), "model.json has no metrics: only monitoring/promote.py writes it"),
        (lambda record: record["metrics"].update(mcc="high"), "model.json: metrics.mcc is 'high', not a number"),
        (lambda record: record["metrics"].update(accuracy="0.9"), "metrics.accuracy is '0.9', not a number"),
    ],
    ids=["no metrics", "a string mcc", "a string accuracy"],
)
def test_a_broken_record_is_a_one_line_error(project: Project, older_production: Path, change, message: str) -> None:
    path = older_production / "model.json"
    broken = json.loads(path.read_text())
    change(broken)
    path.write_text(json.dumps(broken))
    before = production_files(project.week)
    result = promote(project)
    assert_one_line_error(result, str(path), message, "python -m monitoring.promote --force")
    assert production_files(project.week) == before


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "holds a JSON list, not a record"),
        ('{"model_version": "v0-1", "metrics": "good"}', "metrics is not an object of metrics"),
        ('{"model_version": "v0-1", "metrics": {"accuracy": 0.7}}', "has no metrics.mcc"),
        ('{"model_version": "v0-1", "metrics": {"mcc": true}}', "metrics.mcc is True, not a number"),
        ('{"model_version": "v0-1", "metrics": {"mcc": NaN}}', "metrics.mcc is nan, not a number"),
        ('{"metrics": {"mcc": 0.3}}', "model_version is None, not a model version"),
        ('{"model_version": "v0-1", "metrics": {"mcc"', "cannot be read as JSON"),
    ],
)
def test_every_field_of_the_record_is_checked(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "model.json"
    path.write_text(text)
    with pytest.raises(CourseError, match=rf"^{re.escape(str(path))}.*{re.escape(message)}") as raised:
        read_record(path)
    assert "\n" not in str(raised.value)


def test_a_record_of_another_model_than_the_installed_one_is_refused(project: Project, older_production: Path) -> None:
    config_file = older_production / "onnx" / "model_config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "model_version": "v7-77777777"}))
    before = production_files(project.week)
    result = promote(project)
    assert_one_line_error(
        result, f"model.json records {OLDER} but {older_production / 'onnx'} holds v7-77777777", "--force"
    )
    assert production_files(project.week) == before


# ----------------------------------------------------------------------------- a crash halfway

# Runs the promotion and SIGKILLs itself at the Nth call of a function on an existing path named NAME
# (any name for "*"), so the folders are left exactly as a crash at that point of install() leaves them.
CRASH = """
import os, pathlib, shutil, signal, sys
from monitoring.promote import promote
function, name, nth = sys.argv[1], sys.argv[2], int(sys.argv[3])
owner = {"rename": pathlib.Path, "replace": os, "copyfile": shutil, "rmtree": shutil}[function]
real, calls = getattr(owner, function), []
def dying(*args, **kwargs):
    path = pathlib.Path(args[0])
    if path.exists() and name in ("*", path.name):
        calls.append(path)
        if len(calls) == nth:
            os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)
setattr(owner, function, dying)
sys.exit(promote())
"""


@pytest.mark.parametrize(
    ("kill_at", "left", "recovered"),
    [
        (("copyfile", "*", 2), ["model.json", "onnx", "onnx.incoming"], "deleted "),
        (
            ("replace", "model.json.incoming.tmp", 1),
            ["model.json", "model.json.incoming.tmp", "onnx", "onnx.incoming"],
            "deleted ",
        ),
        (
            ("rename", "onnx", 1),
            ["model.json", "model.json.incoming", "onnx", "onnx.incoming"],
            "finished an interrupted install",
        ),
        (
            ("rename", "onnx.incoming", 1),
            ["model.json", "model.json.incoming", "onnx.incoming", "onnx.previous"],
            "finished an interrupted install",
        ),
        (
            ("replace", "model.json.incoming", 1),
            ["model.json", "model.json.incoming", "onnx", "onnx.previous"],
            "finished an interrupted install",
        ),
        (("rmtree", "onnx.previous", 1), ["model.json", "onnx", "onnx.previous"], "deleted "),
    ],
    ids=[
        "while copying",
        "while writing the new record",
        "before the first rename",
        "between the two renames",
        "before the record is replaced",
        "before the old copy is deleted",
    ],
)
def test_an_install_killed_halfway_is_finished_by_the_next_run(
    project: Project, older_production: Path, kill_at: tuple[str, str, int], left: list[str], recovered: str
) -> None:
    week = project.week
    crashed = project.run("python", "-c", CRASH, kill_at[0], kill_at[1], str(kill_at[2]), check=False)
    assert crashed.returncode == -signal.SIGKILL, crashed.stdout + crashed.stderr
    assert production_listing(week) == left

    result = promote(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(recovered), result.stdout
    assert "nothing changed" not in result.stdout
    assert_candidate_in_production(week)


def test_the_crash_of_the_issue_is_undone_then_the_promotion_runs(project: Project, older_production: Path) -> None:
    """No production/onnx, the old copy in onnx.previous, the new one in onnx.incoming, the old record:
    what the first version of install() left when it died between its two renames."""
    week = project.week
    (older_production / "onnx").rename(older_production / "onnx.previous")
    shutil.copytree(week / "artifacts" / "onnx", older_production / "onnx.incoming")
    result = promote(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(
        f"undid an interrupted install: {older_production / 'onnx.previous'} moved back to {older_production / 'onnx'}"
    )
    assert f"{OLDER}  {candidate_version(week)}" in result.stdout  # compared with what was installed
    assert "promoted: candidate mcc" in result.stdout
    assert_candidate_in_production(week)
