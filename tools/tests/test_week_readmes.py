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

FENCE = re.compile(r"^ *```(\w*)\n(.*?)^ *```", re.MULTILINE | re.DOTALL)
READMES = [week / "README.md" for week in weeks.find_weeks(weeks.ROOT)]


def shell_blocks(text: str) -> list[tuple[int, str]]:
    """(offset, body) of every fenced bash/sh block."""
    return [(m.start(), m.group(2)) for m in FENCE.finditer(text) if m.group(1) in ("bash", "sh", "shell")]


@pytest.mark.parametrize("readme", READMES, ids=lambda path: path.parent.name)
def test_the_environment_is_activated_once_at_the_top(readme: Path) -> None:
    text = readme.read_text(encoding="utf-8")
    sections = re.findall(r"^## (.+)$", text, re.MULTILINE)
    assert sections[0] == "Before you start", f"{readme}: the first section must be 'Before you start'"
    blocks = shell_blocks(text)
    first = blocks[0][1].splitlines()
    assert first[0] == f"cd {readme.parent.name}", f"{readme}: the first command must enter the week folder"
    assert first[1].startswith("source ../.venv/bin/activate"), f"{readme}: then activate the environment"
    assert text.index("## Before you start") < blocks[0][0], f"{readme}: a command comes before 'Before you start'"


@pytest.mark.parametrize("readme", READMES, ids=lambda path: path.parent.name)
def test_no_command_names_the_environment_again(readme: Path) -> None:
    text = readme.read_text(encoding="utf-8")
    for _, body in shell_blocks(text)[1:]:
        for line in body.splitlines():
            if re.match(r"^[\d*/,-]+ [\d*/,-]+ [\d*/,-]+ [\d*/,-]+ [\d*/,-]+ ", line):
                continue  # a crontab line runs without a terminal: it needs the explicit path
            assert ".venv/bin/" not in line, f"{readme}: `{line}` names the environment; it is active already"
            assert "activate" not in line, f"{readme}: `{line}` activates again; once at the top is enough"
