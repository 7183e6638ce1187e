"""Every week's README follows one convention: activate the course's environment once, at the top.

A learner copies commands from the READMEs into a terminal. Bare `python`, `dvc` or `uvicorn`
work only with the environment active, so each README says how once, before any other command,
from the right folder; after that no command names `../.venv/bin/` again (a cron line, which
runs without a terminal, is the one place an explicit path is right).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tools import weeks
from tools.readme_check import parse

READMES = [week / "README.md" for week in weeks.find_weeks(weeks.ROOT)]


@pytest.mark.parametrize("readme", READMES, ids=lambda path: path.parent.name)
def test_the_environment_is_activated_once_at_the_top(readme: Path) -> None:
    text = readme.read_text(encoding="utf-8")
    sections = re.findall(r"^## (.+)$", text, re.MULTILINE)
    assert sections[0] == "Before you start", f"{readme}: the first section must be 'Before you start'"
    first = parse(text)[0]
    commands = first.body.splitlines()
    assert commands[0] == f"cd {readme.parent.name}", f"{readme}: the first command must enter the week folder"
    assert commands[1].startswith("source ../.venv/bin/activate"), f"{readme}: then activate the environment"
    before_you_start = text[: text.index("## Before you start")].count("\n") + 1
    assert first.line > before_you_start, f"{readme}: a command comes before 'Before you start'"


@pytest.mark.parametrize("readme", READMES, ids=lambda path: path.parent.name)
def test_no_command_names_the_environment_again(readme: Path) -> None:
    text = readme.read_text(encoding="utf-8")
    for step in parse(text)[1:]:
        for line in step.body.splitlines():
            if re.match(r"^[\d*/,-]+ [\d*/,-]+ [\d*/,-]+ [\d*/,-]+ [\d*/,-]+ ", line):
                continue  # a crontab line runs without a terminal: it needs the explicit path
            assert ".venv/bin/" not in line, f"{readme}: `{line}` names the environment; it is active already"
            assert "activate" not in line, f"{readme}: `{line}` activates again; once at the top is enough"
