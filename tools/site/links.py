"""The external links of the course site, in one report; checked only where the network allows.

MkDocs checks the relative links, images and anchors itself (--strict fails on them). Links to
other sites cannot be checked offline, and a dead one elsewhere should not break the build, so
they are listed in `external-links.txt` beside the built site with a status each: checked when
MLOPS_SITE_CHECK_LINKS=1 (the docs workflow sets it), otherwise "not checked" and why.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TIMEOUT_S = 10
AGENT = "mlops-basics-site-link-check"


def _status(url: str) -> str:
    """'ok 200', 'broken 404', or 'unreachable: <reason>' for one URL (HEAD, then GET if HEAD is refused)."""
    for method in ("HEAD", "GET"):
        request = urllib.request.Request(url, method=method, headers={"User-Agent": AGENT})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                return f"ok {response.status}"
        except urllib.error.HTTPError as error:
            if method == "HEAD" and error.code in (403, 405, 429, 501):
                continue  # some hosts refuse HEAD or robots; ask once more with GET
            return f"broken {error.code}"
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            return f"unreachable: {getattr(error, 'reason', error)}"
    return "broken (HEAD and GET refused)"


def check(urls: list[str]) -> dict[str, str]:
    """The status of each URL; every one 'skipped: no network' when none of them could be reached."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = dict(zip(urls, pool.map(_status, urls), strict=True))
    if urls and all(status.startswith("unreachable") for status in statuses.values()):
        reason = statuses[urls[0]].removeprefix("unreachable: ")
        return {url: f"skipped: no network here ({reason})" for url in urls}
    return statuses


def write_report(links: dict[str, set[str]], path: Path) -> str:
    """Write the report of `links` (URL -> pages) to `path`; return its one-line summary."""
    urls = sorted(links)
    if os.environ.get("MLOPS_SITE_CHECK_LINKS") == "1":
        statuses = check(urls)
    else:
        statuses = {url: "not checked: set MLOPS_SITE_CHECK_LINKS=1 where there is internet" for url in urls}
    lines = [f"{statuses[url]}\t{url}\t{', '.join(sorted(links[url]))}" for url in urls]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text("# status\turl\tpages\n" + "\n".join(lines) + "\n", encoding="utf-8")
    temporary.replace(path)
    counts: dict[str, int] = {}
    for status in statuses.values():
        kind = next(k for k in ("ok", "broken", "unreachable", "skipped", "not checked") if status.startswith(k))
        counts[kind] = counts.get(kind, 0) + 1
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items()) or "none"
    return f"{len(urls)} external link(s) ({summary}): {path}"
