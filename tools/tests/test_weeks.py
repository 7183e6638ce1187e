"""Tests for tools.weeks on small fake repos built in tmp_path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tools import week_files, weeks
from tools.weeks import END_MARK, START_MARK

W0, W1, W2, W3 = "week_0_base", "week_1_next", "week_2_more", "week_3_last"


def readme(title: str) -> str:
    return f"# {title}\n\n## What's new this week\n\n{START_MARK}\n{END_MARK}\n\nMore text.\n"


# Each week's files (relative to the repo root) and week.toml. The lessons:
#   week 1 adds plots.py and changes train.py; week 2 removes plots.py and adds the configs/
#   folder; week 3 changes util.py. README.md changes every week.
FILES = {
    f"{W0}/train.py": "print('v0')\n",
    f"{W0}/util.py": "def helper():\n    return 0\n",
    f"{W0}/data/train.csv": "text,label\nhi,1\n",
    f"{W1}/train.py": "print('v1')\n",
    f"{W1}/util.py": "def helper():\n    return 0\n",
    f"{W1}/data/train.csv": "text,label\nhi,1\n",
    f"{W1}/plots.py": "PLOTS = True\n",
    f"{W2}/train.py": "print('v1')\n",
    f"{W2}/util.py": "def helper():\n    return 0\n",
    f"{W2}/data/train.csv": "text,label\nhi,1\n",
    f"{W2}/configs/a.yaml": "a: 1\n",
    f"{W2}/configs/b.yaml": "b: 2\n",
    f"{W3}/train.py": "print('v1')\n",
    f"{W3}/util.py": "def helper():\n    return 3\n",
    f"{W3}/data/train.csv": "text,label\nhi,1\n",
    f"{W3}/configs/a.yaml": "a: 1\n",
    f"{W3}/configs/b.yaml": "b: 2\n",
}
TOMLS = {
    W0: """title = "Setup"

[added]
"README.md" = "how to run it"
"train.py" = "training"
"util.py" = "helpers"
"data/" = "bundled data"
""",
    W1: f"""title = "Plots"
previous = "{W0}"

[added]
"plots.py" = "plotting"

[changed]
"train.py" = "prints v1"
"README.md" = "this week's lesson"
""",
    W2: f"""title = "Configs"
previous = "{W1}"

[added]
"configs/" = "config tree"

[changed]
"README.md" = "this week's lesson"

[removed]
"plots.py" = "replaced by configs"
""",
    W3: f"""title = "Last"
previous = "{W2}"

