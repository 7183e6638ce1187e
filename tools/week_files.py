"""The files the week checker compares: what the last commit holds, or what is on disk.

A learner doing the course changes files in the week folders: a `.env`, `params.yaml` edited
for data v2, a new `metrics.json` and `dvc.lock`. Those are the learner's work, not the
course's lesson, so `check` and `diff` compare what is committed (HEAD) by default; the
learner's uncommitted files are listed, not reported as problems. A developer checks their
work before committing with `--worktree` (`make check-weeks WORKTREE=1`), which compares the
files on disk, as does every run outside a git repository or before its first commit.
"""

from __future__ import annotations

import filecmp
import os
import re
import subprocess
from pathlib import Path

DECLARATION = "week.toml"
WEEK_PATTERN = re.compile(r"^week_(\d+)_\w+$")
# Used only when the repo is not a git work tree; with git, .gitignore decides.
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".venv", ".git"}
SKIP_SUFFIXES = (".pyc",)
# Names that hold keys: never compared, copied or advised, even when git would track them.
SECRET_NAME = re.compile(r"^(\.env(\..+)?|.+\.(pem|key)|credentials(\.json)?|id_(rsa|ed25519|ecdsa))$")


def is_secret_name(path: str) -> bool:
    """Whether a week file's name says it holds keys (.env, *.pem, credentials, ...)."""
    name = Path(path).name
    return name != ".env.example" and SECRET_NAME.match(name) is not None


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, check=False)


def in_git_work_tree(root: Path) -> bool:
    """Whether `root` is inside a git work tree (False when git is not installed)."""
    try:
        result = _git(root, "rev-parse", "--is-inside-work-tree")
    except FileNotFoundError:
        return False
    return result.returncode == 0 and result.stdout.strip() == b"true"


def _lesson_files(paths: list[str]) -> set[str]:
    """Leave out the declaration itself and every file of keys."""
    return {p for p in paths if p != DECLARATION and not is_secret_name(p)}


class DiskFiles:
    """The files on disk: the ones git tracks or would track (without git, all but caches)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.git = in_git_work_tree(root)
        self.description = "the files on disk"

    def files(self, week: str) -> set[str]:
        """The week's files as posix paths relative to the week folder, without week.toml."""
        found: list[str] = []
        if self.git:
            command = ["ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", week]
            for name in os.fsdecode(_git(self.root, *command).stdout).split("\0"):
                # A file deleted on disk but still in the index is gone for the lesson.
                if name and (self.root / name).is_file():
                    found.append(Path(name).relative_to(week).as_posix())
        else:
            for folder, dirs, names in os.walk(self.root / week):
                dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
                found += [
                    (Path(folder) / name).relative_to(self.root / week).as_posix()
                    for name in names
                    if not name.endswith(SKIP_SUFFIXES)
                ]
        return _lesson_files(found)

    def read(self, relative: str) -> bytes | None:
        """A file's bytes by its path from the repository root, or None when it does not exist."""
        path = self.root / relative
        return path.read_bytes() if path.is_file() else None

    def same(self, first: str, second: str) -> bool:
        return filecmp.cmp(self.root / first, self.root / second, shallow=False)


class CommittedFiles:
    """The files of a commit (HEAD by default), read with git: the learner's working files never count."""

    def __init__(self, root: Path, revision: str = "HEAD") -> None:
        self.root = root
        self.revision = revision
        listing = _git(root, "ls-tree", "-r", "-z", "--full-tree", revision)
        if listing.returncode != 0:
            raise ValueError(f"git cannot list {revision}: {listing.stderr.decode().strip()}")
        self.blobs: dict[str, str] = {}  # path from the root -> blob id
        for entry in os.fsdecode(listing.stdout).split("\0"):
            if entry:
                meta, path = entry.split("\t", 1)
                mode, kind, blob = meta.split()
                if kind == "blob" and mode != "120000":  # files only: no links, no submodules
                    self.blobs[path] = blob
        short = _git(root, "rev-parse", "--short", revision).stdout.decode().strip()
        self.description = f"the last commit ({revision} {short})"

    def files(self, week: str) -> set[str]:
        prefix = week + "/"
        return _lesson_files([path[len(prefix) :] for path in self.blobs if path.startswith(prefix)])

    def read(self, relative: str) -> bytes | None:
        blob = self.blobs.get(relative)
        return None if blob is None else _git(self.root, "cat-file", "blob", blob).stdout

    def same(self, first: str, second: str) -> bool:
        return self.blobs.get(first) == self.blobs.get(second)


def week_files(root: Path, worktree: bool = False) -> DiskFiles | CommittedFiles:
    """What to compare: the last commit, unless `worktree` is asked for or there is no commit."""
    if not worktree and in_git_work_tree(root) and _git(root, "rev-parse", "--verify", "-q", "HEAD").returncode == 0:
        return CommittedFiles(root)
    files = DiskFiles(root)
    if not worktree:
        files.description += " (no git commit to compare)"
    return files


def uncommitted(root: Path) -> list[str]:
    """Files in week folders that differ from the last commit: changed, deleted or new (not ignored)."""
    status = _git(root, "status", "--porcelain", "-z", "--untracked-files=all", "--", "week_*")
    if status.returncode != 0:
        return []
    paths = []
    for entry in os.fsdecode(status.stdout).split("\0"):
        if len(entry) > 3 and entry[2] == " ":
            path = entry[3:]
            if WEEK_PATTERN.match(path.split("/", 1)[0]) and not is_secret_name(path):
                paths.append(path)
    return sorted(paths)
