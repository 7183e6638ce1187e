"""Fail when a week's tests skipped a container or registry test: in CI those must run.

`MLOPS_REQUIRE_CONTAINERS=1` already turns a missing container engine or registry server into
a failure where the tests look for them. This check covers every other way such a test can end
up skipped (a new test that forgot the variable, an IAM recording that lacked the image tests):
it reads the JUnit XML reports `python -m tools.run_tests` writes and lists each skipped test
whose reason names a container engine, an image registry, or calls only the image tests record.

    python -m tools.container_skips                       # .test-reports/week_*.xml
    python -m tools.container_skips .test-reports/week_7_ecr.xml

Exit status 0 when there is none, 1 with one line per skipped test (and its reason) otherwise.
`tools.run_tests` runs the same check after the weeks when MLOPS_REQUIRE_CONTAINERS=1.
"""

from __future__ import annotations

import argparse
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / ".test-reports"

# Words of the weeks' skip reasons for tests that need an engine or a registry, e.g.
# "container tests skipped: no container engine ...", "no OCI registry server to push to ...",
# "the calls of ECR_PUSH were not recorded here (they need a container engine)".
CONTAINER_REASON = re.compile(r"container|registry|docker|podman|recorded here", re.IGNORECASE)


@dataclass(frozen=True)
class Skip:
    """One skipped test case of a report."""

    suite: str
    test: str
    reason: str


def skipped_tests(report: Path) -> list[Skip]:
    """Every skipped test case of one pytest JUnit XML report, with its reason."""
    try:
        root = ET.parse(report).getroot()
    except FileNotFoundError:
        raise SystemExit(f"error: no test report at {report}: run `python -m tools.run_tests` first") from None
    except ET.ParseError as error:
        raise SystemExit(f"error: {report} is not a JUnit XML report ({error}): run the tests again") from None
    found = []
    for case in root.iter("testcase"):
        for skipped in case.findall("skipped"):
            reason = skipped.get("message") or (skipped.text or "").strip()
            test = f"{case.get('classname', '')}::{case.get('name', '')}"
            found.append(Skip(report.stem, test, reason))
    return found


def container_skips(reports: list[Path]) -> list[Skip]:
    """The skipped tests of `reports` whose reason says they needed a container engine or a registry."""
    return [skip for report in reports for skip in skipped_tests(report) if CONTAINER_REASON.search(skip.reason)]


def week_reports(reports_dir: Path = REPORTS) -> list[Path]:
    """The weeks' reports in `reports_dir` (tools, bundle and the READMEs are not weeks)."""
    return sorted(reports_dir.glob("week_*.xml"))


def describe(skips: list[Skip]) -> str:
    """One line per skipped test, then what to do."""
    lines = [f"{skip.suite}: {skip.test} skipped: {skip.reason}" for skip in skips]
    lines.append(
        f"{len(skips)} container or registry test(s) skipped: CI must build, run and push the images "
        "(a container engine, and docker-registry on PATH; see tools/containers/setup.sh)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("reports", nargs="*", type=Path, help="JUnit XML reports (default: .test-reports/week_*.xml)")
    args = parser.parse_args(argv)
    reports = args.reports or week_reports()
    if not reports:
        print(f"error: no week reports in {REPORTS}: run `python -m tools.run_tests` first", file=sys.stderr)
        return 1
    skips = container_skips(reports)
    if skips:
        print(describe(skips), file=sys.stderr)
        return 1
    print(f"no container or registry test skipped in {len(reports)} report(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
