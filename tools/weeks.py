"""Keep the week folders honest: each week differs from the previous one only as declared.

Every `week_<n>_<slug>/` folder is a full copy of the week before it plus that week's lesson.
Its `week.toml` declares the lesson: which files were [added], [changed] and [removed], each
with a one-line reason. This tool checks the declarations against the files, prints a week's
lesson as a diff, carries a fix forward to later weeks, and renders the declaration into the
"What's new this week" section of each week's README.md.

    python -m tools.weeks check                          # make check-weeks
    python -m tools.weeks diff 3                         # make diff WEEK=3
    python -m tools.weeks sync week_0_project_setup/data.py   # make sync FILE=...
    python -m tools.weeks readme                         # make weeks-readme
"""

from __future__ import annotations

import argparse
import difflib
import re
import shutil
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from tools.report import report
from tools.week_files import (
    DECLARATION,
    WEEK_PATTERN,
    CommittedFiles,
    DiskFiles,
    is_secret_name,
    uncommitted,
    week_files,
)

Files = DiskFiles | CommittedFiles

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("added", "changed", "removed")
KNOWN_KEYS = {"title", "previous", *TABLES}
README = "README.md"
START_MARK = "<!-- whats-new:start -->"
END_MARK = "<!-- whats-new:end -->"


# ----------------------------------------------------------------------------- week folders


def week_number(week: Path) -> int:
    """The number in `week_<number>_<slug>`."""
    match = WEEK_PATTERN.match(week.name)
    if match is None:
        raise ValueError(f"{week.name} is not a week folder name")
    return int(match.group(1))


def find_weeks(root: Path) -> list[Path]:
    """The week folders at the repo root, ordered by week number."""
    weeks = [p for p in root.iterdir() if p.is_dir() and WEEK_PATTERN.match(p.name)]
    return sorted(weeks, key=lambda p: (week_number(p), p.name))


def list_files(root: Path, week: Path) -> set[str]:
    """The week's files on disk (posix paths relative to the week), without week.toml: git's view."""
    return DiskFiles(root).files(week.name)


# ------------------------------------------------------------------------------ declarations


@dataclass
class Declaration:
    """A parsed week.toml: table name -> {path or "folder/": reason}."""

    title: str = ""
    previous: str | None = None
    tables: dict[str, dict[str, str]] = field(default_factory=lambda: {t: {} for t in TABLES})

    def lookup(self, path: str) -> tuple[str, str] | None:
        """(table, entry) of the most specific entry covering `path`, or None."""
        best: tuple[str, str] | None = None
        for table, entries in self.tables.items():
            for entry in entries:
                if covers(entry, path) and (best is None or len(entry) > len(best[1])):
                    best = (table, entry)
        return best


def covers(entry: str, path: str) -> bool:
    """Whether a declared entry covers a file: equal, or a "folder/" above it."""
    return entry == path or (entry.endswith("/") and path.startswith(entry))


def _bad_entry_path(entry: str) -> bool:
    parts = entry.rstrip("/").split("/")
    return entry.startswith("/") or "\\" in entry or any(p in ("", ".", "..") for p in parts)


