"""Open a page of the built course site in headless Chromium and read what the page itself reports.

A copy of week 9's support/headless_browser.py approach (the tools do not import from a week):
Debian's `chromium`, `chromium-browser` or Google Chrome on PATH, or CHROME_BIN. The site is
served on loopback by a small HTTP server that adds one script to every HTML page; after the
page loaded, the script writes its title, navigation, images (with their decoded widths) and
lesson diffs as JSON into <body data-site-check>, which --dump-dom returns.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Headless, offline and quiet: no sandbox (root in containers), no GPU, no background traffic.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)
CHECK_SCRIPT = """<script>
// After load and one more second (virtual time): Material's own scripts add the copy buttons then.
window.addEventListener("load", () => setTimeout(() => {
  const text = (el) => (el ? el.textContent.trim() : null);
  document.body.setAttribute("data-site-check", JSON.stringify({
    title: document.title,
    h1: text(document.querySelector(".md-content h1")),
    nav: [...document.querySelectorAll(".md-nav--primary > .md-nav__list > .md-nav__item > a.md-nav__link")]
      .map(text),
    current: text(document.querySelector(".md-nav--primary .md-nav__link--active")),
    copyButtons: document.querySelectorAll('.md-content button[data-md-type="copy"]').length,
    codeBlocks: document.querySelectorAll(".md-content pre > code").length,
    search: document.querySelector("input.md-search__input") !== null,
    footer: [...document.querySelectorAll(".md-footer__link")].map((a) => a.getAttribute("aria-label")),
    images: [...document.images].map((img) => ({src: img.currentSrc, width: img.naturalWidth})),
    diffs: [...document.querySelectorAll("details.lesson-diff")].map((d) => ({open: d.open})),
  }));
}, 1000));
</script>"""
CHECK_ATTRIBUTE = re.compile(r'data-site-check="([^"]*)"')


def find_browser() -> str | None:
    """The path of a Chromium-family browser, or None."""
    explicit = os.environ.get("CHROME_BIN")
    if explicit:
        return explicit
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class _CheckingHandler(SimpleHTTPRequestHandler):
    """Serves the site's files; HTML pages get the check script before </body>."""

    def send_head(self):  # noqa: D102 - SimpleHTTPRequestHandler's hook
        path = Path(self.translate_path(self.path))
        if path.is_dir():
            path = path / "index.html"
        if path.suffix != ".html" or not path.is_file() or not self.path.split("?")[0].endswith(("/", ".html")):
            return super().send_head()
        body = path.read_bytes().replace(b"</body>", CHECK_SCRIPT.encode() + b"</body>", 1)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return BytesIO(body)

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass  # quiet: the tests read the pages, not the access log


@contextmanager
def serve(site: Path) -> Iterator[str]:
    """Serve `site` on 127.0.0.1 (a free port) while the block runs; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_CheckingHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def page_check(browser: str, url: str, timeout: int = 90) -> dict:
    """What the check script saw on `url` after load: title, h1, nav, footer, images, diffs."""
    with tempfile.TemporaryDirectory() as profile:
        command = [browser, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom", url]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{browser} failed on {url} (exit {result.returncode}): {result.stderr.strip()[-500:]}")
    found = CHECK_ATTRIBUTE.search(result.stdout)
    if found is None:
        raise RuntimeError(f"{url}: the check script did not run (no data-site-check in the DOM)")
    return json.loads(html.unescape(found.group(1)))
