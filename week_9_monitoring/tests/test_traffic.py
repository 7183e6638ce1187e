"""support/traffic.py: the stream reaches a running API, one logged event per sentence, in order."""

from __future__ import annotations

from pathlib import Path

from conftest import run_script
from monitoring.prediction_events import read_events
from support.local_server import free_port, local_server
from support.shifted_text import drifting_stream


def test_traffic_sends_the_stream_and_the_api_logs_each_sentence(exported: dict, tmp_path: Path) -> None:
    events_file = tmp_path / "logs" / "events.jsonl"
    environment = {"EVENTS_FILE": str(events_file), "LOG_TEXT": "true"}
    with local_server(exported["export_dir"], env=environment) as url:
        result = run_script(
            "-m", "support.traffic", "--url", url, "--sentences", "60", "--drift-at", "30", "--kind", "language"
        )
    assert result.returncode == 0, result.stderr
    assert f"sent 60 sentences to {url}: 30 familiar, then 30 language" in result.stdout
    events = list(read_events(events_file))
    assert [event.text for event in events] == list(drifting_stream(60, 30, "language"))


def test_traffic_without_an_api_is_one_line_naming_how_to_start_it() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run_script("-m", "support.traffic", "--url", url, "--sentences", "5", "--drift-at", "2")
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: cannot reach the API at {url} (ConnectError): start it first")
    assert "Traceback" not in result.stderr


def test_a_drift_point_outside_the_stream_is_refused() -> None:
    result = run_script("-m", "support.traffic", "--sentences", "10", "--drift-at", "20")
    assert result.returncode == 2
    assert "drift_at=20 is outside the stream of 10 sentences" in result.stderr
