"""Run the repo checks' tests, the bundle's tests and every week's tests, each in its own pytest process.

The weeks are copies that share module names (data.py, model.py, ...), so one pytest
process per week keeps their imports apart. Prints one summary table and a closing line
`total: N passed, N failed, N skipped`; exits 1 if anything failed or no test ran.

    python -m tools.run_tests               # tools/tests, bundle/tests, week_0 ... week_9, then the READMEs
    python -m tools.run_tests --only week_3_dvc
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from tools.container_skips import container_skips, describe
from tools.repeated_tests import repeated_tests
from tools.weeks import find_weeks

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / ".test-reports"


@dataclass
class Outcome:
    """Counts of one pytest process."""

    name: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    exit_code: int = 0


def read_junit(path: Path) -> tuple[int, int, int]:
    """(passed, failed, skipped) from a pytest JUnit XML report."""
    suite = ET.parse(path).getroot()
    if suite.tag == "testsuites":
        suite = suite[0]
    total = int(suite.get("tests", 0))
    failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    skipped = int(suite.get("skipped", 0))
    return total - failed - skipped, failed, skipped


def slowest_tests(reports: list[Path], count: int = 10) -> list[tuple[float, str]]:
    """The `count` slowest test cases over all reports: (seconds, suite::test), slowest first.

    pytest's JUnit time covers setup, call and teardown, so a session fixture that trains a
    model shows up in the first test that uses it.
    """
    cases: list[tuple[float, str]] = []
    for report in reports:
        if not report.exists():
            continue
        for case in ET.parse(report).getroot().iter("testcase"):
            name = f"{report.stem}::{case.get('classname', '')}::{case.get('name', '')}"
            cases.append((float(case.get("time", 0.0)), name))
    return sorted(cases, reverse=True)[:count]


def run_suite(name: str, cwd: Path, target: str, extra: list[str]) -> Outcome:
    """Run pytest on `target` inside `cwd` and collect its counts."""
    REPORTS.mkdir(exist_ok=True)
    report = REPORTS / f"{name}.xml"
    report.unlink(missing_ok=True)
    print(f"\n===== {name} =====", flush=True)
    started = time.monotonic()
    command = [sys.executable, "-m", "pytest", target, "-q", "-rs", f"--junitxml={report}", *extra]
    exit_code = subprocess.call(command, cwd=cwd)
    outcome = Outcome(name, seconds=time.monotonic() - started, exit_code=exit_code)
    if report.exists():
        outcome.passed, outcome.failed, outcome.skipped = read_junit(report)
    if exit_code != 0 and outcome.failed == 0:
        outcome.failed = 1  # pytest itself failed (collection error, no tests, crash)
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--only", action="append", help="a week folder (or 'tools', 'bundle', 'readmes'); repeatable")
    parser.add_argument("pytest_args", nargs="*", help="passed on to every pytest run (after --)")
    args = parser.parse_args()

    suites = [("tools", ROOT, "tools/tests"), ("bundle", ROOT, "bundle/tests")]
    suites += [(week.name, week, "tests") for week in find_weeks(ROOT)]
    # Last: every week's README run as a learner would (tools/readme_check.py), in scratch copies.
    suites.append(("readmes", ROOT, "tools/readme_tests"))
    if args.only:
        suites = [suite for suite in suites if suite[0] in args.only]
        if not suites:
            sys.exit(f"error: nothing matches --only {args.only}")

    # A test whose files are all as in the previous week's ran there already (tools/repeated_tests.py).
    weeks = find_weeks(ROOT)
    left_out = {
        week.name: repeated_tests(weeks[i - 1] if i else None, week)
        for i, week in enumerate(weeks)
    }
    outcomes = []
    for name, cwd, target in suites:
        extra = [f"--ignore={path}" for path in left_out.get(name, [])]
        if extra:
            files = ", ".join(Path(path).stem.removeprefix("test_") for path in left_out[name])
            print(f"\n{name}: {len(extra)} test files not run again, as they and every file they exercise "
                  f"equal the previous week's (tools/repeated_tests.py): {files}")
        outcomes.append(run_suite(name, cwd, target, [*extra, *args.pytest_args]))

    print("\nslowest tests (seconds, setup included):")
    for seconds, name in slowest_tests([REPORTS / f"{o.name}.xml" for o in outcomes]):
        print(f"{seconds:8.1f}  {name}")
    print("\n{:<26} {:>7} {:>7} {:>8} {:>8}".format("suite", "passed", "failed", "skipped", "seconds"))
    for o in outcomes:
        print(f"{o.name:<26} {o.passed:>7} {o.failed:>7} {o.skipped:>8} {o.seconds:>8.1f}")
    passed = sum(o.passed for o in outcomes)
    failed = sum(o.failed for o in outcomes)
    skipped = sum(o.skipped for o in outcomes)
    minutes, seconds = divmod(round(sum(o.seconds for o in outcomes)), 60)
    print(f"time in tests: {minutes} min {seconds} s")
    print(f"total: {passed} passed, {failed} failed, {skipped} skipped")
    # CI (MLOPS_REQUIRE_CONTAINERS=1) must build, run and push the images: a skipped one is a failure.
    container_skipped = []
    if os.environ.get("MLOPS_REQUIRE_CONTAINERS") == "1":
        week_reports = [REPORTS / f"{o.name}.xml" for o in outcomes if o.name.startswith("week_")]
        container_skipped = container_skips([report for report in week_reports if report.exists()])
        if container_skipped:
            print(describe(container_skipped))
    if failed or passed == 0 or container_skipped:
        sys.exit(1)


if __name__ == "__main__":
    main()
