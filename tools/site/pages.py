"""The course site's pages: which READMEs they are, how their links are rewritten, each week's lesson diff.

The site is built from the READMEs themselves (one source of truth): the root README is the
home page, each week's README a page at the week's own path, and bundle/README.md a last page.
Their links were written for GitHub, relative to the README's folder, so:

- a link to another README (or to its folder) stays a relative link to that page;
- a link to an image stays as it is, and the image is added to the site (nothing hot-linked);
- a link to any other file or folder of the repository goes to it on the code host;
- a link to something that does not exist is left alone, so MkDocs' --strict build fails on it.
"""

from __future__ import annotations

import html
import posixpath
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer

from tools.week_files import CommittedFiles, DiskFiles, week_files
from tools.weeks import find_weeks, lesson, load_declaration, week_number

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp")
# A Markdown link or image: [text](target "title"); the target is group "target".
LINK = re.compile(r"(?P<lead>!?\[(?:[^\]\\]|\\.)*\]\()(?P<target><[^>]*>|[^)\s]+)")
HTML_SRC = re.compile(r'(?P<lead>\b(?:src|href)=")(?P<target>[^"]+)')
# A reference definition: [label]: target
REFERENCE = re.compile(r"(?m)(?P<lead>^ {0,3}\[[^\]]+\]:[ \t]*)(?P<target><[^>]*>|\S+)")
FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)
# Where the lesson diff goes in the rendered page: a comment Markdown passes through untouched.
DIFF_MARK = "<!-- mlops-site:lesson-diff -->"


@dataclass(frozen=True)
class Page:
    """One README that becomes a page: its repository path and its navigation title."""

    path: str  # posix path relative to the repository root, e.g. week_3_dvc/README.md
    title: str
    week: int | None = None


def find_pages(root: Path) -> list[Page]:
    """The root README, each week's README in week order, then bundle/README.md (when they exist)."""
    pages = [Page("README.md", "Home")] if (root / "README.md").is_file() else []
    for week in find_weeks(root):
        if (week / "README.md").is_file():
            declaration, _ = load_declaration(week)
            number = week_number(week)
            title = declaration.title if declaration and declaration.title else week.name
            pages.append(Page(f"{week.name}/README.md", f"Week {number}: {title}", number))
    if (root / "bundle" / "README.md").is_file():
        pages.append(Page("bundle/README.md", "The offline bundle"))
    return pages


def _outside_code(text: str):
    """Yield (chunk, is_code) over `text`: fenced blocks and inline code spans are code."""
    fence: str | None = None
    prose: list[str] = []
    for line in text.splitlines(keepends=True):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
            yield from _split_inline("".join(prose))
            prose = []
            yield line, True
        elif fence is not None:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
                fence = None
            yield line, True
        else:
            prose.append(line)
    yield from _split_inline("".join(prose))


def _split_inline(text: str):
    last = 0
    for match in INLINE_CODE.finditer(text):
        yield text[last : match.start()], False
        yield match.group(0), True
        last = match.end()
    yield text[last:], False


def _resolve(page: str, target: str) -> str:
    """The repository path a relative link on `page` points at ('' for the root)."""
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(page), target))
    return "" if joined == "." else joined


