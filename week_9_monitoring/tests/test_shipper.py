"""monitoring/shipper.py, event_store.py and event_index.py against a real OpenSearch-API server (osmem-server)."""

from __future__ import annotations

import base64
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from opensearchpy import OpenSearch

from conftest import run_script
from errors import CourseError
from helpers.opensearch_server import FlakyGateway, OpenSearchServer, point_clis_at, stored_ids
from helpers.sample_events import make_event, make_events, write_events
from monitoring.event_index import INDEX_PATTERN, MAPPING, TEMPLATE_NAME, ensure_template, index_name
from monitoring.event_store import RetryPolicy, StoreUnavailable, connect, fetch_events, ship_batch, ship_events
from monitoring.prediction_events import PredictionEvent, to_json_line
from monitoring.shipper import follow, follow_once, read_position, replay
from support.local_server import free_port

FAST = RetryPolicy(retries=2, first_delay_s=0.05)  # tests wait milliseconds, not the default seconds


@pytest.fixture
def store() -> Iterator[OpenSearchServer]:
    with OpenSearchServer() as server:
        yield server


@pytest.fixture
def client(store: OpenSearchServer) -> OpenSearch:
    return connect(store.url)


def label_counts(client: OpenSearch) -> dict[str, int]:
    client.indices.refresh(index=INDEX_PATTERN)
    body = {"size": 0, "aggs": {"labels": {"terms": {"field": "label"}}}}
    buckets = client.search(index=INDEX_PATTERN, body=body)["aggregations"]["labels"]["buckets"]
    return {bucket["key"]: bucket["doc_count"] for bucket in buckets}


# ----------------------------------------------------------------------------- the index


def test_the_template_maps_every_event_field_with_an_explicit_type(client: OpenSearch) -> None:
    assert set(MAPPING["properties"]) == set(PredictionEvent.model_fields)
    assert ensure_template(client) is True
    assert ensure_template(client) is False  # the same version: not rewritten
    template = client.indices.get_index_template(name=TEMPLATE_NAME)["index_templates"][0]["index_template"]
    assert template["index_patterns"] == [INDEX_PATTERN]

    result = ship_events(client, [make_event(1)], retry=FAST)
    assert result.shipped == 1 and not result.rejected
    mapping = client.indices.get_mapping(index="predictions-2026.11.23")["predictions-2026.11.23"]["mappings"]
    types = {name: spec.get("type") for name, spec in mapping["properties"].items()}
    assert types == {
        "timestamp": "date",
        **dict.fromkeys(
            ["event_id", "request_id", "source", "model_version", "data_version", "label", "text_sha256"], "keyword"
        ),
        **dict.fromkeys(["score", "latency_ms"], "float"),
        "probabilities": None,  # an object: its fields are typed below
        **dict.fromkeys(["text_length", "word_count"], "integer"),
        "text": "text",
    }
    assert mapping["properties"]["probabilities"]["properties"] == {
        "unacceptable": {"type": "float"},
        "acceptable": {"type": "float"},
    }
    assert mapping["properties"]["text"]["fields"]["keyword"]["type"] == "keyword"
    assert mapping["dynamic"] == "strict"


def test_daily_index_names_come_from_the_event_time_in_utc() -> None:
    assert index_name("2026-11-23T15:04:05.123Z") == "predictions-2026.11.23"
    assert index_name("2026-11-23T23:59:59.999Z") == "predictions-2026.11.23"
    assert index_name("2026-11-24T00:30:00.000+02:00") == "predictions-2026.11.23"  # still the 23rd in UTC
    assert index_name("2026-01-05T00:00:00") == "predictions-2026.01.05"  # no zone: UTC, as OpenSearch reads it
    with pytest.raises(CourseError, match="'yesterday' is not ISO 8601"):
        index_name("yesterday")


# ----------------------------------------------------------------------------- shipping and reading back


