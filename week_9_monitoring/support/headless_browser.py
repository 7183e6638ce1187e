"""Open a page in headless Chromium: read the DOM after its scripts ran, or take a screenshot.

    python -m support.headless_browser reports/monitoring.html --screenshot ../images/week_9_monitoring_report.png

The tests use it to check that the monitoring report's plots really drew in a browser. It looks
for Chromium (Debian's `chromium`, `chromium-browser`) or Google Chrome on PATH, or CHROME_BIN.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from errors import CourseError, run_cli

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


def find_browser() -> str:
    """The path of a Chromium-family browser, or CourseError saying how to install one."""
    explicit = os.environ.get("CHROME_BIN")
    if explicit:
        return explicit
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise CourseError("no Chromium found: install it (apt-get install chromium) or set CHROME_BIN to a Chrome binary")


def run_browser(page: Path, *flags: str, timeout: int = 60) -> subprocess.CompletedProcess:
    page = Path(page).resolve()
    if not page.is_file():
        raise CourseError(f"{page} does not exist: write the report first (python -m monitoring.monitoring_report)")
    with tempfile.TemporaryDirectory() as profile:
        command = [find_browser(), *FLAGS, f"--user-data-dir={profile}", *flags, page.as_uri()]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise CourseError(f"{command[0]} failed on {page} (exit {result.returncode}): {result.stderr.strip()[-500:]}")
    return result


def dump_dom(page: Path) -> str:
    """The page's DOM as HTML after its load handlers ran."""
    return run_browser(page, "--virtual-time-budget=5000", "--dump-dom").stdout


def screenshot(page: Path, out: Path, width: int = 1200, height: int = 2200) -> Path:
    """A PNG of the page's first `height` pixels at `width`."""
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    run_browser(page, "--virtual-time-budget=5000", f"--window-size={width},{height}", f"--screenshot={out}")
    if not out.is_file():
        raise CourseError(f"the browser wrote no screenshot to {out}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("page", type=Path)
    parser.add_argument("--screenshot", type=Path, help="write a PNG of the page here")
    parser.add_argument("--height", type=int, default=2200)
    args = parser.parse_args()
    if args.screenshot:
        print(f"screenshot: {screenshot(args.page, args.screenshot, height=args.height)}")
    else:
        print(dump_dom(args.page))


if __name__ == "__main__":
    run_cli(main)