@dataclass
class Linker:
    """Rewrites the relative links of one site's pages (see the module docstring)."""

    root: Path
    pages: list[Page]
    repo_url: str
    ref: str = "main"

    def __post_init__(self) -> None:
        self.page_paths = {page.path for page in self.pages}
        self.images: set[str] = set()  # repository paths of the images the pages show
        self.external: dict[str, set[str]] = {}  # external URL -> the pages that link to it

    def _page_for(self, path: str) -> str | None:
        if path in self.page_paths:
            return path
        readme = posixpath.join(path, "README.md") if path else "README.md"
        return readme if readme in self.page_paths and (self.root / path).is_dir() else None

    def _rewrite(self, page: str, target: str) -> str:
        bare = target[1:-1] if target.startswith("<") else target
        if EXTERNAL.match(bare):
            if bare.startswith(("http://", "https://")):
                self.external.setdefault(bare, set()).add(page)
            return target
        if bare.startswith(("#", "/")) or not bare:
            return target  # an anchor on this page (checked by MkDocs), or absolute (MkDocs warns)
        path, hash_, fragment = bare.partition("#")
        resolved = _resolve(page, path)
        if resolved.startswith("../") or resolved == "..":
            return target  # outside the repository: left for MkDocs to report
        found = self._page_for(resolved)
        if found is not None:
            return posixpath.relpath(found, posixpath.dirname(page) or ".") + hash_ + fragment
        on_disk = self.root / resolved
        if resolved.lower().endswith(IMAGE_SUFFIXES) and on_disk.is_file():
            self.images.add(resolved)
            return target
        if on_disk.exists():
            kind = "tree" if on_disk.is_dir() else "blob"
            return f"{self.repo_url.rstrip('/')}/{kind}/{self.ref}/{resolved}" + hash_ + fragment
        return target  # missing: MkDocs' link validation reports it and --strict fails

    def rewrite(self, page: str, markdown: str) -> str:
        """`markdown` of repository file `page` with its links rewritten for the site."""
        out = []
        for chunk, is_code in _outside_code(markdown):
            if not is_code:
                for pattern in (LINK, HTML_SRC, REFERENCE):
                    chunk = pattern.sub(lambda m: m.group("lead") + self._rewrite(page, m.group("target")), chunk)
            out.append(chunk)
        return "".join(out)


class BatchedCommits:
    """The last commit's files as tools.weeks reads them, through one `git cat-file --batch` process.

    The lesson diffs read a few hundred blobs; one git process per blob took most of the build's time.
    """

    def __init__(self, committed: CommittedFiles) -> None:
        self.committed = committed
        self.description = committed.description
        self.process = subprocess.Popen(
            ["git", "cat-file", "--batch"], cwd=committed.root, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )

    def files(self, week: str) -> set[str]:
        return self.committed.files(week)

    def same(self, first: str, second: str) -> bool:
        return self.committed.same(first, second)

    def read(self, relative: str) -> bytes | None:
        blob = self.committed.blobs.get(relative)
        if blob is None:
            return None
        self.process.stdin.write(blob.encode() + b"\n")
        self.process.stdin.flush()
        header = self.process.stdout.readline().split()  # <sha> blob <size>
        data = self.process.stdout.read(int(header[2]))
        self.process.stdout.read(1)  # the newline after the content
        return data

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


def snapshot(root: Path) -> BatchedCommits | DiskFiles:
    """What the lesson diffs compare, as `make diff` does: the last commit (the files on disk without git)."""
    files = week_files(root, False)
    return BatchedCommits(files) if isinstance(files, CommittedFiles) else files


def lesson_section(number: int) -> str:
    """The Markdown appended to week `number`'s page: a heading and the mark where the diff goes."""
    return (
        f"\n\n## The lesson as a diff\n\n"
        f"What `make diff WEEK={number}` prints: the week's declared changes, then every file that differs "
        f"from the week before, as committed when this site was built. Click to open.\n\n{DIFF_MARK}\n"
    )


def lesson_html(root: Path, week_name: str, files: BatchedCommits | DiskFiles | None = None) -> str:
    """Week `week_name`'s lesson diff (tools.weeks, as committed) as a collapsed, highlighted block."""
    week = root / week_name
    text = lesson(root, week, files or week_files(root, False))
    changed = sum(1 for line in text.splitlines() if line.startswith(("+++ ", "removed: ", "added binary")))
    body = highlight(text, DiffLexer(), HtmlFormatter(cssclass="highlight", wrapcode=True))
    summary = f"make diff WEEK={week_number(week)}: {changed} file(s), {text.count(chr(10)):,} lines"
    # data-search-exclude: Material's search leaves the diff out of its index (it would be most of it).
    return (
        f'<details class="lesson-diff" data-search-exclude>\n<summary>{html.escape(summary)}</summary>\n'
        f"{body}</details>\n"
    )