def test_shipped_events_aggregate_to_what_was_sent(client: OpenSearch) -> None:
    events = make_events(150)  # 22:00 to 00:29: two days, two indices
    result = ship_events(client, events, batch_size=40, retry=FAST)
    assert result.shipped == 150 and result.rejected == []

    assert label_counts(client) == dict(Counter(event.label for event in events))
    body = {"size": 0, "aggs": {"scores": {"histogram": {"field": "score", "interval": 0.1}}}}
    buckets = client.search(index=INDEX_PATTERN, body=body)["aggregations"]["scores"]["buckets"]
    got = {round(bucket["key"], 1): bucket["doc_count"] for bucket in buckets}
    assert got == dict(Counter(round(math.floor(event.score / 0.1) * 0.1, 1) for event in events))

    per_day = Counter(index_name(event.timestamp) for event in events)
    assert per_day == {"predictions-2026.11.23": 120, "predictions-2026.11.24": 30}
    for index, count in per_day.items():
        assert client.count(index=index)["count"] == count


def test_fetch_events_reads_a_time_window_back_in_time_order(client: OpenSearch) -> None:
    assert fetch_events(client) == []  # no index yet: nothing, not an error
    events = make_events(150)
    ship_events(client, reversed(events), retry=FAST)  # the order of shipping does not matter
    client.indices.refresh(index=INDEX_PATTERN)

    assert fetch_events(client, page_size=64) == events  # every field round-trips, oldest first
    midnight = datetime(2026, 11, 24, tzinfo=UTC)
    assert fetch_events(client, since=midnight) == events[120:]
    assert fetch_events(client, since="2026-11-23T23:00:00Z", until=midnight) == events[60:120]
    assert fetch_events(client, size=5) == events[-5:]  # the newest five


def test_shipping_the_same_events_again_does_not_duplicate(client: OpenSearch) -> None:
    events = make_events(30)
    for _ in range(3):  # a replay, a restarted shipper, a retried batch
        assert ship_events(client, events, batch_size=7, retry=FAST).shipped == 30
    ids = stored_ids(client)
    assert len(ids) == 30 and set(ids) == {event.event_id for event in events}


# ----------------------------------------------------------------------------- refusals and the dead-letter file


def test_a_write_blocked_index_is_reported_dead_lettered_and_replayed_after_the_fix(
    client: OpenSearch, tmp_path: Path
) -> None:
    dead_letter = tmp_path / "dead-letter.jsonl"
    ship_events(client, make_events(10), retry=FAST)
    # What OpenSearch does itself when a disk fills up (flood-stage watermark): writes are blocked.
    client.indices.put_settings(index="predictions-2026.11.23", body={"index.blocks.write": True})

    burst = make_events(150, first=10, request_id="burst")  # 110 to the blocked day, 40 to the next
    result = ship_events(client, burst, dead_letter=dead_letter, batch_size=50, retry=FAST)
    assert result.shipped == 40 and len(result.rejected) == 110
    assert "403 cluster_block_exception" in result.reasons()
    entries = [json.loads(line) for line in dead_letter.read_text().splitlines()]
    assert [entry["event"]["event_id"] for entry in entries] == [e.event_id for e in burst[:110]]
    assert {entry["status"] for entry in entries} == {403}
    assert "blocked" in entries[0]["reason"] and entries[0]["index"] == "predictions-2026.11.23"

    client.indices.put_settings(index="predictions-2026.11.23", body={"index.blocks.write": False})
    replayed = replay(client, dead_letter, retry=FAST)
    assert replayed.shipped == 110 and replayed.rejected == []
    assert not dead_letter.exists() and not dead_letter.with_name("dead-letter.jsonl.replaying").exists()
    ids = stored_ids(client)
    assert len(ids) == 160 and set(ids) == {e.event_id for e in make_events(10) + burst}  # none lost, none twice


def test_an_event_with_a_field_the_mapping_does_not_know_is_refused_not_guessed(
    client: OpenSearch, tmp_path: Path
) -> None:
    dead_letter = tmp_path / "dead-letter.jsonl"
    odd = make_event(3, probabilities={"unacceptable": 0.2, "acceptable": 0.7, "maybe": 0.1})  # a third label
    result = ship_events(client, [make_event(1), odd, make_event(2)], dead_letter=dead_letter, retry=FAST)
    assert result.shipped == 2
    assert [r.document["event_id"] for r in result.rejected] == [odd.event_id]
    assert result.rejected[0].status == 400 and "strict_dynamic_mapping_exception" in result.rejected[0].reason
    (entry,) = [json.loads(line) for line in dead_letter.read_text().splitlines()]
    assert entry["event"]["probabilities"]["maybe"] == 0.1
    assert sorted(stored_ids(client)) == sorted([make_event(1).event_id, make_event(2).event_id])

    # Still refused on replay: it goes back to the dead-letter file, not away.
    again = replay(client, dead_letter, retry=FAST)
    assert again.shipped == 0 and len(again.rejected) == 1
    assert len(dead_letter.read_text().splitlines()) == 1


