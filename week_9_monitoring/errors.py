"""One exception type for mistakes a learner can fix, and a wrapper that prints it nicely.

Scripts raise `CourseError("what is wrong: how to fix it")`; `run_cli` turns it into one
line on stderr and exit code 2 instead of a wall of traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class CourseError(Exception):
    """A problem the user can fix; the message names the problem and the fix."""


def run_cli(main: Callable[[], object]) -> None:
    """Run a script's `main()`, printing a `CourseError` as a one-line error."""
    try:
        main()
    except CourseError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
