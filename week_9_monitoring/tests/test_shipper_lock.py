"""One shipper per events file: a second `follow` is refused by the lock, with real processes and osmem-server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import WEEK_DIR, run_script
from helpers.opensearch_server import OpenSearchServer, point_clis_at
from helpers.sample_events import make_event, make_events, write_events
from monitoring.event_index import INDEX_PATTERN
from monitoring.event_store import connect
from monitoring.follow_state import read_position
from monitoring.prediction_events import to_json_line


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenSearchServer]:
    with OpenSearchServer() as server:
        point_clis_at(server, monkeypatch)
        yield server


def wait_for(condition, process: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr  # no traceback
    return lines[0]


def test_a_second_shipper_on_the_same_file_is_refused_and_the_first_goes_on(
    store: OpenSearchServer, tmp_path: Path
) -> None:
    events_file = tmp_path / "events.jsonl"
    state = events_file.with_name("events.jsonl.offset.json")
    lock = events_file.with_name("events.jsonl.offset.json.lock")
    write_events(events_file, make_events(10))
    with open(events_file, "ab") as handle:  # a crash's half line, then the next whole one glued to it
        handle.write(to_json_line(make_event(99)).encode()[:72])
    write_events(events_file, [make_event(10)])
    first = subprocess.Popen(
        [sys.executable, "-m", "monitoring.shipper", "follow", str(events_file), "--poll", "0.05"],
        cwd=WEEK_DIR,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: state.exists() and read_position(state).line == 11, first)  # past the bad line
        for once in (["--once"], []):  # `follow --once`, and a second long-running `follow`
            error = one_line_error(run_script("-m", "monitoring.shipper", "follow", str(events_file), *once))
            assert f"another shipper is already following {events_file} (it holds the lock {lock})" in error
        assert first.poll() is None  # the first one did not notice (nor stop on the bad line)
        write_events(events_file, make_events(5, first=11))
        wait_for(lambda: read_position(state).line == 16, first)

        first.send_signal(signal.SIGKILL)  # the hardest way to die: the kernel still releases the lock
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate()
    write_events(events_file, make_events(2, first=16))
    after = run_script("-m", "monitoring.shipper", "follow", str(events_file), "--once")
    assert after.returncode == 0, after.stderr
    assert "shipped 2 events" in after.stdout
    client = connect(store.url)
    client.indices.refresh(index=INDEX_PATTERN)
    assert client.count(index=INDEX_PATTERN)["count"] == 17  # 10 + 5 + 2; the glued event is in the dead letter
    (entry,) = [json.loads(line) for line in events_file.with_name("dead-letter.jsonl").read_text().splitlines()]
    assert entry["where"] == f"{events_file}:11" and entry["line"].endswith(to_json_line(make_event(10)))


SAVE_LOOP = """
import sys
from pathlib import Path
from monitoring.follow_state import Position, save_position
for number in range(400):
    save_position(Path(sys.argv[1]), Position(offset=number, line=number, inode=int(sys.argv[2])))
"""


def test_two_processes_saving_the_state_at_once_never_share_a_temporary_file(tmp_path: Path) -> None:
    """Without the lock's protection (the library function itself): each write uses its own temporary file."""
    state = tmp_path / "events.jsonl.offset.json"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", SAVE_LOOP, str(state), str(which)],
            cwd=WEEK_DIR,
            stderr=subprocess.PIPE,
            text=True,
        )
        for which in (1, 2)
    ]
    errors = [writer.communicate(timeout=120)[1] for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0], errors
    saved = json.loads(state.read_text())  # whole, never half of one and half of the other
    assert saved["offset"] == 399 and saved["inode"] in (1, 2)
    assert sorted(path.name for path in tmp_path.iterdir()) == [state.name]  # no temporary file left behind
