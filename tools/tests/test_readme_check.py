"""tools/readme_check.py on small READMEs: marks, output matching, and a run in a scratch copy."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tools.readme_check import output_matches, parse, run_week

SETUP = "```bash\ncd week_0_fake\nsource ../.venv/bin/activate\n```\n"


def test_marks_are_read_from_the_lines_above_a_block() -> None:
    text = (
        SETUP
        + "<!-- check: skip because it needs an AWS account -->\n```bash\naws s3 ls\n```\n"
        + "<!-- check: replace `train.py` with `train.py --quick` -->\n<!-- check: exit 3 -->\n"
        + "```bash\npython train.py\n```\n"
        + "<!-- check: output within 0.02 -->\n```\naccuracy=0.79\n```\n"
        + "  <!-- check: background on port 8000 -->\n  ```bash\n  uvicorn app:app\n  ```\n"
    )
    setup, aws, train, server = parse(text)
    assert setup.body.startswith("cd week_0_fake") and setup.skip is None
    assert aws.skip == "it needs an AWS account"
    assert train.command() == "python train.py --quick\n" and train.exit_code == 3
    assert train.expected == [("accuracy=0.79\n", 0.02)]
    assert server.port == 8000 and server.body == "uvicorn app:app\n"  # indented in a list: dedented


def test_an_unknown_mark_or_a_replacement_that_does_not_apply_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown mark `skip it`"):
        parse(SETUP + "<!-- check: skip it -->\n```bash\nls\n```\n")
    (_, step) = parse(SETUP + "<!-- check: replace `nope` with `x` -->\n```bash\nls\n```\n")
    with pytest.raises(ValueError, match="`nope` \\(a replace mark\\) is not in the block"):
        step.command()


def test_output_matches_in_order_with_wildcards_and_tolerances() -> None:
    printed = "noise\nbest checkpoint: /tmp/x/week_0/best.ckpt\nvalidation: accuracy=0.797 mcc=0.622\n"
    shown = "best checkpoint: .../week_0/best.ckpt\nvalidation: accuracy=0.792 mcc=0.604\n"
    assert output_matches(shown, printed) is None  # numbers stand for numbers
    assert output_matches(shown, printed, within=0.02) is None
    assert output_matches(shown, printed, within=0.01) == "validation: accuracy=0.792 mcc=0.604"
    assert output_matches("validation: ...\nbest checkpoint: x", printed) == "best checkpoint: x"  # order counts
    assert output_matches("week_1", printed, within=0.5) == "week_1"  # integers match exactly
    # A table whose columns line up differently, with a negative change, still matches.
    table = "Path  Metric  my-data-v1  workspace  Change\nmetrics.json  mcc  0.4671        0.6036       0.1365"
    assert output_matches(table, "Path Metric my-data-v1 workspace Change\nmetrics.json mcc 0.21 0.2 -0.01\n") is None


def fake_week(root: Path, readme: str) -> Path:
    week = root / "week_0_fake"
    week.mkdir(parents=True)
    (week / "README.md").write_text(readme)
    (week / "data.txt").write_text("1\n2\n3\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    return week


def test_a_week_runs_in_order_in_a_scratch_copy_and_stops_at_the_first_failure(tmp_path: Path) -> None:
    readme = SETUP.replace("source ../.venv/bin/activate", "true") + (
        "```bash\nwc -l < data.txt\necho made > made.txt\n```\n"
        "<!-- check: output -->\n```\n3\n```\n"
        "<!-- check: skip because it needs a person -->\n```bash\nread answer\n```\n"
        "```bash\ncat made.txt && false\n```\n"
        "```bash\necho never\n```\n"
    )
    week = fake_week(tmp_path, readme)
    results = run_week(week, stream=open("/dev/null", "w"))  # noqa: SIM115
    assert [result.status for result in results] == ["ran", "skipped", "failed"]  # and no end-of-README check
    assert results[1].detail == "it needs a person"
    assert "exit 1, the README expects 0" in results[2].detail and "made" in results[2].detail
    assert not (week / "made.txt").exists()  # the scratch copy, never the week itself


def test_output_the_readme_shows_but_the_step_did_not_print_fails(tmp_path: Path) -> None:
    readme = SETUP.replace("source ../.venv/bin/activate", "true") + (
        "```bash\necho accuracy=0.70\n```\n<!-- check: output within 0.05 -->\n```\naccuracy=0.79\n```\n"
    )
    (result,) = run_week(fake_week(tmp_path, readme), stream=open("/dev/null", "w"))  # noqa: SIM115
    assert result.status == "failed" and "the README shows `accuracy=0.79`" in result.detail


def test_a_file_git_would_pick_up_after_the_readme_fails_the_week(tmp_path: Path) -> None:
    readme = SETUP.replace("source ../.venv/bin/activate", "true") + "```bash\necho 1 > drift.json\n```\n"
    week = fake_week(tmp_path, readme)
    (tmp_path / ".gitignore").write_text("")
    results = run_week(week, stream=open("/dev/null", "w"))  # noqa: SIM115
    assert [result.status for result in results] == ["ran", "failed"]
    assert results[-1].line == 0 and results[-1].detail == "files .gitignore misses: week_0_fake/drift.json"
