"""Check that every pin in the repo agrees with the root lock, requirements.txt.

The root requirements.txt pins the whole course environment (`name==version`, one a line).
Each `week_*/requirements*.txt` (a week's requirements.txt, and e.g. the requirements-serve.txt an
image installs) lists just what it needs, and every line there must be
an exact pin that agrees with the root's. The root requirements.in (the top-level pins that
`make lock` resolves) must agree with the lock too.

    python -m tools.pins          # make check-pins
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from tools.report import report
from tools.weeks import find_weeks

ROOT = Path(__file__).resolve().parents[1]
LOCK = "requirements.txt"
TOP_LEVEL = "requirements.in"
# name, optional [extras], then the version specifier (markers after ";" are dropped first).
REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")
EXACT = re.compile(r"^==\s*([A-Za-z0-9][A-Za-z0-9.+!_-]*)$")


@dataclass
class Requirement:
    """One requirement line: where it is, the name as written, and its exact version."""

    line: int
    text: str
    name: str = ""
    version: str | None = None  # None when the line is not an exact `==` pin


def normalise_name(name: str) -> str:
    """PEP 503 name normalisation: Foo_Bar.baz and foo-bar-baz are the same package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_requirements(path: Path) -> list[Requirement]:
    """The requirement lines of a file, skipping blanks, comments and `--` options."""
    requirements = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = re.sub(r"(^|\s)#.*$", "", raw).strip()  # comments: whole-line or after a space
        if not text or text.startswith("--"):
            continue
        requirement = Requirement(number, text)
        match = REQUIREMENT.match(text.split(";")[0].strip())
        if match and not text.startswith("-"):
            requirement.name = normalise_name(match.group(1))
            exact = EXACT.match(match.group(3).strip())
            # "==1.*" is a prefix match, not a pin.
            if exact and "*" not in exact.group(1):
                requirement.version = exact.group(1)
        requirements.append(requirement)
    return requirements


def read_lock(root: Path) -> tuple[dict[str, Requirement], list[str]]:
    """The root lock as {normalised name: requirement}, plus its own problems."""
    lock: dict[str, Requirement] = {}
    problems = []
    for requirement in parse_requirements(root / LOCK):
        where = f"{LOCK}:{requirement.line}"
        if requirement.version is None:
            problems.append(
                f"{where}: `{requirement.text}` is not an exact pin: the lock pins every "
                "package as name==version (regenerate it with `make lock`)"
            )
        elif requirement.name in lock:
            first = lock[requirement.name].line
            problems.append(f"{where}: {requirement.name} is pinned again (first on line {first})")
        else:
            lock[requirement.name] = requirement
    return lock, problems


def check_file(path: Path, label: str, lock: dict[str, Requirement]) -> list[str]:
    """Problems of one requirements file measured against the lock."""
    problems = []
    seen: dict[str, int] = {}
    for requirement in parse_requirements(path):
        where = f"{label}:{requirement.line}"
        name, version = requirement.name, requirement.version
        if version is None:
            hint = f", e.g. {name}=={lock[name].version}" if name in lock else ""
            problems.append(
                f"{where}: `{requirement.text}` is not an exact pin: write name==version{hint}"
            )
        elif name not in lock:
            problems.append(
                f"{where}: {name} is not in the root {LOCK}: add it to {TOP_LEVEL} and run "
                "`make lock`, or drop it"
            )
        elif version != lock[name].version:
            pinned = lock[name].version
            problems.append(
                f"{where}: {name}=={version} but the root {LOCK} pins {name}=={pinned} "
                f"(line {lock[name].line}): use {name}=={pinned}"
            )
        if name and name in seen:
            problems.append(f"{where}: {name} is listed again (first on line {seen[name]})")
        elif name:
            seen[name] = requirement.line
    return problems


def check_pins(root: Path) -> tuple[int, list[str]]:
    """Check requirements.in and every week's requirements*.txt. Returns (files, problems)."""
    if not (root / LOCK).is_file():
        return 0, [f"there is no root {LOCK} in {root}: run `make lock`"]
    lock, problems = read_lock(root)
    files = [(root / TOP_LEVEL, TOP_LEVEL)] if (root / TOP_LEVEL).is_file() else []
    for week in find_weeks(root):
        # requirements.txt, and any other set a week installs (e.g. requirements-serve.txt for an image)
        for path in sorted(week.glob("requirements*.txt")):
            files.append((path, f"{week.name}/{path.name}"))
    for path, label in files:
        problems += check_file(path, label, lock)
    return len(files), problems


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.pins",
        description="Check that requirements.in and every week's pins agree with the root lock.",
    )
    parser.add_argument("--root", type=Path, default=ROOT, help="repo root (default: %(default)s)")
    args = parser.parse_args(argv)
    count, problems = check_pins(args.root)
    return report(
        problems,
        failed=f"{len(problems)} pin problem(s); see above.",
        passed=f"{count} requirements files checked, every pin agrees with the root {LOCK}",
    )


if __name__ == "__main__":
    sys.exit(main())
