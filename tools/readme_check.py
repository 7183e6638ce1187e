"""Run a week's README as a learner would: every shell block, in order, in a scratch copy of the week.

    python -m tools.readme_check week_0_project_setup      # or: make readme-check WEEK=0
    python -m tools.readme_check --list week_5_docker       # what would run, what is skipped and why

Each ```bash block of the README is one step. The first one ("Before you start": cd into the
week, activate the environment) is run before every step, so each step starts where a learner's
terminal is. An HTML comment on the lines just above a block says how to treat it (GitHub does
not show these comments):

    <!-- check: skip because it needs an AWS account -->   not run here; the reason is reported
    <!-- check: replace `python train.py` with `python train.py --max-epochs 1` -->
                                                         the short settings a check runs with
    <!-- check: before `sed -i 's/max_epochs: 10/max_epochs: 1/' params.yaml` -->
                                                         a hidden step first (short settings in a file)
    <!-- check: background on port 8000 -->              a server: started, waited for, stopped at the end

An untagged block (the output a README shows) with `<!-- check: output -->` above it must
match what the step above it printed: each of its lines, in order, is found in the output,
with `...` standing for anything and every number for a number (short settings change the
figures; the figures themselves are the benchmarks' and the READMEs' business).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tools.week_files import DiskFiles

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^( *)```(\w*)\n(.*?)^\1```\n", re.MULTILINE | re.DOTALL)  # indented in a list too
MARK = re.compile(r"^ *<!-- check: (.+?) -->$")
NUMBER = re.compile(r"-?\d+(?:[.,]\d+)*(?:e-?\d+)?")
# Shared with the scratch copy as links: what a week folder reaches with ../ (the environment, tools).
SHARED = (".venv", "tools", ".github", ".containers")
STEP_TIMEOUT_S = 900


@dataclass
class Step:
    """One shell block of a README, with how the check treats it."""

    line: int  # 1-based line of the opening fence
    body: str
    skip: str | None = None
    replacements: list[tuple[str, str]] = field(default_factory=list)
    before: list[str] = field(default_factory=list)
    port: int | None = None  # a server to leave running (background)
    exit_code: int = 0  # what a learner sees the step exit with
    expected: list[tuple[str, float | None]] = field(default_factory=list)  # shown output, tolerance

    def command(self) -> str:
        body = self.body
        for old, new in self.replacements:
            if old not in body:
                raise ValueError(f"line {self.line}: `{old}` (a replace mark) is not in the block")
            body = body.replace(old, new)
        return "\n".join([*self.before, body])


def parse(text: str) -> list[Step]:
    """The README's shell blocks as steps, with their marks and the output blocks that follow them."""
    steps: list[Step] = []
    lines = text.split("\n")
    for match in FENCE.finditer(text):
        indent, language = match.group(1), match.group(2)
        body = "".join(line.removeprefix(indent) for line in match.group(3).splitlines(keepends=True))
        line = text.count("\n", 0, match.start()) + 1
        marks = []
        above = line - 2
        while above >= 0 and MARK.match(lines[above]):
            marks.insert(0, MARK.match(lines[above]).group(1))
            above -= 1
        if language in ("bash", "sh", "shell"):
            steps.append(apply_marks(Step(line, body), marks))
        elif language in ("", "text") and any(mark.startswith("output") for mark in marks):
            if not steps:
                raise ValueError(f"line {line}: an output block with no step above it")
            (mark,) = [mark for mark in marks if mark.startswith("output")]
            within = re.fullmatch(r"output(?: within ([\d.]+))?", mark)
            if within is None:
                raise ValueError(f"line {line}: write `output` or `output within 0.02`, not `{mark}`")
            steps[-1].expected.append((body, float(within.group(1)) if within.group(1) else None))
    return steps