# ----------------------------------------------------------------------------- transient failures


def test_503_and_429_answers_are_retried_until_the_store_takes_the_batch(store: OpenSearchServer) -> None:
    with FlakyGateway(store.url, failures=[503, 429, 502]) as gateway:
        result = ship_batch(connect(gateway.url), make_events(10), retry=RetryPolicy(retries=3, first_delay_s=0.01))
    assert result.shipped == 10 and result.rejected == []
    assert gateway.failed == [503, 429, 502] and gateway.forwarded >= 2  # the template, then the bulk
    assert len(stored_ids(connect(store.url))) == 10


def test_a_store_that_keeps_answering_503_stops_the_shipper_with_the_reason(store: OpenSearchServer) -> None:
    with FlakyGateway(store.url, failures=[], always=503) as gateway:
        with pytest.raises(StoreUnavailable, match=r"did not answer after 3 tries \(503 gateway\)"):
            ship_events(connect(gateway.url), make_events(5), retry=FAST)
    assert len(gateway.failed) == 3


def test_a_refused_connection_is_retried_until_the_store_is_back(store: OpenSearchServer) -> None:
    client = connect(store.url)
    store.stop()
    restart = threading.Timer(0.2, store.start)
    restart.start()
    try:
        result = ship_events(client, make_events(20), retry=RetryPolicy(retries=8, first_delay_s=0.05))
    finally:
        restart.join()
    assert result.shipped == 20
    assert len(stored_ids(client)) == 20


# ----------------------------------------------------------------------------- following the events file


def test_follow_once_ships_only_new_complete_lines(client: OpenSearch, tmp_path: Path) -> None:
    events_file = tmp_path / "events.jsonl"
    events = make_events(8)
    write_events(events_file, events[:5])
    half = to_json_line(events[5])
    with open(events_file, "a", encoding="utf-8") as handle:
        handle.write(half[:40])  # the API is in the middle of writing this line

    assert follow_once(client, events_file, retry=FAST).shipped == 5
    state = events_file.with_name("events.jsonl.offset.json")
    assert read_position(state).line == 5
    assert read_position(state).offset == len("".join(to_json_line(e) + "\n" for e in events[:5]).encode())

    with open(events_file, "a", encoding="utf-8") as handle:
        handle.write(half[40:] + "\n")
    write_events(events_file, events[6:])
    assert follow_once(client, events_file, retry=FAST).shipped == 3  # not the first five again
    assert follow_once(client, events_file, retry=FAST).shipped == 0
    assert sorted(stored_ids(client)) == sorted(event.event_id for event in events)


def test_stopping_the_store_mid_burst_loses_nothing_and_ships_each_event_once(
    store: OpenSearchServer, tmp_path: Path
) -> None:
    """Every event is acknowledged exactly once across the two lifetimes of the (in-memory) store."""
    events_file = tmp_path / "events.jsonl"
    burst, more = make_events(60), make_events(25, first=60, request_id="during-outage")
    write_events(events_file, burst)
    client = connect(store.url)
    first_lifetime: list[str] = []
    batches = []

    def on_batch(result) -> None:  # runs in the follower, between two batches
        batches.append(result.shipped)
        if len(batches) == 2:
            first_lifetime.extend(stored_ids(client))
            store.stop()  # its 20 documents are gone with it
            write_events(events_file, more)  # the API keeps writing while the store is down
            threading.Timer(0.3, store.start).start()

    stop = threading.Event()
    options = dict(batch_size=10, retry=RetryPolicy(retries=1, first_delay_s=0.02), poll_s=0.05, on_batch=on_batch)
    follower = threading.Thread(target=follow, args=(client, events_file), kwargs=dict(stop=stop, **options))
    follower.start()
    state = events_file.with_name("events.jsonl.offset.json")
    deadline = time.monotonic() + 60
    try:
        while read_position(state).line < 85 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        follower.join()

    assert read_position(state).line == 85 and read_position(state).offset == events_file.stat().st_size
    second_lifetime = stored_ids(client)
    assert len(first_lifetime) == 20 and len(second_lifetime) == 65
    assert set(first_lifetime).isdisjoint(second_lifetime)
    assert set(first_lifetime) | set(second_lifetime) == {event.event_id for event in burst + more}