def load_declaration(week: Path, files: Files | None = None) -> tuple[Declaration | None, list[str]]:
    """Parse week.toml (from `files`, default the disk). Returns (None, problems) when it is missing or not TOML."""
    where = f"{week.name}/{DECLARATION}"
    raw = (files or DiskFiles(week.parent)).read(f"{week.name}/{DECLARATION}")
    if raw is None:
        return None, [
            f"{where} is missing: create it with a title, previous and the "
            "[added]/[changed]/[removed] tables"
        ]
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        return None, [f"{where} is not valid TOML ({error}): fix the syntax"]

    problems: list[str] = []
    declaration = Declaration()
    for key in sorted(set(data) - KNOWN_KEYS):
        problems.append(
            f'{where} has an unknown key "{key}": use only title, previous, '
            "[added], [changed] and [removed]"
        )
    title = data.get("title")
    if isinstance(title, str) and title.strip():
        declaration.title = title.strip()
    else:
        problems.append(f'{where} needs a title: add title = "what this week teaches"')
    previous = data.get("previous")
    if previous is not None and not isinstance(previous, str):
        problems.append(f"{where}: previous must be the previous week's folder name, in quotes")
    elif previous is not None:
        declaration.previous = previous

    seen: dict[str, str] = {}  # entry -> first table declaring it
    for table in TABLES:
        entries = data.get(table, {})
        if not isinstance(entries, dict):
            problems.append(f'{where}: [{table}] must be a table of "path" = "reason" lines')
            continue
        for entry, reason in entries.items():
            if _bad_entry_path(entry):
                problems.append(
                    f'{where}: "{entry}" under [{table}] must be a path inside the week '
                    'folder, like "train.py" or "configs/"'
                )
                continue
            if entry == DECLARATION:
                problems.append(f"{where}: week.toml is never compared; drop its entry")
                continue
            if not isinstance(reason, str) or not reason.strip():
                problems.append(f'{where}: "{entry}" under [{table}] needs a one-line reason')
            elif "\n" in reason:
                problems.append(f'{where}: the reason for "{entry}" must fit on one line')
            if entry in seen:
                problems.append(
                    f'{where} declares "{entry}" under both [{seen[entry]}] and [{table}]: '
                    "keep only the one that is true"
                )
                continue
            seen[entry] = table
            declaration.tables[table][entry] = reason.strip() if isinstance(reason, str) else ""
    return declaration, problems


# ------------------------------------------------------------------------------------ check


def _folder_hint(entry: str, files: set[str]) -> str:
    if not entry.endswith("/") and any(f.startswith(entry + "/") for f in files):
        return f' (it is a folder: write "{entry}/")'
    return ""


def check_first_week(snapshot: Files, week: Path, declaration: Declaration) -> list[str]:
    """The first week has no previous week, so it declares every file under [added]."""
    problems: list[str] = []
    files = snapshot.files(week.name)
    where = f"{week.name}/{DECLARATION}"
    if declaration.previous is not None:
        problems.append(
            f'{where} sets previous = "{declaration.previous}" but {week.name} is the first '
            "week: remove that line"
        )
    for table in ("changed", "removed"):
        for entry in declaration.tables[table]:
            problems.append(
                f'{where} declares "{entry}" under [{table}] but the first week has nothing '
                "to compare with: declare every file under [added]"
            )
    used: set[str] = set()
    for path in sorted(files):
        match = declaration.lookup(path)
        if match is None or match[0] != "added":
            problems.append(
                f"{week.name}/{path} is not declared: declare it under [added] in {where} "
                "(the first week declares every file)"
            )
        else:
            used.add(match[1])
    for entry in sorted(set(declaration.tables["added"]) - used):
        problems.append(
            f'{where} declares "{entry}" under [added] but {week.name}/{entry} does not '
            f"exist{_folder_hint(entry, files)}: add it, or drop the entry"
        )
    return problems