def apply_marks(step: Step, marks: list[str]) -> Step:
    for mark in marks:
        if mark.startswith("skip because "):
            step.skip = mark.removeprefix("skip because ")
        elif found := re.fullmatch(r"replace `(.+?)` with `(.*?)`", mark):
            step.replacements.append((found.group(1), found.group(2)))
        elif found := re.fullmatch(r"before `(.+)`", mark):
            step.before.append(found.group(1))
        elif found := re.fullmatch(r"background on port (\d+)", mark):
            step.port = int(found.group(1))
        elif found := re.fullmatch(r"exit (\d+)", mark):
            step.exit_code = int(found.group(1))
        else:
            raise ValueError(f"line {step.line}: unknown mark `{mark}`")
    return step


def output_matches(expected: str, output: str, within: float | None = None) -> str | None:
    """None when every expected line is found in `output`, in order; else the first line that is not.

    `...` stands for anything. Numbers match any number, or with `within`, a number that close
    to the one shown (an integer exactly).
    """
    position = 0
    for wanted in (line.strip() for line in expected.splitlines()):
        if not wanted:
            continue
        shown = [float(n.replace(",", "")) for n in NUMBER.findall(wanted)]
        pieces = [NUMBER.sub("\0", piece) for piece in wanted.split("...")]
        # Columns line up differently when the figures differ: any run of spaces matches any other.
        pattern = ".*?".join(
            re.sub(r"(\\ )+", r"\\s+", re.escape(piece)).replace("\0", f"({NUMBER.pattern})") for piece in pieces
        )
        for found in re.compile(pattern).finditer(output, position):
            printed = [float(n.replace(",", "")) for n in found.groups()]
            if within is None or all(
                p == s if s.is_integer() and p.is_integer() else abs(p - s) <= within
                for p, s in zip(printed, shown, strict=True)
            ):
                position = found.end()
                break
        else:
            return wanted
    return None


def scratch_copy(week: Path, into: Path) -> Path:
    """The week's tracked files in `into`/<week>, a git repository as a clone is, with ../ links shared."""
    copy = into / week.name
    declaration = {"week.toml"} if (week / "week.toml").is_file() else set()  # the lister leaves it out
    for relative in sorted(DiskFiles(week.parent).files(week.name) | declaration):
        target = copy / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(week / relative, target)
    for name in SHARED:
        if (week.parent / name).exists():
            (into / name).symlink_to(week.parent / name)
    # The repository's ignore rules, as a clone has them, and the links above.
    rules = (week.parent / ".gitignore").read_text() if (week.parent / ".gitignore").is_file() else ""
    (into / ".gitignore").write_text(rules + "\n" + "\n".join(SHARED) + "\n")
    for command in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=Learner", "-c", "user.email=learner@example.com", "commit", "-q", "-m", "cloned"],
    ):
        subprocess.run(command, cwd=into, check=True, capture_output=True)
    return copy


