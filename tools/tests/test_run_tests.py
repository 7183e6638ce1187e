"""tools/run_tests.py: counts and the slowest tests read from pytest's JUnit reports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tools import run_tests

PASSING = "def test_quick():\n    assert True\n\n\ndef test_slow():\n    import time\n    time.sleep(0.3)\n"
FAILING = (
    "import pytest\n\n\ndef test_fails():\n    assert 1 == 2\n\n\n"
    "@pytest.mark.skip(reason='x')\ndef test_skipped():\n    pass\n"
)


def junit_of(tmp_path: Path, name: str, source: str) -> Path:
    """A real JUnit report: pytest run on a small test file."""
    (tmp_path / f"test_{name}.py").write_text(source)
    report = tmp_path / f"{name}.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", f"test_{name}.py"],
        cwd=tmp_path,
        capture_output=True,
    )
    return report


def test_counts_and_slowest_tests_from_real_reports(tmp_path: Path) -> None:
    passing, failing = junit_of(tmp_path, "ok", PASSING), junit_of(tmp_path, "bad", FAILING)
    assert run_tests.read_junit(passing) == (2, 0, 0)
    assert run_tests.read_junit(failing) == (0, 1, 1)
    slowest = run_tests.slowest_tests([passing, failing, tmp_path / "missing.xml"], count=2)
    assert len(slowest) == 2
    assert slowest[0][1] == "ok::test_ok::test_slow" and slowest[0][0] >= 0.3
    assert slowest[0][0] >= slowest[1][0]


def test_two_lanes_keep_the_container_weeks_together_and_split_the_readmes() -> None:
    one, two = run_tests.all_suites(1), run_tests.all_suites(2)
    assert [suite.name for suite in one][-1] == "readmes" and {suite.lane for suite in one[:2]} == {"plain"}
    weeks = [suite for suite in two if suite.name.startswith("week_")]
    container = [suite.name for suite in weeks if suite.lane == "containers"]
    assert container == [suite.name for suite in weeks if (suite.cwd / "Dockerfile").is_file()]
    assert container and container[0] == "week_5_docker" and container[-1] == weeks[-1].name
    readmes = {suite.name: suite for suite in two if suite.name.startswith("readmes")}
    assert readmes["readmes"].lane == "plain" and readmes["readmes_containers"].lane == "containers"
    # Between them, the two -k expressions name every week once.
    named = [name for suite in readmes.values() for name in suite.extra[1].split(" or ")]
    assert sorted(named) == sorted(suite.name for suite in weeks)
