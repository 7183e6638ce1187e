"""Tests that CI need not run again in a week where nothing they exercise changed.

Every week carries the previous week's tests. In a week where a test file AND everything it
exercises are byte-identical to the previous week's, the previous week's suite already ran
exactly this test on exactly these files, so `make test` leaves it out there and says so (by
induction, a chain of unchanged weeks goes back to the week that ran it). A learner's
`pytest tests` inside a week always runs every test of that week.

What a test exercises is found, never listed by hand, and over- rather than under-estimated:
- the test module, and every week-local module it imports (ast), followed through their imports;
- every week file or folder a string in that code names ("train.py", "monitoring.drift",
  "app:app", WEEK_DIR / "iam"), and the files named inside those files (dvc.yaml's commands, a
  Dockerfile's COPY lines), so the scripts a test runs as commands are found too;
- the definitions of tests/conftest.py that the code names (its fixtures, their fixtures, its
  helpers), plus every conftest statement that acts on all tests (environment, hooks, autouse
  fixtures, plugins); a conftest that only gains new fixtures leaves the old tests as they were;
- the whole week (all but its README and week.toml) when the code lists or copies the week
  folder itself (`WEEK_DIR.iterdir()`, `shutil.copytree(WEEK_DIR, ...)`);
- always: configs/, data/, offline_model/, which the code reads through computed paths.
A week's requirements.txt is not among them: CI runs every week in the root environment, whose
pins tools/pins.py checks every week's file against.
"""

from __future__ import annotations

import ast
import re
import subprocess
from functools import cache
from pathlib import Path

ALWAYS = ("configs", "data", "offline_model")
CONFTEST = "tests/conftest.py"
WHOLE_WEEK = "<the whole week>"
DOCS = ("README.md", "week.toml")  # what a learner reads, never what the code runs
# Names the tests give the week folder (or the repository) when they list or copy all of it.
FOLDER_NAMES = {"WEEK_DIR", "REPO_ROOT", "ROOT"}
LISTING_METHODS = {"iterdir", "glob", "rglob"}
LISTING_FUNCTIONS = {"copytree", "walk", "listdir", "scandir", "make_archive"}
TEXT_SUFFIXES = {"", ".yaml", ".yml", ".toml", ".txt", ".cfg", ".ini", ".sh", ".lock", ".lambda", ".json"}
TOKEN = re.compile(r"[A-Za-z0-9_./-]+")
# A test that reads every other test's recorded AWS calls (tests/helpers/aws_calls.py's marker).
CALL_READER = "after_recorded_aws_calls"
AWS_SDK = {"boto3", "botocore"}


