"""tools/container_skips.py: a skipped container or registry test fails CI, other skips do not."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tools import container_skips, run_tests
from tools.tests.test_run_tests import junit_of

# The weeks' own skip reasons (conftest.py, test_push_image.py, test_iam.py) and two that are not about containers.
WEEK_LIKE = """\
import pytest


@pytest.fixture
def container_engine():
    pytest.skip("container tests skipped: no container engine: start Docker, or run setup.sh")


def test_image(container_engine):
    pass


def test_push():
    pytest.skip("no OCI registry server to push to: apt-get install docker-registry")


def test_role_calls():
    pytest.skip("the calls of ECR_PUSH were not recorded here (they need a container engine)")


def test_prometheus():
    pytest.skip("promtool is not installed: `apt-get install prometheus` (CI installs it)")


@pytest.mark.skipif(True, reason="no qemu-x86_64: apt-get install qemu-user")
def test_emulated_cpu():
    pass


def test_runs():
    assert True
"""
ONLY_OTHER_SKIPS = """\
import pytest


def test_prometheus():
    pytest.skip("promtool is not installed")


def test_runs():
    assert True
"""


def test_container_and_registry_skips_are_found_with_their_reasons(tmp_path: Path) -> None:
    report = junit_of(tmp_path, "week_7_ecr", WEEK_LIKE)
    assert len(container_skips.skipped_tests(report)) == 5
    found = container_skips.container_skips([report])
    assert [skip.test.rpartition("::")[2] for skip in found] == ["test_image", "test_push", "test_role_calls"]
    assert found[0].suite == "week_7_ecr" and found[0].reason.startswith("container tests skipped: no container engine")


def test_the_check_fails_on_a_container_skip_and_passes_without(tmp_path: Path, capsys) -> None:
    bad, good = junit_of(tmp_path, "week_5_docker", WEEK_LIKE), junit_of(tmp_path, "week_4_onnx", ONLY_OTHER_SKIPS)
    assert container_skips.main([str(good), str(bad)]) == 1
    err = capsys.readouterr().err
    assert "week_5_docker: test_week_5_docker::test_push skipped: no OCI registry server" in err
    assert "3 container or registry test(s) skipped" in err and "promtool" not in err
    assert container_skips.main([str(good)]) == 0
    assert "no container or registry test skipped in 1 report(s)" in capsys.readouterr().out


def test_a_missing_or_broken_report_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"no test report at .*missing.xml: run `python -m tools.run_tests` first"):
        container_skips.main([str(tmp_path / "missing.xml")])
    (tmp_path / "cut.xml").write_text("<testsuites><testsuite")
    with pytest.raises(SystemExit, match=r"cut.xml is not a JUnit XML report"):
        container_skips.main([str(tmp_path / "cut.xml")])


def test_default_reports_are_the_weeks_only(tmp_path: Path) -> None:
    for name in ("week_5_docker", "week_9_monitoring", "tools", "readmes"):
        (tmp_path / f"{name}.xml").write_text("<testsuites/>")
    assert [p.stem for p in container_skips.week_reports(tmp_path)] == ["week_5_docker", "week_9_monitoring"]


def test_run_tests_fails_on_a_container_skip_only_when_containers_are_required(tmp_path: Path, monkeypatch) -> None:
    """tools.run_tests (what `make test` and ci.yml run) applies the check when MLOPS_REQUIRE_CONTAINERS=1."""
    junit_of(tmp_path, "week_7_ecr", WEEK_LIKE)

    def fake_suite(suite: run_tests.Suite, extra: list[str], capture: bool = False) -> run_tests.Outcome:
        passed, failed, skipped = run_tests.read_junit(tmp_path / f"{suite.name}.xml")
        return run_tests.Outcome(suite.name, passed, failed, skipped)

    monkeypatch.setattr(run_tests, "REPORTS", tmp_path)
    monkeypatch.setattr(run_tests, "run_suite", fake_suite)
    monkeypatch.setattr(sys, "argv", ["run_tests", "--only", "week_7_ecr"])
    monkeypatch.delenv("MLOPS_REQUIRE_CONTAINERS", raising=False)
    run_tests.main()  # one passed test, skips allowed: no exit
    monkeypatch.setenv("MLOPS_REQUIRE_CONTAINERS", "1")
    with pytest.raises(SystemExit) as exited:
        run_tests.main()
    assert exited.value.code == 1