[changed]
"util.py" = "returns 3"
"README.md" = "this week's lesson"
""",
}


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def build_repo(root: Path, use_git: bool = True) -> Path:
    """A clean four-week repo whose declarations and README sections all hold."""
    for relative, text in FILES.items():
        write(root / relative, text)
    for week, text in TOMLS.items():
        write(root / week / "week.toml", text)
        write(root / week / "README.md", readme(week))
    if use_git:
        git(root, "init", "-q")
        write(root / ".gitignore", "artifacts/\n__pycache__/\n")
    updated, problems = weeks.write_readmes(root)
    assert problems == [] and len(updated) == 4
    return root


def run(root: Path, *args: str) -> int:
    return weeks.main(["--root", str(root), *args])


def check_output(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = run(root, "check")
    return code, capsys.readouterr().out


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return build_repo(tmp_path)


# --------------------------------------------------------------------------------- check


def test_clean_repo_passes(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = check_output(repo, capsys)
    assert code == 0, out
    assert out.strip() == "4 weeks checked in the files on disk (no git commit to compare), all declarations hold"


def test_clean_repo_passes_without_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Stop git from finding an enclosing repo, so the folder walk is what runs.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    root = build_repo(tmp_path, use_git=False)
    write(root / W1 / "__pycache__" / "train.cpython-311.pyc", "cache")
    write(root / W2 / ".pytest_cache" / "v" / "x", "cache")
    assert week_files.in_git_work_tree(root) is False
    code, out = check_output(root, capsys)
    assert code == 0, out
    # Without git nothing is ignored except the caches: a new file is reported.
    write(root / W2 / "artifacts" / "model.ckpt", "weights")
    code, out = check_output(root, capsys)
    assert code == 1
    assert f"{W2}/artifacts/model.ckpt is new (not in {W1})" in out


def test_find_weeks_orders_by_number(tmp_path: Path) -> None:
    for name in ["week_10_ten", "week_2_two", "week_1_one", "notes", "week_x_bad"]:
        (tmp_path / name).mkdir()
    assert [w.name for w in weeks.find_weeks(tmp_path)] == [
        "week_1_one",
        "week_2_two",
        "week_10_ten",
    ]


def test_undeclared_change_fails_naming_the_file(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(repo / W2 / "train.py", "print('fixed')\n")
    code, out = check_output(repo, capsys)
    assert code == 1
    assert (
        f"{W2}/train.py differs from {W1}/train.py but week.toml does not declare it: "
        f"declare it under [changed], or carry the earlier week's fix forward with "
        f"`make sync FILE={W1}/train.py`"
    ) in out
    # Week 3 now differs from the fixed week 2 as well.
    assert f"{W3}/train.py differs from {W2}/train.py" in out
    assert "Traceback" not in out


def test_declared_changed_but_identical_fails(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(repo / W1 / "train.py", FILES[f"{W0}/train.py"])
    write(repo / W2 / "train.py", FILES[f"{W0}/train.py"])
    write(repo / W3 / "train.py", FILES[f"{W0}/train.py"])
    code, out = check_output(repo, capsys)
    assert code == 1
    assert f"declares train.py under [changed] but it is identical to {W0}/train.py" in out


def test_declared_changed_but_missing_fails(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toml = TOMLS[W3] + '"nothere.py" = "typo"\n'
    write(repo / W3 / "week.toml", toml)
    weeks.write_readmes(repo)
    code, out = check_output(repo, capsys)
    assert code == 1
    assert f'declares "nothere.py" under [changed] but neither {W3} nor {W2} has it' in out


def test_vanished_file_fails(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / W2 / "util.py").unlink()
    code, out = check_output(repo, capsys)
    assert code == 1
    assert (
        f"{W1}/util.py vanished from {W2}: declare it under [removed], or bring it back "
        f"with `make sync FILE={W1}/util.py`"
    ) in out
    # Week 3 still has util.py, so relative to week 2 it is new and undeclared as added.
    assert f"declares util.py under [changed] but {W2} has no util.py" in out


def test_undeclared_new_file_fails(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(repo / W3 / "extra.py", "x = 1\n")
    code, out = check_output(repo, capsys)
    assert code == 1
    assert f"{W3}/extra.py is new (not in {W2}) but week.toml does not declare it" in out


def test_declared_added_but_already_present_fails(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(repo / W3 / "week.toml", TOMLS[W3] + '\n[added]\n"train.py" = "again"\n')
    weeks.write_readmes(repo)
    code, out = check_output(repo, capsys)
    assert code == 1
    assert f"declares train.py under [added] but {W2}/train.py already exists" in out


def test_declared_removed_but_still_present_fails(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(repo / W2 / "plots.py", "PLOTS = True\n")
    code, out = check_output(repo, capsys)
    assert code == 1
    assert f"declares plots.py under [removed] but {W2}/plots.py still exists" in out


def test_folder_entries(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A changed folder: one file differs, one is new; the others under it may stay the same.
    write(repo / W3 / "configs" / "a.yaml", "a: 2\n")
    write(repo / W3 / "configs" / "c.yaml", "c: 3\n")
    write(repo / W3 / "week.toml", TOMLS[W3] + '"configs/" = "reworked configs"\n')
    weeks.write_readmes(repo)
    code, out = check_output(repo, capsys)
    assert code == 0, out

    # A changed folder in which nothing differs is a stale entry.
    write(repo / W3 / "week.toml", TOMLS[W3] + '"data/" = "new data"\n')
    weeks.write_readmes(repo)
    code, out = check_output(repo, capsys)
    assert code == 1
    assert f'declares "data/" under [changed] but nothing under it differs from {W2}' in out


def test_folder_entry_without_slash_gets_a_hint(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toml = TOMLS[W0].replace('"data/"', '"data"')
    write(repo / W0 / "week.toml", toml)
    weeks.write_readmes(repo)
    code, out = check_output(repo, capsys)
    assert code == 1
    assert f"{W0}/data/train.csv is not declared: declare it under [added]" in out
    assert '(it is a folder: write "data/")' in out


def test_first_week_declares_every_file(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(repo / W0 / "week.toml", TOMLS[W0].replace('"util.py" = "helpers"\n', ""))
    write(repo / W0 / "week.toml", (repo / W0 / "week.toml").read_text() + '"gone.py" = "x"\n')
    weeks.write_readmes(repo)
    code, out = check_output(repo, capsys)
    assert code == 1
    assert f"{W0}/util.py is not declared: declare it under [added]" in out
    assert f'declares "gone.py" under [added] but {W0}/gone.py does not exist' in out


def test_bad_previous_fails(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(repo / W2 / "week.toml", TOMLS[W2].replace(f'previous = "{W1}"', f'previous = "{W0}"'))
    code, out = check_output(repo, capsys)
    assert code == 1
    assert (f'{W2}/week.toml says previous = "{W0}" but the week before {W2} is {W1}: set previous = "{W1}"') in out


def test_declaration_errors(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toml = TOMLS[W1].replace('"plots.py" = "plotting"', '"plots.py" = ""') + (
        'colour = "blue"\n\n[removed]\n"train.py" = "twice"\n'
    )
    # `colour` lands inside [changed] in TOML; put a real unknown top-level key first.
    write(repo / W1 / "week.toml", 'owner = "me"\n' + toml)
    (repo / W3 / "week.toml").unlink()
    code, out = check_output(repo, capsys)
    assert code == 1
    assert f'{W1}/week.toml has an unknown key "owner"' in out
    assert f'{W1}/week.toml: "plots.py" under [added] needs a one-line reason' in out
    assert f'{W1}/week.toml declares "train.py" under both [changed] and [removed]' in out
    assert f"{W3}/week.toml is missing" in out


def test_invalid_toml_is_reported_not_raised(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(repo / W1 / "week.toml", "title = \n")
    code, out = check_output(repo, capsys)
    assert code == 1
    assert f"{W1}/week.toml is not valid TOML" in out


def test_week_toml_is_never_compared(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "week.toml" not in weeks.list_files(repo, repo / W1)


# ---------------------------------------------------------------------------- git handling


def test_gitignored_and_deleted_files_are_not_considered(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(repo / W2 / "artifacts" / "model.ckpt", "weights")
    write(repo / W3 / "__pycache__" / "util.cpython-311.pyc", "cache")
    git(repo, "add", "-A")
    # Tracked in the index but deleted on disk (in both weeks that have it): gone for good.
    (repo / W2 / "configs" / "b.yaml").unlink()
    (repo / W3 / "configs" / "b.yaml").unlink()
    files = weeks.list_files(repo, repo / W2)
    assert "artifacts/model.ckpt" not in files and "configs/b.yaml" not in files
    code, out = check_output(repo, capsys)
    assert code == 0, out


# ---------------------------------------------------------------------------------- README


def test_readme_section_rendering(repo: Path) -> None:
    text = (repo / W1 / "README.md").read_text()
    assert (
        f"{START_MARK}\nCompared with [{W0}](../{W0}/) — see it with `make diff WEEK=1`:\n\n"
        "| change | file | why |\n| --- | --- | --- |\n"
        "| added | `plots.py` | plotting |\n"
        "| changed | `README.md` | this week's lesson |\n"
        "| changed | `train.py` | prints v1 |\n"
        f"{END_MARK}\n\nMore text.\n"
    ) in text
    first = (repo / W0 / "README.md").read_text()
    assert "Everything is new in week 0:" in first
    assert "| added | `data/` | bundled data |" in first
    removed = (repo / W2 / "README.md").read_text()
    assert removed.index("| added |") < removed.index("| changed |") < removed.index("| removed |")


def test_stale_readme_fails_and_readme_fixes_it(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(repo / W1 / "week.toml", TOMLS[W1].replace("prints v1", "prints version one"))
    code, out = check_output(repo, capsys)
    assert code == 1
    assert f"{W1}/README.md's \"What's new this week\" section does not match week.toml" in out
    assert "make weeks-readme" in out

    assert run(repo, "readme") == 0
    assert f"updated {W1}/README.md" in capsys.readouterr().out
    code, out = check_output(repo, capsys)
    assert code == 0, out
    assert run(repo, "readme") == 0
    assert "already up to date" in capsys.readouterr().out


def test_readme_without_markers_fails(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(repo / W3 / "README.md", "# Week 3\n\nNo section here.\n")
    code, out = check_output(repo, capsys)
    assert code == 1
    assert f"{W3}/README.md lacks the {START_MARK} and {END_MARK} markers" in out
    assert run(repo, "readme") == 1
    assert "add them under a `## What's new this week` heading" in capsys.readouterr().out


# ------------------------------------------------------------------------------------ sync


def test_sync_copies_forward_and_stops_at_a_declaring_week(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fixed = "def helper():\n    return 0  # fixed\n"
    write(repo / W0 / "util.py", fixed)
    code, out = check_output(repo, capsys)
    assert code == 1 and f"{W1}/util.py differs from {W0}/util.py" in out

    assert run(repo, "sync", f"{W0}/util.py") == 0
    out = capsys.readouterr().out
    assert f"copied {W0}/util.py -> {W1}/util.py" in out
    assert f"copied {W1}/util.py -> {W2}/util.py" in out
    assert f"{W3} declares util.py under [changed]" in out and "by hand" in out
    assert (repo / W2 / "util.py").read_text() == fixed
    assert (repo / W3 / "util.py").read_text() == FILES[f"{W3}/util.py"]
    code, out = check_output(repo, capsys)
    assert code == 0, out


def test_sync_a_folder_to_the_last_week(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(repo / W1 / "data" / "train.csv", "text,label\nhello,1\n")
    write(repo / W1 / "data" / "extra" / "more.csv", "text,label\n")
    (repo / W2 / "data" / "train.csv").unlink()  # the copy recreates what is missing
    write(repo / W0 / "week.toml", TOMLS[W0])
    assert run(repo, "sync", f"./{W1}/data/") == 0
    out = capsys.readouterr().out
    assert f"copied {W1}/data/extra/more.csv -> {W2}/data/extra/more.csv" in out
    assert f"copied {W2}/data/train.csv -> {W3}/data/train.csv" in out
    assert f"carried forward to the last week, {W3}" in out
    assert (repo / W3 / "data" / "extra" / "more.csv").is_file()


def test_sync_rejects_bad_paths(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(repo, "sync", "train.py") == 1
    assert "must be a file inside a week folder" in capsys.readouterr().out
    assert run(repo, "sync", f"{W0}/nope.py") == 1
    assert "does not exist" in capsys.readouterr().out


def test_sync_refuses_keys_and_ignored_files(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The fixture's .gitignore does not name .env: the name alone must keep it out of every week.
    write(repo / W1 / ".env", "WANDB_API_KEY=0123456789abcdef\n")
    code, out = check_output(repo, capsys)
    assert code == 0 and ".env" not in out, out
    assert run(repo, "sync", f"{W1}/.env") == 1
    assert "looks like a file of keys" in capsys.readouterr().out
    write(repo / W1 / "configs" / "prod.pem", "-----BEGIN PRIVATE KEY-----\n")
    assert run(repo, "sync", f"{W1}/configs/") == 1
    assert "prod.pem looks like a file of keys" in capsys.readouterr().out
    write(repo / W1 / "artifacts" / "model.ckpt", "weights")
    assert run(repo, "sync", f"{W1}/artifacts/model.ckpt") == 1
    assert "is ignored by git" in capsys.readouterr().out
    assert not (repo / W2 / ".env").exists() and not (repo / W2 / "artifacts").exists()
    assert not (repo / W2 / "configs" / "prod.pem").exists()


def test_repository_ignores_a_learners_env_files() -> None:
    names = ["week_1_wandb_logging/.env", "week_7_ecr/.env.local", "week_9_monitoring/deploy.pem"]
    done = subprocess.run(["git", "check-ignore", *names], cwd=weeks.ROOT, capture_output=True, text=True)
    assert done.stdout.split() == names
    kept = subprocess.run(["git", "check-ignore", "week_1_wandb_logging/.env.example"], cwd=weeks.ROOT)
    assert kept.returncode == 1  # the template stays tracked


def commit_all(root: Path) -> None:
    git(root, "add", "-A")
    git(root, "-c", "user.name=Course", "-c", "user.email=course@example.com", "commit", "-q", "-m", "the course")


def test_check_compares_the_last_commit_and_lists_a_learners_files(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commit_all(repo)
    # What doing the course leaves: an edited tracked file, a new output, and a file of keys.
    write(repo / W3 / "util.py", "def helper():\n    return 4  # the learner's edit\n")
    write(repo / W2 / "metrics.json", '{"acc": 0.7}\n')
    write(repo / W1 / ".env", "WANDB_API_KEY=not-a-real-key\n")
    code, out = check_output(repo, capsys)
    assert code == 0, out
    assert "4 weeks checked in the last commit (HEAD " in out
    assert (
        f"not checked: 2 file(s) in the week folders differ from the last commit ({W2}/metrics.json, {W3}/util.py)"
        in out
    )
    assert ".env" not in out
    # The same files on disk are what a developer checks before committing: both are problems there.
    assert run(repo, "check", "--worktree") == 1
    out = capsys.readouterr().out
    assert f"{W2}/metrics.json is new (not in {W1})" in out
    assert "in the files on disk; see above" in out
    # Committed, the change is part of the course: the default check sees it.
    commit_all(repo)
    code, out = check_output(repo, capsys)
    assert code == 1 and f"{W2}/metrics.json is new (not in {W1})" in out and "not checked" not in out


def test_diff_shows_the_committed_lesson_unless_asked_for_the_files_on_disk(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commit_all(repo)
    write(repo / W1 / "train.py", "print('mine')\n")
    assert run(repo, "diff", "1") == 0
    out = capsys.readouterr().out
    assert "+print('v1')\n" in out and "mine" not in out
    assert run(repo, "diff", "1", "--worktree") == 0
    assert "+print('mine')\n" in capsys.readouterr().out


# ------------------------------------------------------------------------------------ diff


def test_diff_shows_the_lesson(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(repo, "diff", "1") == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{W1}: Plots\nCompared with {W0}\n")
    assert "  added    plots.py   plotting" in out
    assert "  changed  train.py   prints v1" in out
    assert f"--- a/{W0}/train.py\n+++ b/{W1}/train.py\n" in out
    assert "-print('v0')\n+print('v1')\n" in out
    assert f"+++ b/{W1}/plots.py\n@@ -0,0 +1 @@\n+PLOTS = True\n" in out
    assert "week.toml" not in out
    assert f"b/{W1}/util.py" not in out  # unchanged files are not shown


def test_diff_removed_and_binary_files(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / W3 / "logo.png").write_bytes(b"\x89PNG\0\0binary")
    write(repo / W3 / "week.toml", TOMLS[W3] + '\n[added]\n"logo.png" = "a logo"\n')
    assert run(repo, "diff", "3") == 0
    assert f"added binary file: b/{W3}/logo.png" in capsys.readouterr().out
    assert run(repo, "diff", W2) == 0
    assert f"removed: a/{W1}/plots.py" in capsys.readouterr().out


def test_diff_unknown_week(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(repo, "diff", "7") == 1
    assert "no week 7: the weeks are 0, 1, 2, 3" in capsys.readouterr().out


# ------------------------------------------------------------------------------------- CLI


def test_cli_module_exit_codes(repo: Path) -> None:
    tools_root = Path(__file__).resolve().parents[2]
    command = [sys.executable, "-m", "tools.weeks", "--root", str(repo), "check"]
    ok = subprocess.run(command, cwd=tools_root, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    write(repo / W1 / "util.py", "broken\n")
    bad = subprocess.run(command, cwd=tools_root, capture_output=True, text=True)
    assert bad.returncode == 1
    assert f"{W1}/util.py differs from {W0}/util.py" in bad.stdout
    assert "Traceback" not in bad.stderr


# ----------------------------------------------------------------------------- CI matrix


def test_ci_matrix_must_list_every_week(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names = sorted(week.name for week in weeks.find_weeks(repo))
    matrix = "jobs:\n  week:\n    strategy:\n      matrix:\n        week:\n"
    write(repo / ".github/workflows/ci.yml", matrix + "".join(f"          - {name}\n" for name in names))
    code, out = check_output(repo, capsys)
    assert code == 0, out

    write(
        repo / ".github/workflows/ci.yml",
        matrix + "".join(f"          - {name}\n" for name in names[:-1]) + "          - week_99_gone\n",
    )
    code, out = check_output(repo, capsys)
    assert code == 1
    assert f"{names[-1]} is not in the week matrix" in out
    assert "lists week_99_gone in its week matrix, but there is no such folder" in out
