"""The served copy of a registered model (production/onnx): its record, and a swap a crash cannot break.

monitoring/registry.py downloads a version into CACHE.download, moves it to CACHE.incoming once it
is complete, checks it and writes its record (registered_model.json) last; then swap_in renames
CACHE -> CACHE.previous and CACHE.incoming -> CACHE. Until that second rename the old cache is
served as it was; recover() finishes or undoes whatever a killed fetch left.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from settings import REGISTERED_RECORD

# Suffixes of the cache's siblings: the raw download, the checked copy waiting for the swap, the old copy during it.
DOWNLOAD, INCOMING, PREVIOUS = ".download", ".incoming", ".previous"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digests(folder: Path) -> dict[str, str]:
    """sha256 of every file of an export, by name (the cache's own record left out)."""
    return {p.name: sha256(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != REGISTERED_RECORD}


def sibling(cache: Path, suffix: str) -> Path:
    return cache.with_name(cache.name + suffix)


def read_cache_record(cache: Path) -> dict | None:
    """The cache's registered_model.json; None when there is none to read (nothing fetched yet)."""
    try:
        record = json.loads((cache / REGISTERED_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def interrupted(cache: Path) -> bool:
    """Whether a fetch or a swap was stopped halfway and left a sibling for recover()."""
    return any(sibling(cache, suffix).exists() for suffix in (DOWNLOAD, INCOMING, PREVIOUS))


def recover(cache: Path) -> str | None:
    """Tidy what a killed fetch left; returns what was done, None when there was nothing.

    Killed between the two renames of swap_in (no cache): the staged copy holds its record, so it is
    complete and goes into place; without it, the old copy goes back. Anything else left is deleted.
    """
    incoming, previous, download = (sibling(cache, suffix) for suffix in (INCOMING, PREVIOUS, DOWNLOAD))
    done = None
    if not cache.exists() and (incoming / REGISTERED_RECORD).is_file():
        incoming.rename(cache)
        done = f"finished an interrupted fetch: {cache} holds the new copy"
    elif not cache.exists() and previous.exists():
        previous.rename(cache)
        done = f"undid an interrupted fetch: {previous} moved back to {cache}"
    for leftover in (incoming, previous, download):
        if leftover.exists():
            shutil.rmtree(leftover)
            done = done or f"deleted {leftover}, left behind by an interrupted fetch"
    return done


def swap_in(staged: Path, cache: Path) -> None:
    """Replace the cache with a staged copy: cache -> CACHE.previous, staged -> cache, delete the previous."""
    previous = sibling(cache, PREVIOUS)
    shutil.rmtree(previous, ignore_errors=True)
    if cache.exists():
        cache.rename(previous)
    staged.rename(cache)
    shutil.rmtree(previous, ignore_errors=True)


def cache_intact(cache: Path, record: dict) -> bool:
    """Whether the cache still holds exactly the files its record names."""
    try:
        return file_digests(cache) == json.loads(record.get("tags", {}).get("files_sha256") or "{}")
    except (OSError, ValueError):
        return False


def write_json_atomically(path: Path, data: dict) -> None:
    """A temp file renamed over `path`: a reader sees the old file or the new one, never half of one."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(data, indent=2) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
