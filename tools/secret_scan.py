"""Secret scanning with detect-secrets: the repository, every blob of its git history, and image files.

`make lint` runs `python -m tools.secret_scan`: every file git knows of (tracked, or untracked and
not ignored) and every file version any commit ever held is scanned with detect-secrets' default
plugins (AWS keys, private keys, tokens, high-entropy strings, ...) and filters. A finding fails
the check unless the committed baseline, `.secrets.baseline`, lists it (same file, type and
hash): the baseline holds the course's known fakes, such as the test credentials moto accepts.
A key removed in a later commit still fails: it stays readable in the history until that is
rewritten, and the key must be revoked either way.

    python -m tools.secret_scan                    # check (exit 1 with file:line and type per finding)
    python -m tools.secret_scan --update-baseline  # accept what is found now (review the diff first!)
    python -m tools.secret_scan --no-history       # only the files on disk

One rule excludes files: `tests/fixtures/planted_aws_key.env` (exactly that name, in a tests/fixtures
folder), the fake AWS key the tests plant to prove each scan fails on a key. The weeks' container tests
call `scan_directory` on an image's exported file system (`tests/helpers/image_secrets.py`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from detect_secrets.core import scan
from detect_secrets.core.baseline import format_for_output
from detect_secrets.core.potential_secret import PotentialSecret
from detect_secrets.core.secrets_collection import SecretsCollection
from detect_secrets.settings import default_settings, get_filters

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / ".secrets.baseline"
# The one excluded file: the planted fake key of the tests (a narrow rule, so nothing else hides behind it).
PLANTED_FIXTURE = r"(^|/)tests/fixtures/planted_aws_key\.env$"
EXCLUDE_FILE_FILTER = "detect_secrets.filters.regex.should_exclude_file"
BASELINE_FILTER = "detect_secrets.filters.common.is_baseline_file"


@dataclass(frozen=True, order=True)
class Finding:
    """A potential secret: where (a path, with the commit for history), its line, its detector type and hash."""

    path: str
    line: int
    kind: str
    hashed: str
    commit: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        """What the baseline matches on: file, type and hash (not the line, which moves)."""
        return (self.path, self.kind, self.hashed)

    def describe(self) -> str:
        where = f"{self.path}:{self.line}" + (f" (git history, blob {self.commit})" if self.commit else "")
        return f"{where}: {self.kind}"


@contextmanager
def course_settings() -> Iterator[None]:
    """detect-secrets' default plugins and filters, plus the planted-fixture rule, for the block."""
    with default_settings() as settings:
        settings.filters[EXCLUDE_FILE_FILTER] = {"pattern": [PLANTED_FIXTURE]}
        # The baseline holds the accepted findings' hashes, which look like secrets themselves.
        settings.filters[BASELINE_FILTER] = {"filename": BASELINE.name}
        get_filters.cache_clear()
        yield


def _scan_one(job: tuple[str, str]) -> list[tuple[str, int, str, str]]:
    """Scan one file on disk; the findings carry `logical` (the repository path) as their path."""
    disk_path, logical = job
    return [(logical, s.line_number, s.type, s.secret_hash) for s in scan.scan_file(disk_path)]


def scan_files(jobs: list[tuple[Path, str]], processes: int | None = None) -> list[tuple[str, int, str, str]]:
    """Scan (file on disk, path to report) pairs in parallel under the course's settings."""
    work = [(str(disk), logical) for disk, logical in jobs]
    found: list[tuple[str, int, str, str]] = []
    with course_settings():
        if len(work) < 50 or processes == 1:
            for job in work:
                found += _scan_one(job)
        else:
            # fork: the workers inherit the settings configured above.
            with multiprocessing.get_context("fork").Pool(processes) as pool:
                for result in pool.imap_unordered(_scan_one, work, chunksize=16):
                    found += result
    return found


def git(repo: Path, *args: str) -> str:
    """Output of a git command in `repo`; one clear line when it fails."""
    result = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"error: git {' '.join(args)} failed in {repo}: {result.stderr.strip()}")
    return result.stdout


