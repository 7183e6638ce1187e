"""tools/secret_scan.py: a key in the files, in the git history or in a folder fails the scan; the baseline and the
one planted-fixture rule let exactly what they name through."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tools import secret_scan

PLANTED = Path(__file__).parent / "fixtures" / "planted_aws_key.env"
# AWS's documentation example, read from the fixture: written here, this file would fail the scan itself.
KEY_ID = PLANTED.read_text().split("AWS_ACCESS_KEY_ID=")[1].split()[0]


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args], cwd=repo, check=True,
                   capture_output=True)  # fmt: skip


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one clean commit and a baseline that accepts it."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "app.py").write_text('print("hello")\n')
    git(root, "add", "app.py")
    git(root, "commit", "-q", "-m", "clean")
    assert secret_scan.main(["--repo", str(root), "--update-baseline"]) == 0
    return root


def test_the_planted_fixture_holds_a_key_the_scanner_finds(tmp_path: Path) -> None:
    copy = tmp_path / "settings.env"
    shutil.copy(PLANTED, copy)
    assert [f.kind for f in secret_scan.scan_directory(tmp_path)] == ["AWS Access Key"]
    assert KEY_ID in PLANTED.read_text()


def test_a_clean_repository_passes(repo: Path, capsys) -> None:
    assert secret_scan.main(["--repo", str(repo)]) == 0
    assert "no new secret in the files and git history" in capsys.readouterr().out


def test_a_key_in_a_file_fails_with_its_place(repo: Path, capsys) -> None:
    (repo / "config").mkdir()
    shutil.copy(PLANTED, repo / "config" / "settings.env")  # untracked, not ignored: a commit away
    assert secret_scan.main(["--repo", str(repo), "--no-history"]) == 1
    err = capsys.readouterr().err
    assert "secret: config/settings.env:4: AWS Access Key" in err and KEY_ID not in err


def test_a_key_removed_again_still_fails_from_the_history(repo: Path, capsys) -> None:
    shutil.copy(PLANTED, repo / "settings.env")
    git(repo, "add", "settings.env")
    git(repo, "commit", "-q", "-m", "oops")
    git(repo, "rm", "-q", "settings.env")
    git(repo, "commit", "-q", "-m", "remove the key")
    assert secret_scan.main(["--repo", str(repo), "--no-history"]) == 0  # the files are clean now
    capsys.readouterr()
    assert secret_scan.main(["--repo", str(repo)]) == 1
    assert "secret: settings.env:4 (git history, blob " in capsys.readouterr().err


def test_history_lines_seen_in_the_files_are_not_scanned_twice_but_new_ones_are(repo: Path) -> None:
    (repo / "notes.md").write_text("one\ntwo\n")
    git(repo, "add", "notes.md")
    git(repo, "commit", "-q", "-m", "notes")
    (repo / "notes.md").write_text("one\n" + PLANTED.read_text().splitlines()[3] + "\ntwo\n")
    git(repo, "commit", "-q", "-am", "a key in the notes")
    (repo / "notes.md").write_text("one\ntwo\n")
    git(repo, "commit", "-q", "-am", "gone")
    history = [f for f in secret_scan.scan_repository(repo) if f.commit]
    assert [(f.path, f.line, f.kind) for f in history] == [("notes.md", 2, "AWS Access Key")]


def test_the_planted_fixture_rule_is_narrow(repo: Path, capsys) -> None:
    fixtures = repo / "week_5_docker" / "tests" / "fixtures"
    fixtures.mkdir(parents=True)
    shutil.copy(PLANTED, fixtures / "planted_aws_key.env")
    assert secret_scan.main(["--repo", str(repo), "--no-history"]) == 0  # exactly that name in tests/fixtures
    for elsewhere in (fixtures / "other.env", repo / "planted_aws_key.env", repo / "tests" / "planted_aws_key.env"):
        elsewhere.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PLANTED, elsewhere)
        capsys.readouterr()
        assert secret_scan.main(["--repo", str(repo), "--no-history"]) == 1, elsewhere
        elsewhere.unlink()


def test_the_baseline_accepts_what_it_lists_and_is_a_detect_secrets_baseline(repo: Path) -> None:
    from detect_secrets.core.baseline import load_from_file
    from detect_secrets.core.secrets_collection import SecretsCollection

    shutil.copy(PLANTED, repo / "moto_test_keys.env")
    assert secret_scan.main(["--repo", str(repo), "--no-history"]) == 1
    assert secret_scan.main(["--repo", str(repo), "--no-history", "--update-baseline"]) == 0
    assert secret_scan.main(["--repo", str(repo), "--no-history"]) == 0
    baseline = repo / ".secrets.baseline"
    loaded = SecretsCollection.load_from_baseline(load_from_file(str(baseline)))
    assert [(name, s.type) for name, s in loaded] == [("moto_test_keys.env", "AWS Access Key")]
    assert KEY_ID not in baseline.read_text()  # hashes only
    # The same key in another file is not accepted by the first file's entry.
    shutil.copy(PLANTED, repo / "other.env")
    assert secret_scan.main(["--repo", str(repo), "--no-history"]) == 1
    assert json.loads(baseline.read_text())["version"] == "1.5.0"


def test_a_missing_baseline_is_one_line(repo: Path) -> None:
    (repo / ".secrets.baseline").unlink()
    with pytest.raises(
        SystemExit, match=r"no baseline at .*: create it with `python -m tools.secret_scan --update-baseline`"
    ):
        secret_scan.main(["--repo", str(repo), "--no-history"])


def test_a_folder_scan_skips_links_and_the_named_folders(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "proc").mkdir()
    shutil.copy(PLANTED, tmp_path / "proc" / "environ")
    (tmp_path / "app" / "link.env").symlink_to(PLANTED)
    assert secret_scan.scan_directory(tmp_path, skip=["proc"]) == []
    shutil.copy(PLANTED, tmp_path / "app" / "baked.env")
    assert [(f.path, f.line) for f in secret_scan.scan_directory(tmp_path, skip=["proc"])] == [("app/baked.env", 4)]