def check_pair(snapshot: Files, previous: Path, week: Path, declaration: Declaration) -> list[str]:
    """Compare a week with the week before it against its declaration."""
    problems: list[str] = []
    old_files, new_files = snapshot.files(previous.name), snapshot.files(week.name)
    where = f"{week.name}/{DECLARATION}"
    this, prev = week.name, previous.name  # short names keep the messages readable

    if declaration.previous is None:
        problems.append(f'{where} lacks previous: add previous = "{prev}"')
    elif declaration.previous != prev:
        problems.append(
            f'{where} says previous = "{declaration.previous}" but the week before {this} is '
            f'{prev}: set previous = "{prev}"'
        )

    used: set[tuple[str, str]] = set()
    folders_that_differ: set[str] = set()
    for path in sorted(old_files | new_files):
        match = declaration.lookup(path)
        table, entry = match if match else (None, "")
        if match:
            used.add(match)
        in_old, in_new = path in old_files, path in new_files
        is_folder = entry.endswith("/")
        via = f' (via "{entry}")' if is_folder else ""

        if in_old and in_new:
            same = snapshot.same(f"{prev}/{path}", f"{this}/{path}")
            if table is None and not same:
                problems.append(
                    f"{this}/{path} differs from {prev}/{path} but week.toml does not declare it: "
                    "declare it under [changed], or carry the earlier week's fix forward with "
                    f"`make sync FILE={prev}/{path}`"
                )
            elif table == "changed" and not same:
                folders_that_differ.add(entry)
            elif table == "changed" and same and not is_folder:
                problems.append(
                    f"{where} declares {path} under [changed] but it is identical to "
                    f"{prev}/{path}: make the change, or drop the entry"
                )
            elif table == "added":
                problems.append(
                    f"{where} declares {path} under [added]{via} but {prev}/{path} already "
                    "exists: declare it under [changed] if it differs, or drop the entry"
                )
        elif in_new:  # new this week
            if table is None:
                problems.append(
                    f"{this}/{path} is new (not in {prev}) but week.toml does not declare it: "
                    "declare it under [added], or delete it if it is not part of the lesson"
                )
            elif table == "changed" and is_folder:
                folders_that_differ.add(entry)
            elif table == "changed":
                problems.append(
                    f"{where} declares {path} under [changed] but {prev} has no {path}: "
                    "declare it under [added] instead"
                )
        else:  # only in the previous week
            if table is None:
                problems.append(
                    f"{prev}/{path} vanished from {this}: declare it under [removed], or bring it "
                    f"back with `make sync FILE={prev}/{path}`"
                )
            elif table == "changed" and is_folder:
                folders_that_differ.add(entry)
            elif table == "changed":
                problems.append(
                    f"{where} declares {path} under [changed] but {this}/{path} does not exist: "
                    "declare it under [removed] if it went, or restore it"
                )
            elif table == "added":
                problems.append(
                    f"{where} declares {path} under [added]{via} but {this}/{path} does not "
                    "exist: add the file, or drop the entry"
                )
        if in_new and table == "removed":
            problems.append(
                f"{where} declares {path} under [removed]{via} but {this}/{path} still exists: "
                "delete it, or drop the entry"
            )

    all_files = old_files | new_files
    for table, entries in declaration.tables.items():
        for entry in sorted(entries):
            if (table, entry) not in used:
                problems.append(
                    f'{where} declares "{entry}" under [{table}] but neither {this} nor {prev} has '
                    f"it{_folder_hint(entry, all_files)}: fix the path, or drop the entry"
                )
            elif table == "changed" and entry.endswith("/") and entry not in folders_that_differ:
                problems.append(
                    f'{where} declares "{entry}" under [changed] but nothing under it differs '
                    f"from {prev}: drop the entry"
                )
    return problems


# ----------------------------------------------------------------------------------- README


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def render_section(declaration: Declaration, number: int, previous: str | None) -> str:
    """The "What's new this week" text that belongs between the README markers."""
    if previous is None:
        intro = f"Everything is new in week {number}:"
    else:
        intro = (
            f"Compared with [{previous}](../{previous}/) — see it with `make diff WEEK={number}`:"
        )
    lines = [intro, "", "| change | file | why |", "| --- | --- | --- |"]
    for table in TABLES:
        for entry, reason in sorted(declaration.tables[table].items()):
            lines.append(f"| {table} | `{entry}` | {_escape(reason)} |")
    return "\n".join(lines)


def _section_bounds(text: str) -> tuple[int, int] | None:
    """(start, end) of the text between the markers, or None if they are not there once."""
    if text.count(START_MARK) != 1 or text.count(END_MARK) != 1:
        return None
    start = text.index(START_MARK) + len(START_MARK)
    end = text.index(END_MARK)
    return (start, end) if start <= end else None


def replace_section(text: str, section: str) -> str | None:
    """README text with the section between the markers replaced (None: no markers)."""
    bounds = _section_bounds(text)
    if bounds is None:
        return None
    start, end = bounds
    return text[:start] + "\n" + section + "\n" + text[end:]


def _missing_markers(week: Path) -> str:
    return (
        f"{week.name}/{README} lacks the {START_MARK} and {END_MARK} markers (each once): "
        "add them under a `## What's new this week` heading, then run `make weeks-readme`"
    )