@cache
def week_files(week: Path) -> tuple[str, ...]:
    """The week's files as a clean clone has them plus new ones: git's tracked and not-ignored files."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "."],
        cwd=week, capture_output=True, check=True,
    ).stdout.decode()
    return tuple(sorted(path for path in set(listed.split("\0")) if path and (week / path).is_file()))


def _module_file(week: Path, name: str) -> str | None:
    """The week-relative file of a module name, if it lives in the week (root or tests/)."""
    parts = name.split(".")
    if not all(part.isidentifier() for part in parts):
        return None
    for base in (week, week / "tests"):
        for candidate in (base.joinpath(*parts).with_suffix(".py"), base.joinpath(*parts, "__init__.py")):
            if candidate.is_file():
                return candidate.relative_to(week).as_posix()
    return None


@cache
def _named_paths(week: Path, text: str) -> frozenset[str]:
    """Week files and folders a piece of text names: paths, file names, module names, `module:attr`.

    A one-word string ("lambda_handler", "app:app", "iam") may name a module or folder; in longer
    text (a command line, a Dockerfile, a message) only words with a dot or a slash count
    ("python train.py", "COPY app.py", "-m monitoring.drift"), so prose does not name modules.
    """
    words = text.split()
    tokens = TOKEN.findall(text) if len(words) != 1 else [words[0], words[0].split(":")[0]]
    found: set[str] = set()
    for token in tokens:
        token = token.strip("./")
        if not token or (len(words) != 1 and "." not in token and "/" not in token):
            continue
        module = _module_file(week, token.removesuffix(".py").replace("/", "."))
        if module:
            found.add(module)
        for base in ("", "tests/"):
            first = token.split("/")[0]
            for candidate in (token, first):
                path = week / f"{base}{candidate}"
                # tests/ as a whole is never a dependency: its modules are followed through imports.
                if candidate != "tests" and path.exists() and path.resolve().is_relative_to(week.resolve()):
                    found.add(path.relative_to(week).as_posix())
    return frozenset(found)


class _Conftest:
    """tests/conftest.py split into named definitions and the statements that act on every test."""

    def __init__(self, week: Path) -> None:
        self.definitions: dict[str, ast.stmt] = {}
        self.global_statements: list[ast.stmt] = []
        path = week / CONFTEST
        if not path.is_file():
            return
        for node in ast.parse(path.read_bytes()).body:
            name = _defined_name(node)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                continue  # the module docstring
            if _is_import(node):
                # An import defines the names it binds: followed only where a needed definition uses them.
                for bound in _bound_names(node):
                    self.definitions[bound] = node
            elif name and not name.startswith("pytest_") and not _is_autouse(node):
                self.definitions[name] = node
            else:
                self.global_statements.append(node)  # imports, hooks, autouse fixtures, os.environ, sys.path

    def key(self, name: str) -> str:
        return f"{CONFTEST}::{name}"

    def text(self, key: str) -> str | None:
        """What a conftest key stands for, as comparable text (None: not defined in this week)."""
        name = key.split("::", 1)[1]
        if name == "*":
            return "\n".join(ast.unparse(node) for node in self.global_statements)
        node = self.definitions.get(name)
        if node is None:
            return None
        # An import's text may gain other names over the weeks; what it binds this name to is what counts.
        return f"import {name}" if _is_import(node) else ast.unparse(node)


def _defined_name(node: ast.stmt) -> str | None:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if len(targets) == 1 and isinstance(targets[0], ast.Name):
            return targets[0].id
    return None


def _bound_names(node: ast.stmt) -> list[str]:
    """The names an import (or an `if TYPE_CHECKING:` block of imports) binds."""
    imports = [child for child in ast.walk(node) if isinstance(child, (ast.Import, ast.ImportFrom))]
    return [(alias.asname or alias.name).split(".")[0] for child in imports for alias in child.names]


def _is_autouse(node: ast.stmt) -> bool:
    return isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
        "autouse" in ast.unparse(decorator) for decorator in node.decorator_list
    )


def _is_import(node: ast.stmt) -> bool:
    """An import, or an `if TYPE_CHECKING:` block of imports: followed, not compared."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return True
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _is_attribute_call(node: ast.AST) -> bool:
    """getattr/hasattr/setattr/delattr(obj, "name", ...): the string names an attribute."""
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) >= 2
        and node.func.id in {"getattr", "hasattr", "setattr", "delattr"}
    )


def _is_fixture_call(node: ast.AST) -> bool:
    """usefixtures("name") or request.getfixturevalue("name"): a string naming a fixture."""
    if not isinstance(node, ast.Call):
        return False
    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
    return name in {"usefixtures", "getfixturevalue"}


