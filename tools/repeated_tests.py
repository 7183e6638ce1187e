"""Heavy tests that CI need not run again in a week where nothing they exercise changed.

Every week carries the previous week's tests. A few of them train models (DDP, the Hub stand-in,
the collapse run, the padding benchmark, sweeps) and cost 10-60 s each. In a week where such a
test file AND every week file it exercises are byte-identical to the previous week's, the previous
week's suite already ran exactly this test on exactly these files, so `make test` leaves it out
there and says so. The last week runs everything, and a learner's `pytest tests` inside a week
always runs every test of that week.

What a test exercises is found, not listed by hand: the test module, tests/conftest.py and the
scripts it runs, followed through their imports of week-local modules (ast), plus the folders the
code reads (configs/, data/, offline_model/). A week's requirements.txt is not among them: CI runs
every week in the root environment, whose pins tools/pins.py checks every week's file against.
"""

from __future__ import annotations

import ast
from pathlib import Path

# The heavy test files and the week scripts each one runs as a command (besides what it imports).
HEAVY_TESTS = {
    "tests/test_ddp.py": ("train.py", "inference.py"),
    "tests/test_hub.py": ("train.py", "inference.py"),
    "tests/test_collapse.py": ("train.py", "evaluate.py"),
    "tests/test_bench_training.py": ("bench/bench_training.py",),
    "tests/test_multirun.py": ("train.py",),
    "tests/test_hub_evaluate.py": ("train.py", "evaluate.py"),
    "tests/test_hub_export.py": ("train.py", "convert_model_to_onnx.py", "inference_onnx.py"),
}
ALWAYS = ("tests/conftest.py", "configs", "data", "offline_model")


def _module_file(week: Path, name: str) -> str | None:
    """The week-relative file of an imported module name, if it lives in the week (root or tests/)."""
    parts = name.split(".")
    for base in (week, week / "tests"):
        for candidate in (base.joinpath(*parts).with_suffix(".py"), base.joinpath(*parts, "__init__.py")):
            if candidate.is_file():
                return candidate.relative_to(week).as_posix()
    return None


def exercised_files(week: Path, test_file: str, scripts: tuple[str, ...]) -> set[str]:
    """The week files `test_file` exercises: itself, conftest, its scripts and their week-local imports."""
    seen: set[str] = set()
    todo = [test_file, *ALWAYS, *scripts]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        if not path.endswith(".py") or not (week / path).is_file():
            continue
        for node in ast.walk(ast.parse((week / path).read_bytes())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for name in names:
                found = _module_file(week, name)
                if found:
                    todo.append(found)
    return seen


def _same(previous: Path, week: Path, path: str) -> bool:
    """`path` (a file or a folder, or absent) is byte-identical in both weeks."""
    old, new = previous / path, week / path
    if old.is_dir() or new.is_dir():
        if not (old.is_dir() and new.is_dir()):
            return False
        old_files = sorted(p.relative_to(old) for p in old.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        new_files = sorted(p.relative_to(new) for p in new.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        return old_files == new_files and all((old / p).read_bytes() == (new / p).read_bytes() for p in old_files)
    if old.is_file() != new.is_file():
        return False
    return not old.is_file() or old.read_bytes() == new.read_bytes()


def repeated_tests(previous: Path | None, week: Path, last: bool) -> list[str]:
    """The heavy test files of `week` whose every exercised file equals `previous`'s (none in the last week)."""
    if previous is None or last:
        return []
    repeated = []
    for test_file, scripts in HEAVY_TESTS.items():
        if not (week / test_file).is_file() or not (previous / test_file).is_file():
            continue
        files = exercised_files(week, test_file, scripts) | exercised_files(previous, test_file, scripts)
        if all(_same(previous, week, path) for path in sorted(files)):
            repeated.append(test_file)
    return repeated
