"""A throwaway git repository holding a copy of this week, for running DVC as a learner would."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

WEEK_DIR = Path(__file__).resolve().parents[2]
# What a fresh clone has: no outputs, no cache, no local remote, no local config.
NOT_COPIED = ["artifacts", "dvc-remote", "metrics.json", "outputs", "multirun", "__pycache__", ".pytest_cache",
              "tmp", "cache", "config.local", "wandb"]


class Project:
    """The week copied into `root/week`, inside a new git repository at `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.week = root / WEEK_DIR.name
        shutil.copytree(WEEK_DIR, self.week, ignore=shutil.ignore_patterns(*NOT_COPIED))
        bin_dir = str(Path(sys.executable).parent)  # python and dvc of this virtualenv first on PATH
        self.env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"], "WANDB_MODE": "disabled"}
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.email", "learner@example.com")
        self.git("config", "user.name", "Learner")
        self.commit("the week as cloned")

    def run(self, *command: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(command, cwd=self.week, env={**self.env, **(env or {})}, capture_output=True,
                                text=True)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def git(self, *args: str) -> str:
        return self.run("git", *args).stdout

    def dvc(self, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
        return self.run("dvc", *args, check=check, env=env)

    def commit(self, message: str) -> None:
        self.git("add", "-A", ".")
        self.git("commit", "-q", "--allow-empty", "-m", message)

    def set_params(self, **values: str) -> None:
        """Edit params.yaml like a learner would: `set_params(**{"data.version": "v2"})`."""
        path = self.week / "params.yaml"
        lines = path.read_text().splitlines()
        for dotted, value in values.items():
            section, key = dotted.split(".")
            inside = False
            for i, line in enumerate(lines):
                if not line.startswith(" "):
                    inside = line.startswith(f"{section}:")
                elif inside and line.strip().startswith(f"{key}:"):
                    indent = line[: len(line) - len(line.lstrip())]
                    comment = line[line.index("#"):] if "#" in line else ""
                    lines[i] = f"{indent}{key}: {value}" + (f"   {comment}" if comment else "")
        path.write_text("\n".join(lines) + "\n")


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()
