"""The window-memory benchmark runs and prints a peak for each command (not a memory or timing test)."""

from __future__ import annotations

import re

from conftest import run_script


def test_the_benchmark_measures_both_commands_on_a_small_file() -> None:
    result = run_script("-m", "bench.bench_window_memory", "--events", "3000", "--last", "100")
    assert result.returncode == 0, result.stderr
    assert "target: 150 MB at 400,000 events" in result.stdout
    rows = re.findall(
        r"^(drift check|labelling queue) +3,000 +\d+ +(\d+) +(\d+) +(-?\d+) +(yes|no)$", result.stdout, re.M
    )
    assert [name for name, *_ in rows] == ["drift check", "labelling queue"], result.stdout
    for _, peak, floor, above, _ in rows:
        # both processes import scikit-learn: tens of MB at least; the peak includes the floor
        assert int(floor) > 50 and int(peak) >= int(floor) - 5 and int(above) == int(peak) - int(floor)
