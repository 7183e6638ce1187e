"""How the repo checks end: the problems one per line and a summary, or one line saying all is well."""

from __future__ import annotations


def report(problems: list[str], failed: str, passed: str) -> int:
    """Print `problems` then the `failed` summary (exit code 1), or the `passed` line (exit code 0)."""
    if problems:
        print("\n".join(problems))
        print(f"\n{failed}")
        return 1
    print(passed)
    return 0