def repository_files(repo: Path) -> list[str]:
    """Tracked files, and untracked ones git does not ignore, that exist on disk."""
    names = git(repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    return sorted({name for name in names if name and (repo / name).is_file()})


def history_blobs(repo: Path) -> list[tuple[str, str]]:
    """(blob id, path) of every file version in any commit of any ref, except those in the index.

    The index's versions are the files on disk in a clean checkout, scanned as files already.
    A blob that several paths or commits share is listed once, under the first path git names.
    """
    listing = git(repo, "rev-list", "--objects", "--all")
    current = {line.split()[1] for line in git(repo, "ls-files", "-s").splitlines() if line}
    check = subprocess.run(
        ["git", "cat-file", "--batch-check=%(objecttype) %(objectname) %(rest)"],
        cwd=repo,
        input=listing,  # "<object> <path>" lines: %(rest) is the path
        capture_output=True,
        text=True,
        check=True,
    )
    blobs = []
    for line in check.stdout.splitlines():
        kind, blob, path = (line.split(" ", 2) + [""])[:3]
        if kind == "blob" and path and blob not in current:
            blobs.append((blob, path))
    return blobs


LineKey = tuple[str, bool, str, str]


def file_class(path: str) -> tuple[str, bool]:
    """What of a file's name detect-secrets looks at: the extension (the keyword rules follow the file
    type) and whether a filename filter (a lock file, an image, the planted fixture, ...) skips the file.

    Call it under `course_settings()`.
    """
    # scan.scan_file applies the same check; detect-secrets is pinned exactly, so this private helper is stable.
    skipped = scan._is_filtered_out(required_filter_parameters=["filename"], filename=path)
    return Path(path).suffix, skipped


def line_keys(path: str, content: bytes) -> list[LineKey] | None:
    """(file class, previous line, line) for every line; None when the content is not text (not scanned).

    Call it under `course_settings()`.
    """
    try:
        lines = content.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return None
    extension, skipped = file_class(path)
    # The previous line is part of the key: detect-secrets reads it (an allowlist comment on the line before).
    return [(extension, skipped, previous, line) for previous, line in zip(["", *lines], lines, strict=False)]


def only_new_lines(path: str, content: bytes, seen: set[LineKey]) -> tuple[bytes, list[int | None]]:
    """The lines of `content` not scanned elsewhere yet, each after its own previous line; they join `seen`.

    Returns the text to scan and, for each of its lines, the line number in `content` (None for a previous
    line kept only as context: its findings belong to where it was scanned). Most older versions of a
    file repeat its current lines, and the weeks repeat each other: a line scanned once, with the same
    previous line and the same kind of file, gives the same findings. Content that is not UTF-8 text
    comes back empty: detect-secrets skips such files too.
    """
    keys = line_keys(path, content)
    if keys is None:
        return b"", []
    kept: list[str] = []
    numbers: list[int | None] = []
    for number, key in enumerate(keys, start=1):
        if key in seen:
            continue
        seen.add(key)
        if key[2] and (not numbers or numbers[-1] != number - 1):
            kept.append(key[2])  # the real previous line, as detect-secrets would see it
            numbers.append(None)
        kept.append(key[3])
        numbers.append(number)
    return ("\n".join(kept) + "\n").encode() if kept else b"", numbers


def write_blobs(
    repo: Path, blobs: list[tuple[str, str]], into: Path, seen: set[LineKey]
) -> list[tuple[Path, str, list[int | None]]]:
    """Write the new lines of each blob (`only_new_lines`) to `into`/<blob>/<path>, read with one
    `git cat-file --batch`; returns (file, path, line numbers) for each."""
    process = subprocess.run(
        ["git", "cat-file", "--batch"],
        cwd=repo,
        input="".join(f"{blob}\n" for blob, _ in blobs).encode(),
        capture_output=True,
        check=True,
    )
    data, offset, jobs = process.stdout, 0, []
    for blob, path in blobs:
        header_end = data.index(b"\n", offset)
        size = int(data[offset:header_end].split()[2])
        content = data[header_end + 1 : header_end + 1 + size]
        offset = header_end + 1 + size + 1  # the content is followed by a newline
        target = into / blob / path
        target.parent.mkdir(parents=True, exist_ok=True)
        text, numbers = only_new_lines(path, content, seen)
        target.write_bytes(text)
        jobs.append((target, path, numbers))
    return jobs


def scan_copies(repo: Path, names: list[str]) -> list[Finding]:
    """Scan files of `repo`, each distinct content once: the weeks are copies, so most files exist ten times.

    Copies share a scan only with the same file name (detect-secrets' filters read the name) and the
    same answer to the planted-fixture rule.
    """
    groups: dict[tuple[str, str, bool], list[str]] = {}
    planted = re.compile(PLANTED_FIXTURE)
    for name in names:
        digest = hashlib.sha1((repo / name).read_bytes()).hexdigest()
        groups.setdefault((digest, Path(name).name, bool(planted.search(name))), []).append(name)
    representatives = {paths[0]: paths for paths in groups.values()}
    findings = []
    for path, line, kind, hashed in scan_files([(repo / name, name) for name in representatives]):
        findings += [Finding(copy, line, kind, hashed) for copy in representatives[path]]
    return findings


def scan_repository(repo: Path = ROOT, history: bool = True) -> list[Finding]:
    """Every finding in the files of `repo` and, with `history`, in every older version of them."""
    names = repository_files(repo)
    findings = scan_copies(repo, names)
    if history:
        blobs = history_blobs(repo)
        # The lines of the files on disk were scanned above: an older version is scanned only for its other lines.
        seen: set[LineKey] = set()
        with tempfile.TemporaryDirectory(prefix="secret-scan-") as tmp, course_settings():
            for name in names:
                seen.update(line_keys(name, (repo / name).read_bytes()) or [])
            jobs = write_blobs(repo, blobs, Path(tmp), seen)
            numbers_of = {blob: numbers for (blob, _), (_, _, numbers) in zip(blobs, jobs, strict=True)}
            # Reported as "<blob>:<path>" so each finding keeps the version it came from.
            labelled = [
                (disk, f"{blob}:{path}")
                for (disk, path, numbers), (blob, _) in zip(jobs, blobs, strict=True)
                if numbers
            ]
            for label, line, kind, hashed in scan_files(labelled):
                blob, _, path = label.partition(":")
                original = numbers_of[blob][line - 1]
                if original is not None:
                    findings.append(Finding(path, original, kind, hashed, blob[:12]))
    return sorted(set(findings))


def scan_directory(root: Path, skip: Iterable[str] = ()) -> list[Finding]:
    """Every finding in the files under `root` (e.g. an image's exported file system), paths relative to it.

    `skip`: top-level relative folders not to enter (e.g. "proc"). Links and special files are not read.
    """
    skipped = {part.strip("/") for part in skip}
    jobs = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if relative.split("/", 1)[0] in skipped or path.is_symlink() or not path.is_file():
            continue
        jobs.append((path, relative))
    return sorted({Finding(*row) for row in scan_files(jobs)})


def load_baseline(path: Path) -> set[tuple[str, str, str]]:
    """The (file, type, hash) triples a detect-secrets baseline accepts."""
    try:
        results = json.loads(path.read_text())["results"]
    except FileNotFoundError:
        raise SystemExit(
            f"error: no baseline at {path}: create it with `python -m tools.secret_scan --update-baseline`"
        ) from None
    except (ValueError, KeyError) as error:
        raise SystemExit(f"error: {path} is not a detect-secrets baseline ({error}): restore it from git") from None
    return {(name, item["type"], item["hashed_secret"]) for name, items in results.items() for item in items}


def write_baseline(findings: list[Finding], path: Path) -> None:
    """Write the findings as a detect-secrets baseline (readable by `detect-secrets audit`), atomically."""
    collection = SecretsCollection()
    seen = set()
    for finding in findings:
        if finding.key in seen:
            continue  # the same secret in the file and in older versions of it: listed once
        seen.add(finding.key)
        secret = PotentialSecret(finding.kind, finding.path, secret="", line_number=finding.line)
        secret.secret_hash = finding.hashed
        collection[finding.path].add(secret)
    with course_settings():
        output = format_for_output(collection)
    output.pop("generated_at", None)  # a stable file: it changes only when the findings do
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(output, indent=2) + "\n")
    temporary.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--repo", type=Path, default=ROOT, help="the git repository to scan (default: this one)")
    parser.add_argument("--baseline", type=Path, help="default: REPO/.secrets.baseline")
    parser.add_argument("--no-history", action="store_true", help="scan only the files, not the git history")
    parser.add_argument("--update-baseline", action="store_true", help="write what is found now as the baseline")
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    baseline = args.baseline or repo / ".secrets.baseline"
    started = time.monotonic()
    findings = scan_repository(repo, history=not args.no_history)
    scope = "files" if args.no_history else "files and git history"
    if args.update_baseline:
        write_baseline(findings, baseline)
        print(f"wrote {baseline}: {len({f.key for f in findings})} accepted finding(s) in {scope}")
        return 0
    accepted = load_baseline(baseline)
    new = [finding for finding in findings if finding.key not in accepted]
    seconds = time.monotonic() - started
    if new:
        for finding in new:
            print(f"secret: {finding.describe()}", file=sys.stderr)
        print(
            f"{len(new)} potential secret(s) not in {baseline.name} ({scope}, {seconds:.1f} s): remove the key, "
            "revoke it if it was real, and rewrite history if it was committed; a false positive goes into the "
            "baseline with `python -m tools.secret_scan --update-baseline` (review its diff)",
            file=sys.stderr,
        )
        return 1
    print(f"secret scan: no new secret in the {scope} of {repo.name} ({seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