def check_readme(week: Path, section: str, files: Files | None = None) -> list[str]:
    """Problems with the week's README section (missing markers, out of date)."""
    raw = (files or DiskFiles(week.parent)).read(f"{week.name}/{README}")
    if raw is None:
        return [
            f"{week.name} has no {README}: add one with a `## What's new this week` heading "
            f"and the {START_MARK} / {END_MARK} markers, then run `make weeks-readme`"
        ]
    text = raw.decode("utf-8")
    bounds = _section_bounds(text)
    if bounds is None:
        return [_missing_markers(week)]
    if text[bounds[0] : bounds[1]].strip() != section.strip():
        return [
            f"{week.name}/{README}'s \"What's new this week\" section does not match "
            f"{DECLARATION}: run `make weeks-readme`"
        ]
    return []


# ----------------------------------------------------------------------------- whole repo


CI_WORKFLOW = Path(".github/workflows/ci.yml")


def check_ci_matrix(snapshot: Files, weeks: list[Path]) -> list[str]:
    """Every week runs in GitHub's CI: its folder name is listed in the workflow's week matrix."""
    workflow = snapshot.read(CI_WORKFLOW.as_posix())
    if workflow is None:
        return []
    listed = set(re.findall(r"^\s*-\s*(week_\d+_\w+)\s*$", workflow.decode("utf-8"), re.MULTILINE))
    problems = [
        f"{week.name} is not in the week matrix of {CI_WORKFLOW}: add `- {week.name}` so GitHub tests it"
        for week in weeks
        if week.name not in listed
    ]
    problems += [
        f"{CI_WORKFLOW} lists {name} in its week matrix, but there is no such folder: remove it"
        for name in sorted(listed - {week.name for week in weeks})
    ]
    return problems


def check(root: Path, snapshot: Files | None = None) -> tuple[int, list[str]]:
    """Check every week in `snapshot` (default: the files on disk). Returns (weeks checked, problems)."""
    snapshot = snapshot or DiskFiles(root)
    weeks = find_weeks(root)
    if not weeks:
        return 0, [f"no week folders (week_<number>_<slug>) found in {root}"]
    problems: list[str] = []
    for earlier, later in zip(weeks, weeks[1:], strict=False):
        if week_number(earlier) == week_number(later):
            problems.append(
                f"{earlier.name} and {later.name} share week number {week_number(later)}: "
                "renumber one of them"
            )
    for index, week in enumerate(weeks):
        previous = weeks[index - 1] if index else None
        declaration, found = load_declaration(week, snapshot)
        problems += found
        if declaration is None:
            continue  # without a declaration every file would be reported; fix that first
        if previous is None:
            problems += check_first_week(snapshot, week, declaration)
        else:
            problems += check_pair(snapshot, previous, week, declaration)
        section = render_section(
            declaration, week_number(week), previous.name if previous else None
        )
        problems += check_readme(week, section, snapshot)
    problems += check_ci_matrix(snapshot, weeks)
    return len(weeks), problems


def write_readmes(root: Path) -> tuple[list[str], list[str]]:
    """Rewrite every week's README section. Returns (updated READMEs, problems)."""
    weeks = find_weeks(root)
    updated: list[str] = []
    problems: list[str] = []
    for index, week in enumerate(weeks):
        declaration, found = load_declaration(week)
        if declaration is None:
            problems += found
            continue
        readme = week / README
        if not readme.is_file():
            problems += check_readme(week, "")
            continue
        previous = weeks[index - 1].name if index else None
        text = readme.read_text(encoding="utf-8")
        new_text = replace_section(text, render_section(declaration, week_number(week), previous))
        if new_text is None:
            problems.append(_missing_markers(week))
        elif new_text != text:
            readme.write_text(new_text, encoding="utf-8")
            updated.append(f"{week.name}/{README}")
    return updated, problems


# ------------------------------------------------------------------------------------- diff


def _text_lines(data: bytes) -> list[str] | None:
    """The file's lines (with endings), or None for a binary file."""
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


