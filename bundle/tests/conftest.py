"""Puts bundle/ on sys.path, as each week's conftest puts its week, and lists the week folders."""

from __future__ import annotations

import re
import sys
from pathlib import Path

BUNDLE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BUNDLE_DIR))

REPO_ROOT = BUNDLE_DIR.parent
# Every week bundles its own copy of the data and the model, so every week is checked.
WEEKS = sorted(
    (p for p in REPO_ROOT.iterdir() if p.is_dir() and re.fullmatch(r"week_\d+_\w+", p.name)),
    key=lambda p: int(p.name.split("_")[1]),
)