# ----------------------------------------------------------------------------- the command line


@pytest.fixture
def store_env(store: OpenSearchServer, monkeypatch: pytest.MonkeyPatch) -> OpenSearchServer:
    return point_clis_at(store, monkeypatch)


def test_cli_ship_and_follow_once(store_env: OpenSearchServer, tmp_path: Path) -> None:
    events_file = tmp_path / "events.jsonl"
    write_events(events_file, make_events(12))
    shipped = run_script("-m", "monitoring.shipper", "ship", str(events_file))
    assert shipped.returncode == 0, shipped.stderr
    assert f"shipped 12 events to {store_env.url}" in shipped.stdout

    first = run_script("-m", "monitoring.shipper", "follow", str(events_file), "--once")
    write_events(events_file, make_events(3, first=12))
    second = run_script("-m", "monitoring.shipper", "follow", str(events_file), "--once")
    assert "shipped 12 events" in first.stdout and "shipped 3 events" in second.stdout
    assert len(stored_ids(connect(store_env.url))) == 15


def test_cli_refused_events_exit_1_and_name_the_dead_letter_file(store_env: OpenSearchServer, tmp_path: Path) -> None:
    events_file = tmp_path / "events.jsonl"
    write_events(events_file, [make_event(1), make_event(2, probabilities={"acceptable": 0.9, "maybe": 0.1})])
    shipped = run_script("-m", "monitoring.shipper", "ship", str(events_file))
    assert shipped.returncode == 1
    assert "shipped 1 events" in shipped.stdout
    assert f"1 events refused by OpenSearch, appended to {tmp_path / 'dead-letter.jsonl'}" in shipped.stderr
    assert "strict_dynamic_mapping_exception" in shipped.stderr
    assert len((tmp_path / "dead-letter.jsonl").read_text().splitlines()) == 1


def one_line_error(result) -> str:
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_cli_unreachable_store_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events_file = tmp_path / "events.jsonl"
    write_events(events_file, make_events(3))
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("OPENSEARCH_URL", url)
    error = one_line_error(run_script("-m", "monitoring.shipper", "ship", str(events_file), "--retries", "1"))
    assert f"OpenSearch at {url} did not answer after 2 tries (connection refused)" in error
    assert "set OPENSEARCH_URL" in error


def test_cli_missing_files_are_one_line(store_env: OpenSearchServer, tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    assert f"cannot read events from {missing}" in one_line_error(
        run_script("-m", "monitoring.shipper", "ship", str(missing))
    )
    assert f"no dead-letter file {missing}" in one_line_error(
        run_script("-m", "monitoring.shipper", "replay", str(missing))
    )
    # A line that is not an event is dead-lettered, not fatal: tests/test_shipper_faults.py.


def test_credentials_come_from_the_environment_and_a_refused_login_is_not_retried(
    store: OpenSearchServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENSEARCH_USER", "shipper")
    monkeypatch.delenv("OPENSEARCH_PASSWORD", raising=False)
    with pytest.raises(CourseError, match="set both OPENSEARCH_USER and OPENSEARCH_PASSWORD"):
        connect(store.url)
    monkeypatch.setenv("OPENSEARCH_PASSWORD", "secret")
    with FlakyGateway(store.url, failures=[]) as gateway:
        monkeypatch.setenv("OPENSEARCH_URL", gateway.url)
        assert ship_events(connect(), make_events(2), retry=FAST).shipped == 2
    assert set(gateway.authorizations) == {"Basic " + base64.b64encode(b"shipper:secret").decode()}

    with FlakyGateway(store.url, failures=[], always=401) as gateway:
        with pytest.raises(
            CourseError, match=r"refused the login \(401\): check OPENSEARCH_USER and OPENSEARCH_PASSWORD"
        ):
            ship_events(connect(gateway.url), make_events(2), retry=FAST)
    assert gateway.failed == [401]  # a wrong password does not get better by retrying
