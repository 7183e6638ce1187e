"""tools/repeated_tests.py: a heavy test is left out only where it and everything it exercises are unchanged."""

from __future__ import annotations

import shutil
from pathlib import Path

from tools.repeated_tests import exercised_files, repeated_tests


def make_week(root: Path, name: str) -> Path:
    """A tiny week: a heavy test running train.py, which imports data.py; an unrelated app.py."""
    week = root / name
    (week / "tests").mkdir(parents=True)
    (week / "tests" / "conftest.py").write_text("import os\n")
    (week / "tests" / "test_ddp.py").write_text("import subprocess\n\ndef test_it():\n    pass\n")
    (week / "train.py").write_text("from data import load\n")
    (week / "data.py").write_text("def load():\n    return 1\n")
    (week / "app.py").write_text("print('serve')\n")
    (week / "configs").mkdir()
    (week / "configs" / "config.yaml").write_text("lr: 0.001\n")
    return week


def test_an_unchanged_heavy_test_is_left_out_and_a_change_it_exercises_brings_it_back(tmp_path: Path) -> None:
    first = make_week(tmp_path, "week_1")
    second = tmp_path / "week_2"
    shutil.copytree(first, second)
    (second / "app.py").write_text("print('serve, changed')\n")  # not exercised by test_ddp.py
    assert repeated_tests(first, second, last=False) == ["tests/test_ddp.py"]
    assert repeated_tests(first, second, last=True) == []  # the last week runs everything
    assert repeated_tests(None, first, last=False) == []  # the first week too

    (second / "data.py").write_text("def load():\n    return 2\n")  # imported by train.py
    assert repeated_tests(first, second, last=False) == []
    (second / "data.py").write_text((first / "data.py").read_text())
    (second / "configs" / "config.yaml").write_text("lr: 0.01\n")  # a folder the code reads
    assert repeated_tests(first, second, last=False) == []


def test_the_exercised_files_follow_week_local_imports_only(tmp_path: Path) -> None:
    week = make_week(tmp_path, "week_1")
    files = exercised_files(week, "tests/test_ddp.py", ("train.py", "inference.py"))
    assert {"tests/test_ddp.py", "tests/conftest.py", "train.py", "data.py", "configs"} <= files
    assert "app.py" not in files and "subprocess.py" not in files
