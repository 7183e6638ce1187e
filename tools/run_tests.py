"""Run the repo checks' tests, the bundle's tests and every week's tests, each in its own pytest process.

The weeks are copies that share module names (data.py, model.py, ...), so one pytest
process per week keeps their imports apart. Prints one summary table and a closing line
`total: N passed, N failed, N skipped`; exits 1 if anything failed or no test ran.

    python -m tools.run_tests               # tools/tests, bundle/tests, week_0 ... week_9, then the READMEs
    python -m tools.run_tests --only week_3_dvc
    python -m tools.run_tests --lanes 2     # two suites at a time: the container weeks beside the rest

With --lanes 2 the suites run in two lanes side by side: the weeks that build images (a
Dockerfile in the folder) and their READMEs in one, everything else in the other. Each lane runs
its suites one after another, so no two suites ever share a container engine's images; a
suite's output is printed in one block when it ends. One pytest process uses about 1.2 of 2
cores (much of a suite is waiting on subprocesses and servers), so two lanes finish sooner.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tools.container_skips import container_skips, describe
from tools.repeated_tests import repeated_tests
from tools.weeks import find_weeks

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / ".test-reports"
STARTED = time.monotonic()


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


@dataclass
class Suite:
    """One pytest process: its name, folder, target and extra arguments, and its lane."""

    name: str
    cwd: Path
    target: str
    extra: tuple[str, ...] = ()
    lane: str = "plain"


PRINT_LOCK = threading.Lock()


def run_suite(suite: Suite, extra: list[str], capture: bool = False) -> Outcome:
    """Run pytest on the suite's target inside its folder and collect its counts.

    capture: write the output to .test-reports/NAME.log and print it in one block at the end
    (two lanes would otherwise interleave their lines).
    """
    REPORTS.mkdir(exist_ok=True)
    report, log = REPORTS / f"{suite.name}.xml", REPORTS / f"{suite.name}.log"
    report.unlink(missing_ok=True)
    if not capture:
        print(f"\n===== {suite.name} =====", flush=True)
    started = time.monotonic()
    command = [sys.executable, "-m", "pytest", suite.target, "-q", "-rs", f"--junitxml={report}", *suite.extra, *extra]
    if capture:
        with open(log, "w") as output:
            exit_code = subprocess.call(command, cwd=suite.cwd, stdout=output, stderr=subprocess.STDOUT)
    else:
        exit_code = subprocess.call(command, cwd=suite.cwd)
    outcome = Outcome(suite.name, seconds=time.monotonic() - started, exit_code=exit_code)
    if capture:
        with PRINT_LOCK:
            print(f"\n===== {suite.name} ({suite.lane} lane, {outcome.seconds:.0f} s) =====", flush=True)
            print(log.read_text(errors="replace"), end="", flush=True)
    if report.exists():
        outcome.passed, outcome.failed, outcome.skipped = read_junit(report)
    if exit_code != 0 and outcome.failed == 0:
        outcome.failed = 1  # pytest itself failed (collection error, no tests, crash)
    return outcome


def all_suites(lanes: int) -> list[Suite]:
    """Every suite in running order; with lanes, the container weeks and their READMEs get their own lane."""
    weeks = find_weeks(ROOT)
    container_weeks = [week.name for week in weeks if (week / "Dockerfile").is_file()]
    suites = [Suite("tools", ROOT, "tools/tests"), Suite("bundle", ROOT, "bundle/tests")]
    suites += [
        Suite(week.name, week, "tests", lane="containers" if week.name in container_weeks else "plain")
        for week in weeks
    ]
    # Last: every week's README run as a learner would (tools/readme_check.py), in scratch copies.
    if lanes == 1 or not container_weeks:
        suites.append(Suite("readmes", ROOT, "tools/readme_tests"))
    else:
        plain = " or ".join(week.name for week in weeks if week.name not in container_weeks)
        suites.append(Suite("readmes", ROOT, "tools/readme_tests", ("-k", plain)))
        suites.append(
            Suite("readmes_containers", ROOT, "tools/readme_tests", ("-k", " or ".join(container_weeks)), "containers")
        )
    return suites


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--only", action="append", help="a week folder (or 'tools', 'bundle', 'readmes'); repeatable")
    parser.add_argument("--lanes", type=int, choices=(1, 2), default=1, help="suites run side by side (default 1)")
    parser.add_argument("pytest_args", nargs="*", help="passed on to every pytest run (after --)")
    args = parser.parse_args()

    suites = all_suites(args.lanes)
    if args.only:
        wanted = {*args.only, *(["readmes_containers"] if "readmes" in args.only else [])}
        suites = [suite for suite in suites if suite.name in wanted]
        if not suites:
            sys.exit(f"error: nothing matches --only {args.only}")

    # A test whose files are all as in the previous week's ran there already (tools/repeated_tests.py).
    weeks = find_weeks(ROOT)
    left_out = {week.name: repeated_tests(weeks[i - 1] if i else None, week) for i, week in enumerate(weeks)}
    for suite in suites:
        if left_out.get(suite.name):
            files = ", ".join(Path(path).stem.removeprefix("test_") for path in left_out[suite.name])
            print(f"{suite.name}: {len(left_out[suite.name])} test files not run again, as they and every file "
                  f"they exercise equal the previous week's (tools/repeated_tests.py): {files}")

    def run_lane(lane: list[Suite]) -> list[Outcome]:
        extra = [*args.pytest_args]
        return [
            run_suite(suite, [f"--ignore={path}" for path in left_out.get(suite.name, [])] + extra, args.lanes > 1)
            for suite in lane
        ]

    lanes = [[suite for suite in suites if suite.lane == name] for name in ("plain", "containers")]
    if args.lanes == 1:
        lanes = [suites]
    with ThreadPoolExecutor(max_workers=args.lanes) as pool:
        finished = [outcome for lane in pool.map(run_lane, [lane for lane in lanes if lane]) for outcome in lane]
    order = [suite.name for suite in suites]
    outcomes = sorted(finished, key=lambda outcome: order.index(outcome.name))

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
    print(f"time in tests: {minutes} min {seconds} s (suite times added up)")
    minutes, seconds = divmod(round(time.monotonic() - STARTED), 60)
    print(f"wall-clock time: {minutes} min {seconds} s ({args.lanes} lane{'s' if args.lanes > 1 else ''})")
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
