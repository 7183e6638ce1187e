"""Tests for tools.pins on small fake repos built in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import pins

LOCK = """# Full pinned lock
--index-url https://example.org/simple
Foo_Bar==1.0
moto[server]==5.2.5
torch==2.13.0  # installed first
"""
TOP = "moto[server]==5.2.5\ntorch==2.13.0\n"
WEEK = "week_0_base/requirements.txt"


def make_repo(root: Path, week: str, top: str = TOP) -> Path:
    (root / "requirements.txt").write_text(LOCK)
    (root / "requirements.in").write_text(top)
    (root / "week_0_base").mkdir()
    (root / WEEK).write_text(week)
    return root


def run(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = pins.main(["--root", str(root)])
    return code, capsys.readouterr().out


def test_normalise_name() -> None:
    assert (
        pins.normalise_name("Foo_Bar.baz") == pins.normalise_name("foo-bar--baz") == "foo-bar-baz"
    )


def test_agreeing_pins_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Normalised names, extras and comments all fine.
    make_repo(tmp_path, "# comment\nfoo-bar==1.0\nmoto==5.2.5\n\ntorch == 2.13.0 # cpu\n")
    code, out = run(tmp_path, capsys)
    assert code == 0, out
    assert "2 requirements files checked, every pin agrees" in out


def test_disagreeing_pin_fails_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_repo(tmp_path, "foo-bar==1.0\ntorch==2.0.0\n")
    code, out = run(tmp_path, capsys)
    assert code == 1
    assert (
        f"{WEEK}:2: torch==2.0.0 but the root requirements.txt pins torch==2.13.0 (line 5): "
        "use torch==2.13.0"
    ) in out


def test_extras_are_ignored_but_versions_still_compared(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_repo(tmp_path, "moto[server]==5.2.4\n")
    code, out = run(tmp_path, capsys)
    assert code == 1
    assert f"{WEEK}:1: moto==5.2.4 but the root requirements.txt pins moto==5.2.5" in out


def test_unpinned_lines_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_repo(tmp_path, "torch>=2\nfoo-bar\nmoto==5.*\n-e .\n")
    code, out = run(tmp_path, capsys)
    assert code == 1
    assert (
        f"{WEEK}:1: `torch>=2` is not an exact pin: write name==version, e.g. torch==2.13.0" in out
    )
    assert f"{WEEK}:2: `foo-bar` is not an exact pin" in out
    assert f"{WEEK}:3: `moto==5.*` is not an exact pin" in out
    assert f"{WEEK}:4: `-e .` is not an exact pin" in out


def test_unknown_and_duplicate_packages_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_repo(tmp_path, "leftpad==1.0\ntorch==2.13.0\nTorch==2.13.0\n")
    code, out = run(tmp_path, capsys)
    assert code == 1
    assert f"{WEEK}:1: leftpad is not in the root requirements.txt" in out
    assert f"{WEEK}:3: torch is listed again (first on line 2)" in out


def test_requirements_in_must_agree_with_the_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_repo(tmp_path, "torch==2.13.0\n", top="torch==2.12.0\nmoto[server]==5.2.5\n")
    code, out = run(tmp_path, capsys)
    assert code == 1
    assert (
        "requirements.in:1: torch==2.12.0 but the root requirements.txt pins torch==2.13.0" in out
    )


def test_missing_lock_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(tmp_path, capsys)
    assert code == 1
    assert "there is no root requirements.txt" in out


def test_other_requirements_files_of_a_week_are_checked_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_repo(tmp_path, "torch==2.13.0\n")
    (tmp_path / "week_0_base" / "requirements-serve.txt").write_text("moto==5.2.4\n")
    code, out = run(tmp_path, capsys)
    assert code == 1
    assert "week_0_base/requirements-serve.txt:1: moto==5.2.4 but the root requirements.txt pins moto==5.2.5" in out
