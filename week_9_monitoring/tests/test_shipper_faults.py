"""The shipper under file faults, each made for real: broken lines, truncation, rotation, against osmem-server."""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opensearchpy import OpenSearch

from conftest import run_script
from helpers.opensearch_server import OpenSearchServer, point_clis_at, stored_ids
from helpers.sample_events import make_event, make_events, write_events
from monitoring.event_store import RetryPolicy, connect
from monitoring.prediction_events import PredictionEvent, to_json_line
from monitoring.shipper import follow, follow_once, read_position, replay

FAST = RetryPolicy(retries=2, first_delay_s=0.05)


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenSearchServer]:
    with OpenSearchServer() as server:
        point_clis_at(server, monkeypatch)
        yield server


@pytest.fixture
def client(store: OpenSearchServer) -> OpenSearch:
    return connect(store.url)


def ids(events: list[PredictionEvent]) -> set[str]:
    return {event.event_id for event in events}


def dead_entries(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def append_bytes(path: Path, data: bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data)


# ----------------------------------------------------------------------------- lines that are not events


def write_broken_file(events_file: Path) -> tuple[list[PredictionEvent], PredictionEvent, list[PredictionEvent]]:
    """3 events; the API killed mid-line, then its next line; a non-UTF-8 line; an unknown field; 4 events.

    Returns (the events before, the event glued to the half line, the events after).
    """
    before, glued, after = make_events(3), make_event(3), make_events(4, first=4)
    write_events(events_file, before)
    append_bytes(events_file, to_json_line(make_event(99)).encode()[:72])  # the 72-byte tail of a crash
    write_events(events_file, [glued])  # the restarted API appends a whole line right after it
    append_bytes(events_file, b'{"event_id": "caf\xe9-1", "label": "acceptable"}\n')  # latin-1, not UTF-8
    extra = json.loads(to_json_line(make_event(98)))
    extra["user_id"] = "u-17"  # a field the event does not have: never stripped and shipped
    append_bytes(events_file, (json.dumps(extra) + "\n").encode())
    write_events(events_file, after)
    return before, glued, after


def test_follow_dead_letters_lines_that_are_not_events_and_ships_the_rest(
    client: OpenSearch, store: OpenSearchServer, tmp_path: Path
) -> None:
    events_file, dead_letter = tmp_path / "events.jsonl", tmp_path / "dead-letter.jsonl"
    before, glued, after = write_broken_file(events_file)

    first = run_script("-m", "monitoring.shipper", "follow", str(events_file), "--once", "--batch-size", "2")
    assert first.returncode == 0, first.stderr  # no exit 2, so no crash loop under `restart: unless-stopped`
    assert f"shipped 7 events to {store.url}" in first.stdout
    assert "skipped 3 line(s) that are not prediction events" in first.stderr
    assert f"{events_file}:4 is not a prediction event" in first.stderr
    assert f"appended to {dead_letter}" in first.stderr
    assert sorted(stored_ids(client)) == sorted(ids(before + after))  # every event after the bad lines too

    entries = dead_entries(dead_letter)
    assert [entry["where"] for entry in entries] == [f"{events_file}:{n}" for n in (4, 5, 6)]
    assert entries[0]["line"].endswith(to_json_line(glued))  # the raw text: the glued event can be recovered
    assert "is not UTF-8" in entries[1]["reason"] and "caf\ufffd-1" in entries[1]["line"]
    assert "user_id: Extra inputs are not permitted" in entries[2]["reason"]
    assert '"user_id": "u-17"' in entries[2]["line"]
    assert all(entry["failed_at"] for entry in entries)
    position = read_position(events_file.with_name("events.jsonl.offset.json"))
    assert (position.offset, position.line) == (events_file.stat().st_size, 10)  # moved past them

    again = run_script("-m", "monitoring.shipper", "follow", str(events_file), "--once")
    assert again.returncode == 0 and "shipped 0 events" in again.stdout
    assert len(dead_entries(dead_letter)) == 3  # not dead-lettered twice
    assert len(stored_ids(client)) == 7


def test_ship_dead_letters_them_too_and_replay_ships_what_a_person_fixed(
    client: OpenSearch, store: OpenSearchServer, tmp_path: Path
) -> None:
    events_file, dead_letter = tmp_path / "events.jsonl", tmp_path / "dead-letter.jsonl"
    before, glued, after = write_broken_file(events_file)
    shipped = run_script("-m", "monitoring.shipper", "ship", str(events_file))
    assert shipped.returncode == 0, shipped.stderr
    assert "shipped 7 events" in shipped.stdout and "skipped 3 line(s)" in shipped.stderr
    assert len(stored_ids(client)) == 7

    # A person cuts the crash's tail off the first entry; the other two stay broken.
    entries = dead_entries(dead_letter)
    entries[0]["line"] = to_json_line(glued)
    dead_letter.write_text("".join(json.dumps(entry) + "\n" for entry in entries), encoding="utf-8")

    replayed = run_script("-m", "monitoring.shipper", "replay", str(dead_letter))
    assert replayed.returncode == 1  # something is still waiting for a person
    assert "shipped 1 events" in replayed.stdout
    assert f"2 dead-letter entries are still not prediction events, kept in {dead_letter}" in replayed.stderr
    assert f"{events_file}:5 is not a prediction event" in replayed.stderr  # where the line came from, still
    assert sorted(stored_ids(client)) == sorted(ids([*before, glued, *after]))
    kept = dead_entries(dead_letter)
    assert [entry["where"] for entry in kept] == [f"{events_file}:5", f"{events_file}:6"]
    assert kept[1]["line"] == entries[2]["line"]  # the text is kept exactly, for the next fix
    assert not dead_letter.with_name("dead-letter.jsonl.replaying").exists()

    # Fixed by hand: the unknown field removed. A replay now empties the dead letter.
    fixed = json.loads(kept[1]["line"])
    del fixed["user_id"]
    kept[1]["line"] = json.dumps(fixed)
    dead_letter.write_text("".join(json.dumps(entry) + "\n" for entry in kept[1:]), encoding="utf-8")
    assert replay(client, dead_letter, retry=FAST).shipped == 1
    assert not dead_letter.exists() and len(stored_ids(client)) == 9


def test_an_unknown_top_level_field_is_dead_lettered_not_stripped(client: OpenSearch, tmp_path: Path) -> None:
    events_file, dead_letter = tmp_path / "events.jsonl", tmp_path / "dead-letter.jsonl"
    odd = json.loads(to_json_line(make_event(1)))
    odd["debug"] = {"raw_logits": [0.1, 0.9]}
    write_events(events_file, [make_event(0)])
    append_bytes(events_file, (json.dumps(odd) + "\n").encode())
    write_events(events_file, [make_event(2)])

    result = follow_once(client, events_file, retry=FAST)
    assert result.shipped == 2 and [bad.where for bad in result.bad_lines] == [f"{events_file}:2"]
    assert sorted(stored_ids(client)) == sorted(ids([make_event(0), make_event(2)]))  # not shipped without it
    (entry,) = dead_entries(dead_letter)
    assert "debug: Extra inputs are not permitted" in entry["reason"] and json.loads(entry["line"]) == odd


# ----------------------------------------------------------------------------- truncation and rotation


def follow_in_thread(client: OpenSearch, events_file: Path) -> tuple[threading.Thread, threading.Event, list]:
    """`follow` polling every 50 ms in a thread; its exceptions are collected (there must be none)."""
    stop, errors = threading.Event(), []

    def run() -> None:
        try:
            follow(client, events_file, batch_size=7, retry=FAST, poll_s=0.05, stop=stop)
        except BaseException as error:  # noqa: BLE001 - the test asserts there was none
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, stop, errors


def wait_for(condition, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_copy_truncate_while_following_loses_nothing_and_doubles_nothing(client: OpenSearch, tmp_path: Path) -> None:
    events_file = tmp_path / "events.jsonl"
    state = events_file.with_name("events.jsonl.offset.json")
    first, unshipped, new = make_events(20), make_events(6, first=20), make_events(10, first=26)
    write_events(events_file, first)
    thread, stop, errors = follow_in_thread(client, events_file)
    try:
        wait_for(lambda: read_position(state).line == 20)
        # logrotate's copytruncate, while the follower polls: a copy, then the file cut to 0 bytes.
        # The 6 lines written just before may or may not have been read: both must end well.
        write_events(events_file, unshipped)
        shutil.copyfile(events_file, tmp_path / "events.jsonl.1")
        os.truncate(events_file, 0)
        write_events(events_file, new)
        wait_for(lambda: read_position(state).line == 10 and read_position(state).offset == events_file.stat().st_size)
        time.sleep(0.3)  # a few more polls: nothing more may be shipped
    finally:
        stop.set()
        thread.join()
    assert errors == [] and thread.is_alive() is False
    shipped = stored_ids(client)
    assert len(shipped) == 36 and set(shipped) == ids(first + unshipped + new)


def test_a_file_truncated_and_rewritten_past_the_offset_while_the_shipper_was_down(
    client: OpenSearch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events_file = tmp_path / "events.jsonl"
    old, new = make_events(20), make_events(40, first=100, request_id="after-truncate")
    write_events(events_file, old)
    assert follow_once(client, events_file, retry=FAST).shipped == 20
    os.truncate(events_file, 0)  # the shipper is down; the API goes on writing into the emptied file
    write_events(events_file, new)
    assert events_file.stat().st_size > read_position(events_file.with_name("events.jsonl.offset.json")).offset

    with caplog.at_level(logging.WARNING, logger="shipper"):
        assert follow_once(client, events_file, retry=FAST).shipped == 40  # all 40, none skipped
    assert "its first line changed" in caplog.text and "not beside it" in caplog.text  # said, not silent
    shipped = stored_ids(client)
    assert len(shipped) == 60 and set(shipped) == ids(old + new)


def test_rename_rotation_finishes_the_rotated_file_then_ships_the_new_one(client: OpenSearch, tmp_path: Path) -> None:
    events_file, dead_letter = tmp_path / "events.jsonl", tmp_path / "dead-letter.jsonl"
    shipped_before, unshipped, new = make_events(20), make_events(30, first=20), make_events(10, first=50)
    write_events(events_file, shipped_before)
    assert follow_once(client, events_file, retry=FAST).shipped == 20
    write_events(events_file, unshipped)
    append_bytes(events_file, to_json_line(make_event(99)).encode()[:50])  # its writer died mid-line
    events_file.rename(tmp_path / "events.jsonl.1")  # logrotate's default: rename, then a new file
    (tmp_path / "events.jsonl.2").write_text(to_json_line(make_event(77)) + "\n")  # an older rotation: not ours
    write_events(events_file, new)

    result = follow_once(client, events_file, batch_size=8, retry=FAST)
    assert result.shipped == 40  # the 30 of events.jsonl.1, then the 10 of the new file
    shipped = stored_ids(client)
    assert len(shipped) == 60 and set(shipped) == ids(shipped_before + unshipped + new)
    (entry,) = dead_entries(dead_letter)
    assert entry["where"] == f"{tmp_path / 'events.jsonl.1'}:51" and "unfinished last line" in entry["reason"]
    position = read_position(events_file.with_name("events.jsonl.offset.json"))
    assert (position.line, position.offset) == (10, events_file.stat().st_size)
    assert position.inode == events_file.stat().st_ino
    assert follow_once(client, events_file, retry=FAST).shipped == 0


def test_a_rotation_before_anything_was_shipped_is_seen_by_the_inode(client: OpenSearch, tmp_path: Path) -> None:
    events_file = tmp_path / "events.jsonl"
    events_file.touch()  # the API started; nothing predicted yet
    assert follow_once(client, events_file, retry=FAST).shipped == 0  # records which file this is
    write_events(events_file, make_events(5))
    events_file.rename(tmp_path / "events.jsonl.1")
    write_events(events_file, make_events(3, first=5))
    assert follow_once(client, events_file, retry=FAST).shipped == 8
    assert set(stored_ids(client)) == ids(make_events(8))


def test_an_old_state_file_without_identity_still_works(client: OpenSearch, tmp_path: Path) -> None:
    events_file = tmp_path / "events.jsonl"
    write_events(events_file, make_events(25))
    shipped_bytes = len("".join(to_json_line(e) + "\n" for e in make_events(20)).encode())
    state = events_file.with_name("events.jsonl.offset.json")
    state.write_text(json.dumps({"offset": shipped_bytes, "line": 20}) + "\n")  # as the shipper wrote it before

    assert follow_once(client, events_file, retry=FAST).shipped == 5  # the same file: size >= offset
    assert set(stored_ids(client)) == ids(make_events(5, first=20))
    position = read_position(state)
    assert position.line == 25 and position.inode == events_file.stat().st_ino and position.first_line_sha256
