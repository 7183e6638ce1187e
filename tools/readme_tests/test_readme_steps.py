"""Each shell block of each week's README, run in order in a scratch copy of the week.

One test per step: a step the README marks as not runnable here is skipped with its reason; a
step after a failed one fails as not run. `python -m tools.readme_check N` runs one week by hand.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tools.readme_check import ROOT, Result, Step, parse, run_week
from tools.weeks import find_weeks

CASES = [
    (week, step)
    for week in find_weeks(ROOT)
    for step in parse((week / "README.md").read_text(encoding="utf-8"))[1:]  # [0]: cd + activate
]


@pytest.fixture(scope="session")
def week_results() -> Callable[[object], dict[int, Result]]:
    """The results of a week's README, run once (all its steps, in order), by the line of each step."""
    cache: dict[str, dict[int, Result]] = {}

    def results(week) -> dict[int, Result]:
        if week.name not in cache:
            cache[week.name] = {result.line: result for result in run_week(week)}
        return cache[week.name]

    return results


@pytest.mark.parametrize(("week", "step"), CASES, ids=[f"{week.name}:{step.line}" for week, step in CASES])
def test_readme_step(week, step: Step, week_results) -> None:
    if step.skip:
        pytest.skip(f"{week.name}/README.md line {step.line}: not run here because {step.skip}")
    result = week_results(week).get(step.line)
    assert result is not None, f"{week.name}/README.md line {step.line} did not run: a step before it failed"
    assert result.status == "ran", f"{week.name}/README.md line {step.line}:\n{result.detail}"


@pytest.mark.parametrize("week", find_weeks(ROOT), ids=lambda week: week.name)
def test_doing_the_week_leaves_no_file_git_would_pick_up(week, week_results) -> None:
    """After every step, `git status` lists no new file: a learner's outputs are all git-ignored."""
    result = week_results(week).get(0)
    assert result is not None, f"{week.name}/README.md: a step failed, so the README did not run to its end"
    assert result.status == "ran", f"{week.name}/README.md: {result.detail}"