def _unified(old: list[str], new: list[str], old_label: str, new_label: str) -> list[str]:
    lines = []
    for line in difflib.unified_diff(old, new, old_label, new_label):
        # difflib leaves a last line without its newline; end it so hunks stay apart.
        lines.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return lines


def find_week(root: Path, wanted: str) -> Path | None:
    """A week folder by number ("3") or by folder name."""
    for week in find_weeks(root):
        if wanted in (week.name, str(week_number(week))):
            return week
    return None


def lesson(root: Path, week: Path, snapshot: Files | None = None) -> str:
    """The week's declared changes, then the diffs against the previous week (in `snapshot`, default the disk)."""
    snapshot = snapshot or DiskFiles(root)
    weeks = find_weeks(root)
    index = weeks.index(week)
    previous = weeks[index - 1] if index else None
    declaration, _ = load_declaration(week, snapshot)
    title = declaration.title if declaration else f"({DECLARATION} missing or invalid)"
    out = [f"{week.name}: {title}\n"]
    out.append(f"Compared with {previous.name}\n" if previous else "The first week.\n")
    if declaration:
        rows = [(t, e, r) for t in TABLES for e, r in sorted(declaration.tables[t].items())]
        width = max((len(entry) for _, entry, _ in rows), default=0)
        out.append("\n")
        out += [f"  {table:<8} {entry:<{width}}  {reason}\n" for table, entry, reason in rows]
    out.append("\n")

    old_files = snapshot.files(previous.name) if previous else set()
    new_files = snapshot.files(week.name)
    for path in sorted(old_files | new_files):
        old_label = f"a/{previous.name}/{path}" if previous else ""
        new_label = f"b/{week.name}/{path}"
        if path not in new_files:
            out.append(f"removed: {old_label}\n")
            continue
        new_lines = _text_lines(snapshot.read(f"{week.name}/{path}") or b"")
        if previous is None or path not in old_files:
            if new_lines is None:
                out.append(f"added binary file: {new_label}\n")
            else:
                out += _unified([], new_lines, "/dev/null", new_label)
            continue
        if snapshot.same(f"{previous.name}/{path}", f"{week.name}/{path}"):
            continue
        old_lines = _text_lines(snapshot.read(f"{previous.name}/{path}") or b"")
        if old_lines is None or new_lines is None:
            out.append(f"binary files {old_label} and {new_label} differ\n")
        else:
            out += _unified(old_lines, new_lines, old_label, new_label)
    return "".join(out)


# ------------------------------------------------------------------------------------- sync


def sync(root: Path, target: str) -> tuple[list[str], bool]:
    """Carry `week_K_slug/path` (a file or folder) forward into the following weeks.

    Each later week that does not declare the file gets a copy from the week before it;
    the first week that declares it keeps its own version, and so do the weeks after it.
    Returns (messages, ok).
    """
    given = Path(target)
    if given.is_absolute():
        try:
            given = given.resolve().relative_to(root.resolve())
        except ValueError:
            return [f"{target} is not inside {root}"], False
    parts = [p for p in given.parts if p != "."]
    weeks = find_weeks(root)
    names = [w.name for w in weeks]
    if len(parts) < 2 or parts[0] not in names:
        return [
            f"{target} must be a file inside a week folder, like "
            f"{names[0] if names else 'week_0_project_setup'}/data.py"
        ], False
    start = names.index(parts[0])
    relative = "/".join(parts[1:])
    source = weeks[start] / relative
    known = list_files(root, weeks[start])  # what git tracks or would track: never an ignored file
    if source.is_dir():
        pending = sorted(f for f in known if covers(relative + "/", f))
    elif source.is_file():
        pending = [relative]
    else:
        return [f"{target} does not exist"], False
    # list_files already leaves keys out; look at the disk too, so a refusal says why, not a silent skip.
    on_disk = [p for p in source.rglob("*") if p.is_file()] if source.is_dir() else [source]
    secrets = sorted(p.relative_to(weeks[start]).as_posix() for p in on_disk if is_secret_name(p.name))
    if secrets:
        return [
            f"refused: {weeks[start].name}/{secrets[0]} looks like a file of keys; secrets are never copied "
            "between weeks (each week reads its own, git-ignored .env)"
        ], False
    if source.is_file() and relative not in known:
        return [
            f"refused: {target} is ignored by git (a learner's or a run's file, not part of the lesson), "
            "so it is never carried forward"
        ], False
    if not pending:
        return [f"{target} holds no files to carry forward"], False

    messages: list[str] = []
    copies = 0
    for index in range(start + 1, len(weeks)):
        if not pending:
            break
        week, before = weeks[index], weeks[index - 1]
        declaration, _ = load_declaration(week)
        if declaration is None:
            messages.append(
                f"stopped: {week.name}/{DECLARATION} is missing or invalid, so {week.name} "
                "and later weeks were left alone; fix it and sync again"
            )
            return messages, False
        still_pending = []
        for path in pending:
            match = declaration.lookup(path)
            if match:
                messages.append(
                    f"{week.name} declares {path} under [{match[0]}], so it and the weeks "
                    f"after it have their own version: fix {week.name}/{path} by hand"
                )
                continue
            still_pending.append(path)
            destination = week / path
            if destination.is_file() and DiskFiles(root).same(f"{before.name}/{path}", f"{week.name}/{path}"):
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(before / path, destination)
            copies += 1
            messages.append(f"copied {before.name}/{path} -> {week.name}/{path}")
        pending = still_pending
    if pending:
        messages.append(f"carried forward to the last week, {weeks[-1].name}")
    messages.append(f"{copies} file{'s' if copies != 1 else ''} copied")
    return messages, True


