"""tools/repeated_tests.py: a test is left out only where it and everything it exercises are unchanged."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tools.repeated_tests import WHOLE_WEEK, exercised, repeated_tests

CONFTEST = '''"""Fixtures."""
import os
import shutil
from pathlib import Path

import pytest

WEEK_DIR = Path(__file__).resolve().parents[1]
os.environ["MODE"] = "offline"


@pytest.fixture
def trained():
    from train import fit
    return fit()


@pytest.fixture
def week_copy(tmp_path):
    for path in WEEK_DIR.iterdir():
        if path.is_file():
            shutil.copy2(path, tmp_path / path.name)
    return tmp_path
'''


def make_week(root: Path, name: str) -> Path:
    """A tiny week in a git repository: tests that train, run a script, copy the week; an unrelated app."""
    week = root / name
    (week / "tests").mkdir(parents=True)
    (week / "tests" / "conftest.py").write_text(CONFTEST)
    (week / "tests" / "test_train.py").write_text("def test_it(trained):\n    assert trained == 1\n")
    (week / "tests" / "test_cli.py").write_text(
        "import subprocess, sys\n\ndef test_cli():\n    subprocess.run([sys.executable, 'evaluate.py'])\n"
    )
    (week / "tests" / "test_copy.py").write_text("def test_copy(week_copy):\n    assert week_copy\n")
    (week / "tests" / "test_dvc.py").write_text("def test_dvc():\n    open('dvc.yaml')\n")
    (week / "train.py").write_text("from data import load\n\ndef fit():\n    return load()\n")
    (week / "data.py").write_text("def load():\n    return 1\n")
    (week / "evaluate.py").write_text("print('evaluate')\n")
    (week / "prepare.py").write_text("print('prepare')\n")
    (week / "dvc.yaml").write_text("stages:\n  prepare:\n    cmd: python prepare.py\n")
    (week / "app.py").write_text("print('serve')\n")
    (week / "README.md").write_text("# A week\n")
    (week / "configs").mkdir()
    (week / "configs" / "config.yaml").write_text("lr: 0.001\n")
    return week


def two_weeks(tmp_path: Path) -> tuple[Path, Path]:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    first = make_week(tmp_path, "week_1")
    second = tmp_path / "week_2"
    shutil.copytree(first, second)
    return first, second


def test_unchanged_tests_are_left_out_and_a_change_they_exercise_brings_them_back(tmp_path: Path) -> None:
    first, second = two_weeks(tmp_path)
    every = ["tests/test_cli.py", "tests/test_copy.py", "tests/test_dvc.py", "tests/test_train.py"]
    assert repeated_tests(first, second) == every
    assert repeated_tests(None, first) == []  # the first week runs everything

    (second / "README.md").write_text("# A week, explained\n")  # read by no test
    assert repeated_tests(first, second) == every

    (second / "app.py").write_text("print('serve, changed')\n")  # only the week copy sees it
    assert repeated_tests(first, second) == ["tests/test_cli.py", "tests/test_dvc.py", "tests/test_train.py"]

    (second / "data.py").write_text("def load():\n    return 2\n")  # imported by train.py, from a fixture
    assert "tests/test_train.py" not in repeated_tests(first, second)

    (second / "evaluate.py").write_text("print('evaluate, changed')\n")  # a script a test runs by name
    assert "tests/test_cli.py" not in repeated_tests(first, second)

    (second / "prepare.py").write_text("print('prepare, changed')\n")  # named by dvc.yaml, which a test reads
    assert "tests/test_dvc.py" not in repeated_tests(first, second)


def test_a_folder_the_code_reads_brings_every_test_back(tmp_path: Path) -> None:
    first, second = two_weeks(tmp_path)
    (second / "configs" / "config.yaml").write_text("lr: 0.01\n")
    assert repeated_tests(first, second) == []


def test_a_conftest_that_only_gains_a_fixture_leaves_the_old_tests_as_they_were(tmp_path: Path) -> None:
    first, second = two_weeks(tmp_path)
    conftest = second / "tests" / "conftest.py"
    conftest.write_text(conftest.read_text() + "\n\n@pytest.fixture\ndef image():\n    return 'built'\n")
    (second / "tests" / "test_image.py").write_text("def test_image(image):\n    assert image\n")
    # test_copy.py copies the whole week, which now holds a new test: it runs again.
    assert repeated_tests(first, second) == ["tests/test_cli.py", "tests/test_dvc.py", "tests/test_train.py"]

    conftest.write_text(conftest.read_text().replace("return fit()", "return fit() + 0"))  # a fixture used
    assert "tests/test_train.py" not in repeated_tests(first, second)
    assert "tests/test_cli.py" in repeated_tests(first, second)

    conftest.write_text(conftest.read_text().replace('"offline"', '"online"'))  # acts on every test
    assert repeated_tests(first, second) == []


def test_the_whole_week_counts_where_the_code_copies_the_week_folder(tmp_path: Path) -> None:
    first, _ = two_weeks(tmp_path)
    assert WHOLE_WEEK in exercised(first, "tests/test_copy.py")
    assert WHOLE_WEEK not in exercised(first, "tests/test_train.py")
    files = exercised(first, "tests/test_train.py")
    assert {"tests/test_train.py", "train.py", "data.py", "configs"} <= files
    assert "app.py" not in files and "evaluate.py" not in files


def test_a_test_that_makes_aws_calls_runs_where_a_test_reads_the_recorded_calls(tmp_path: Path) -> None:
    first, second = two_weeks(tmp_path)
    for week in (first, second):
        (week / "deploy.py").write_text("import boto3\n")
        (week / "tests" / "test_deploy.py").write_text("import deploy\n\ndef test_deploy():\n    pass\n")
    assert "tests/test_deploy.py" in repeated_tests(first, second)  # nothing reads its calls: left out

    reader = "import pytest\n\n@pytest.mark.after_recorded_aws_calls\ndef test_policies():\n    pass\n"
    for week in (first, second):
        (week / "tests" / "test_iam.py").write_text(reader)
    (second / "README.md").write_text("# the reader runs again\n")
    (second / "tests" / "test_iam.py").write_text(reader + "# README.md\nREADME = 'README.md'\n")
    left_out = repeated_tests(first, second)
    assert "tests/test_iam.py" not in left_out
    assert "tests/test_deploy.py" not in left_out  # its calls must be recorded for test_iam.py
    assert "tests/test_train.py" in left_out  # no AWS calls: still left out