def learner_env(home: Path) -> dict[str, str]:
    """A learner's terminal at home, offline: no keys, no Hub, the course's identity for git."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "VIRTUAL_ENV", "MLOPS_", "AWS_"))}
    env.update(
        HOME=str(home),  # no ~/.netrc, no W&B login, no AWS profile
        GIT_AUTHOR_NAME="Learner", GIT_AUTHOR_EMAIL="learner@example.com",
        GIT_COMMITTER_NAME="Learner", GIT_COMMITTER_EMAIL="learner@example.com",
        PYTHONUNBUFFERED="1",
    )  # fmt: skip
    return env


def wait_for_port(port: int, server: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited (code {server.returncode}) before it answered on port {port}")
        try:
            with opener.open(f"http://127.0.0.1:{port}/ready", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"nothing answered on port {port} within {timeout_s:g} s")


@dataclass
class Result:
    line: int
    status: str  # ran, skipped, failed
    detail: str = ""
    seconds: float = 0.0


def run_week(week: Path, stream=sys.stdout) -> list[Result]:
    """Run every step of the week's README in a scratch copy; the results, one per step."""
    steps = parse((week / "README.md").read_text(encoding="utf-8"))
    results: list[Result] = []
    servers: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="readme-check-") as tmp:
        root = Path(tmp) / "repo"
        root.mkdir()
        scratch_copy(week, root)
        env = learner_env(Path(tmp))
        setup, rest = steps[0], steps[1:]
        try:
            for step in rest:
                if step.skip:
                    results.append(Result(step.line, "skipped", step.skip))
                    print(f"  line {step.line}: skipped because {step.skip}", file=stream)
                    continue
                # -e: a command that fails stops the step, as a learner would stop and look.
                script = f"set -e\n{setup.body}\n{step.command()}"
                started = time.monotonic()
                if step.port:
                    server = subprocess.Popen(
                        ["bash", "-c", script], cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                        start_new_session=True,
                    )  # fmt: skip
                    servers.append(server)
                    wait_for_port(step.port, server)
                    results.append(Result(step.line, "ran", "server started", time.monotonic() - started))
                    print(f"  line {step.line}: server on port {step.port}", file=stream)
                    continue
                done = subprocess.run(
                    ["bash", "-c", script], cwd=root, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT_S
                )
                seconds = time.monotonic() - started
                output = done.stdout + done.stderr
                if done.returncode != step.exit_code:
                    tail = "\n".join(output.splitlines()[-15:])
                    why = f"exit {done.returncode}, the README expects {step.exit_code}"
                    results.append(Result(step.line, "failed", f"{why}:\n{tail}", seconds))
                    print(f"  line {step.line}: FAILED ({why})\n{tail}", file=stream)
                    break  # later steps build on this one
                missing = next(
                    (m for text, within in step.expected if (m := output_matches(text, output, within)) is not None),
                    None,
                )
                if missing is not None:
                    results.append(Result(step.line, "failed", f"the README shows `{missing}`; not printed", seconds))
                    print(
                        f"  line {step.line}: FAILED: the README shows `{missing}`; output:\n{output[-2000:]}",
                        file=stream,
                    )
                    break
                results.append(Result(step.line, "ran", "", seconds))
                print(f"  line {step.line}: ok ({seconds:.0f} s)", file=stream)
                if step.expected:  # what was compared, for the record (figures vary by CPU)
                    last = [line for line in done.stdout.splitlines() if line.strip()][-4:]
                    print("    " + "\n    ".join(last), file=stream)
            else:  # every step ran: doing the course must leave no file that git would pick up
                status = subprocess.run(
                    ["git", "status", "--porcelain", "--untracked-files=all"], cwd=root, capture_output=True, text=True
                ).stdout
                untracked = [line[3:] for line in status.splitlines() if line.startswith("??")]
                detail = f"files .gitignore misses: {', '.join(untracked)}" if untracked else ""
                results.append(Result(0, "failed" if untracked else "ran", detail))
                print(f"  after the README: {detail or 'git status shows no new file'}", file=stream)
        finally:
            for server in servers:
                os.killpg(server.pid, 15)
                server.wait(timeout=30)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.readme_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("weeks", nargs="+", help="week folders (or numbers)")
    parser.add_argument("--list", action="store_true", help="print the steps and marks, run nothing")
    args = parser.parse_args(argv)
    from tools.weeks import find_week

    failed = 0
    for wanted in args.weeks:
        week = find_week(ROOT, wanted)
        if week is None:
            print(f"error: no week {wanted}", file=sys.stderr)
            return 2
        print(f"== {week.name}/README.md")
        if args.list:
            for step in parse((week / "README.md").read_text(encoding="utf-8")):
                how = f"skip: {step.skip}" if step.skip else f"run ({len(step.replacements)} replaced)"
                print(f"  line {step.line}: {how}: {step.body.splitlines()[0] if step.body else ''}")
            continue
        results = run_week(week)
        failed += any(result.status == "failed" for result in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
