"""MkDocs hooks of the course site (tools/site/mkdocs.yml): the READMEs become the pages at build time.

Nothing is copied into the repository: each page is backed by the README file itself, its links are
rewritten for the site (tools/site/pages.py), each week's page gets its lesson diff, and the
external links are listed in one report (tools/site/links.py).

MLOPS_SITE_ROOT builds another tree of READMEs instead of this repository (the tests' fixtures).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # MkDocs loads this file by path; the site code lives in the tools package

from mkdocs.structure.files import File  # noqa: E402

from tools.site import links, pages  # noqa: E402

log = logging.getLogger("mkdocs.hooks.mlops_site")
PLACEHOLDER_REPO = "https://github.com/OWNER/MLOps-Basics"
STATE: dict = {}


def _repo_url(configured: str | None) -> str:
    """The code host URL: the configured one, else this clone's GitHub origin, else the placeholder."""
    if configured and configured != PLACEHOLDER_REPO:
        return configured
    try:
        origin = subprocess.run(
            ["git", "remote", "get-url", "origin"], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()
    except FileNotFoundError:
        origin = ""
    if origin.startswith("git@github.com:"):
        origin = "https://github.com/" + origin.removeprefix("git@github.com:")
    return origin.removesuffix(".git") if origin.startswith("https://github.com/") else PLACEHOLDER_REPO


def on_startup(command, dirty):
    """Remember whether this is `mkdocs serve`: its site lives in a temporary folder, with no report."""
    STATE["command"] = command


def on_config(config):
    """Find the pages, build the navigation in week order and set up the link rewriter."""
    root = Path(os.environ.get("MLOPS_SITE_ROOT") or REPO).resolve()
    found = pages.find_pages(root)
    if not found:
        raise SystemExit(f"error: no README.md under {root}: set MLOPS_SITE_ROOT to a course checkout")
    config.repo_url = _repo_url(config.repo_url)
    config.nav = [{page.title: page.path} for page in found]
    ref = os.environ.get("MLOPS_SITE_REF", "main")
    STATE.update(root=root, pages=found, linker=pages.Linker(root, found, config.repo_url, ref), files=None)
    return config


def on_files(files, config):
    """Add each README, backed by the file itself, and every image the READMEs show."""
    linker: pages.Linker = STATE["linker"]
    for page in STATE["pages"]:
        source = STATE["root"] / page.path
        files.append(File.generated(config, page.path, abs_src_path=str(source)))
        linker.rewrite(page.path, source.read_text(encoding="utf-8"))  # collects the images it links
    for image in sorted(linker.images):
        if files.get_file_from_path(image) is None:
            files.append(File.generated(config, image, abs_src_path=str(STATE["root"] / image)))
    return files


def on_page_markdown(markdown, page, config, files):
    """Rewrite a README's links for the site; a week's page ends with its lesson diff."""
    found = {p.path: p for p in STATE["pages"]}.get(page.file.src_uri)
    if found is None:
        return markdown
    markdown = STATE["linker"].rewrite(found.path, markdown)
    if found.week is not None:
        markdown += pages.lesson_section(found.week)
    return markdown


def on_page_content(html, page, config, files):
    """Put the rendered lesson diff where the week's page marks it."""
    if pages.DIFF_MARK in html:
        if STATE["files"] is None:
            STATE["files"] = pages.snapshot(STATE["root"])  # one for the whole build
        week_name = page.file.src_uri.split("/")[0]
        html = html.replace(pages.DIFF_MARK, pages.lesson_html(STATE["root"], week_name, STATE["files"]))
    return html


def on_post_build(config):
    """The external links of every page, in one report beside the built site."""
    if isinstance(STATE.get("files"), pages.BatchedCommits):
        STATE["files"].close()
    if STATE.get("command") == "serve":
        return
    report = Path(config.site_dir).parent / "external-links.txt"
    log.info(links.write_report(STATE["linker"].external, report))


def on_serve(server, config, builder):
    """`mkdocs serve` rebuilds when a README or an image it shows changes."""
    for page in STATE["pages"]:
        server.watch(str(STATE["root"] / page.path))
    for image in STATE["linker"].images:
        server.watch(str(STATE["root"] / image))
    return server