def _takes_fixtures(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A test or a fixture: pytest fills its parameters with fixtures."""
    return node.name.startswith("test") or any("fixture" in ast.unparse(d) for d in node.decorator_list)


def _has_docstring(node: ast.AST) -> bool:
    """A module, class or function whose first statement is its docstring (prose, not paths)."""
    body = getattr(node, "body", None)
    return (
        isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and bool(body) and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
    )


def _lists_the_folder(node: ast.AST) -> bool:
    """`WEEK_DIR.iterdir()`, `shutil.copytree(WEEK_DIR, ...)` and the like."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr in LISTING_METHODS:
        return isinstance(func.value, ast.Name) and func.value.id in FOLDER_NAMES
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    first = node.args[0] if node.args else None
    return name in LISTING_FUNCTIONS and isinstance(first, ast.Name) and first.id in FOLDER_NAMES


def _follow_code(week: Path, nodes: list[ast.AST], conftest: _Conftest, in_conftest: bool = False) -> set[str]:
    """The keys code exercises: imported modules, named paths, named conftest definitions, the whole week.

    Outside the conftest, a test reaches a conftest definition by naming a fixture as a parameter
    or in a string (`usefixtures`, `getfixturevalue`), or by importing it from conftest; a bare
    name there is the module's own.
    """
    found: set[str] = set()
    for root in nodes:
        # Strings that are prose, attribute names or keys, not paths: docstrings, getattr(x, "settings").
        skipped = {id(node.body[0].value) for node in ast.walk(root) if _has_docstring(node)}
        skipped |= {id(node.args[1]) for node in ast.walk(root) if _is_attribute_call(node)}
        skipped |= {id(node.slice) for node in ast.walk(root) if isinstance(node, ast.Subscript)}  # files["README.md"]
        fixture_strings = {id(arg) for node in ast.walk(root) if _is_fixture_call(node) for arg in node.args}
        for node in ast.walk(root):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module == "conftest":
                    found |= {conftest.key(alias.name) for alias in node.names if alias.name in conftest.definitions}
                    continue
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped:
                found |= _named_paths(week, node.value)
                if id(node) in fixture_strings and node.value in conftest.definitions:
                    found.add(conftest.key(node.value))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _takes_fixtures(node):
                arguments = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
                found |= {conftest.key(arg.arg) for arg in arguments if arg.arg in conftest.definitions}
            elif in_conftest and isinstance(node, ast.Name) and node.id in conftest.definitions:
                found.add(conftest.key(node.id))
            elif _lists_the_folder(node):
                found.add(WHOLE_WEEK)
            for name in names:
                module = _module_file(week, name)
                if module:
                    found.add(module)
    return found


def exercised(week: Path, test_file: str, why: dict[str, str] | None = None) -> set[str]:
    """Everything `test_file` exercises in `week`: week-relative paths, conftest keys, maybe WHOLE_WEEK.

    `why`, when given, receives for each key the key that brought it in (to explain a rerun).
    """
    seen: set[str] = set()
    todo = [(key, "") for key in (test_file, *ALWAYS, _conftest(week).key("*"))]
    while todo:
        key, parent = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        if why is not None:
            why[key] = parent
        todo += [(child, key) for child in _children(week, key)]
    return seen


@cache
def _children(week: Path, key: str) -> frozenset[str]:
    """The keys one key brings in directly."""
    conftest = _conftest(week)
    if key.startswith(f"{CONFTEST}::"):
        name = key.split("::", 1)[1]
        nodes = conftest.global_statements if name == "*" else [conftest.definitions[name]]
        return frozenset(_follow_code(week, nodes, conftest, in_conftest=True))
    if key in (WHOLE_WEEK, CONFTEST):
        return frozenset()  # compared as a whole; the conftest is followed definition by definition
    path = week / key
    if path.is_dir():
        return frozenset(child for child in _files_under(week, key) if child.endswith(".py"))
    if key.endswith(".py") and path.is_file():
        return frozenset(_follow_code(week, [ast.parse(path.read_bytes())], conftest))
    if path.is_file() and path.suffix in TEXT_SUFFIXES and path.stat().st_size < 100_000:
        return frozenset(_named_paths(week, path.read_text(encoding="utf-8", errors="replace")))
    return frozenset()


def _files_under(week: Path, folder: str) -> list[str]:
    return [path for path in week_files(week) if path.startswith(f"{folder}/")]


@cache
def _conftest(week: Path) -> _Conftest:
    return _Conftest(week)


@cache
def _content(week: Path, key: str) -> object:
    """What a key holds in `week`, comparable across weeks (None when it does not exist there)."""
    if key.startswith(f"{CONFTEST}::"):
        return _conftest(week).text(key)
    if key == WHOLE_WEEK:
        key_files = [path for path in week_files(week) if path not in DOCS]
        return [(path, (week / path).read_bytes()) for path in key_files]
    if (week / key).is_file():
        return (week / key).read_bytes()
    # A folder is its files as git sees them (an ignored folder, such as outputs/, holds none).
    return [(path, (week / path).read_bytes()) for path in _files_under(week, key)] or None


def _imports_aws_sdk(week: Path, keys: set[str]) -> bool:
    """Some exercised module of the course (not of tests/) imports boto3 or botocore: the test makes AWS calls.

    Only the course's calls are recorded (tests/helpers/aws_calls.py), not the tests' own set-up.
    """
    for key in keys:
        if key.endswith(".py") and not key.startswith("tests/") and (week / key).is_file():
            for node in ast.walk(ast.parse((week / key).read_bytes())):
                if isinstance(node, ast.Import) and any(a.name.split(".")[0] in AWS_SDK for a in node.names):
                    return True
                if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in AWS_SDK:
                    return True
    return False


def repeated_tests(previous: Path | None, week: Path) -> list[str]:
    """The test files of `week` that, with everything they exercise, equal `previous`'s.

    One kind of test reads what other tests did: test_iam.py evaluates the AWS calls that every
    other test of the session made (tests/helpers/aws_calls.py). Where such a test runs, every
    test file that makes AWS calls runs too, even when unchanged, so that its calls are there.
    """
    for cached in (week_files, _named_paths, _conftest, _children, _content):
        cached.cache_clear()  # read the files afresh: they may have changed since the last call
    if previous is None:
        return []
    repeated = []
    for test_path in sorted((week / "tests").glob("test_*.py")):
        test_file = test_path.relative_to(week).as_posix()
        if not (previous / test_file).is_file():
            continue
        keys = exercised(week, test_file) | exercised(previous, test_file)
        if all(_content(previous, key) == _content(week, key) for key in sorted(keys)):
            repeated.append(test_file)
    readers = [path for path in (week / "tests").glob("test_*.py") if CALL_READER in path.read_text(errors="replace")]
    if any(path.relative_to(week).as_posix() not in repeated for path in readers):
        repeated = [test_file for test_file in repeated if not _imports_aws_sdk(week, exercised(week, test_file))]
    return repeated