# -------------------------------------------------------------------------------------- CLI


def print_uncommitted(root: Path, shown: int = 5) -> None:
    """Say which working files were left out of a check of the last commit (a learner's, or work not committed)."""
    paths = uncommitted(root)
    if paths:
        more = f" and {len(paths) - shown} more" if len(paths) > shown else ""
        print(
            f"not checked: {len(paths)} file(s) in the week folders differ from the last commit "
            f"({', '.join(paths[:shown])}{more}): your own work is fine there; "
            "`make check-weeks WORKTREE=1` checks the files as they are on disk"
        )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.weeks",
        description="Check, show and sync the week folders against their week.toml.",
    )
    parser.add_argument("--root", type=Path, default=ROOT, help="repo root (default: %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True)
    check_cmd = commands.add_parser("check", help="every week differs from the previous one as declared")
    show = commands.add_parser("diff", help="print a week's lesson: its declaration and diffs")
    show.add_argument("week", help="week number, e.g. 3 (or the folder name)")
    for command in (check_cmd, show):
        command.add_argument(
            "--worktree",
            action="store_true",
            help="compare the files on disk instead of the last commit (your work before you commit it)",
        )
    carry = commands.add_parser("sync", help="carry a fixed file forward to later weeks")
    carry.add_argument("path", help="week_K_slug/relative/path, as seen from the repo root")
    commands.add_parser("readme", help="rewrite each week's README 'What's new' section")
    args = parser.parse_args(argv)
    root: Path = args.root

    if args.command == "check":
        snapshot = week_files(root, args.worktree)
        count, problems = check(root, snapshot)
        if isinstance(snapshot, CommittedFiles):
            print_uncommitted(root)
        return report(
            problems,
            failed=f"{len(problems)} problem(s) in {count} week folder(s), in {snapshot.description}; see above.",
            passed=f"{count} weeks checked in {snapshot.description}, all declarations hold",
        )
    if args.command == "diff":
        week = find_week(root, args.week)
        if week is None:
            known = ", ".join(str(week_number(w)) for w in find_weeks(root))
            print(f"no week {args.week}: the weeks are {known or 'none yet'}")
            return 1
        sys.stdout.write(lesson(root, week, week_files(root, args.worktree)))
        return 0
    if args.command == "sync":
        messages, ok = sync(root, args.path)
        print("\n".join(messages))
        return 0 if ok else 1
    updated, problems = write_readmes(root)
    for name in updated:
        print(f"updated {name}")
    if problems:
        print("\n".join(problems))
        return 1
    if not updated:
        print("every README section is already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
