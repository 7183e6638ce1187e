"""The monitoring report: built from real events, drift and queue, and drawn by a real headless Chromium."""

from __future__ import annotations

import io
import json
import re
from dataclasses import asdict
from pathlib import Path

import matplotlib.image
import pytest

from conftest import run_script
from errors import CourseError
from inference_onnx import ColaOnnxPredictor
from monitoring import drift, labelling_queue, monitoring_report
from monitoring.prediction_events import EventSink, build_event, new_request_id
from support import headless_browser
from support.shifted_text import drifting_stream

STREAM = 160
DRIFT_AT = 80


@pytest.fixture(scope="module")
def monitored(
    exported: dict, reference: drift.Reference, config: drift.MonitoringConfig, tmp_path_factory: pytest.TempPathFactory
) -> dict:
    """A stream that drifts halfway, logged as the API logs it, with its drift check and labelling queue."""
    folder = tmp_path_factory.mktemp("monitored")
    predictor = ColaOnnxPredictor(exported["export_dir"])
    sentences = list(drifting_stream(STREAM, DRIFT_AT, "language"))
    sink = EventSink(folder / "events.jsonl", stream=io.StringIO())
    events = []
    for start in range(0, STREAM, 16):
        batch = sentences[start : start + 16]
        request_id = new_request_id()
        results = predictor.predict_batch(batch)
        events += [
            build_event(
                r,
                t,
                request_id=request_id,
                index=i,
                source="api",
                model_config=predictor.config,
                latency_ms=1.0,
                log_text=True,
            )
            for i, (t, r) in enumerate(zip(batch, results, strict=True))
        ]
    sink.emit(events)
    report = drift.check_drift(events[DRIFT_AT:], reference, config)
    queue = labelling_queue.build_queue(events[DRIFT_AT:], reference, config)
    (folder / "drift.json").write_text(json.dumps(report.to_dict()))
    labelling_queue.write_queue_csv(queue, folder / "queue.csv")
    return {"folder": folder, "events": events, "drift": report.to_dict(), "queue": [asdict(q) for q in queue]}


@pytest.fixture(scope="module")
def page(monitored: dict) -> Path:
    return monitoring_report.write_report(
        monitored["folder"] / "report.html", monitored["events"], monitored["drift"], monitored["queue"]
    )


def test_the_page_is_one_self_contained_file(page: Path, monitored: dict) -> None:
    text = page.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), "the page must not load anything from a server"
    assert text.count('<img class="plot"') == 5  # four plots of the stream and one of the drift tests
    assert "Drift detected in the last 80 predictions" in text
    for result in monitored["drift"]["results"]:
        assert f"<td>{result['name']}</td>" in text
    top = monitored["queue"][0]["sentence"]
    assert top.replace("'", "&#x27;") in text


def need_a_browser() -> None:
    try:
        headless_browser.find_browser()
    except CourseError as error:
        pytest.skip(f"{error} (.ci/run installs it)")


def test_every_plot_draws_in_headless_chromium(page: Path, tmp_path: Path) -> None:
    need_a_browser()
    dom = headless_browser.dump_dom(page)
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert 'data-plots="5"' in body and 'data-plots-drawn="5"' in body, body
    assert dom.count('data-drawn="true"') == 5
    shot = headless_browser.screenshot(page, tmp_path / "report.png")
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[0] == 2200 and pixels.shape[1] == 1200
    assert pixels.std() > 0.05  # drawn plots, not a blank page


def test_a_broken_image_is_not_counted_as_drawn(page: Path, tmp_path: Path) -> None:
    need_a_browser()
    broken = tmp_path / "broken.html"
    broken.write_text(
        re.sub(r'src="data:image/png;base64,[^"]{40}', 'src="data:image/png;base64,AAAA', page.read_text(), count=1)
    )
    body = re.search(r"<body[^>]*>", headless_browser.dump_dom(broken)).group(0)
    assert 'data-plots="5"' in body and 'data-plots-drawn="4"' in body, body


def test_the_cli_writes_the_report_from_files(monitored: dict, tmp_path: Path) -> None:
    folder = monitored["folder"]
    result = run_script(
        "-m", "monitoring.monitoring_report",
        "--events",
        str(folder / "events.jsonl"),
        "--drift",
        str(folder / "drift.json"),
        "--queue",
        str(folder / "queue.csv"),
        "--out",
        str(tmp_path / "out.html"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"report: {tmp_path / 'out.html'}"
    assert (tmp_path / "out.html").read_text().count('<img class="plot"') == 5


def test_no_events_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CourseError, match="no prediction events to report on"):
        monitoring_report.render([])
    (tmp_path / "empty.jsonl").write_text("")
    result = run_script("-m", "monitoring.monitoring_report", "--events", str(tmp_path / "empty.jsonl"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no prediction events to report on" in result.stderr


def test_a_half_line_is_named_and_everything_else_reported(monitored: dict, tmp_path: Path) -> None:
    lines = (monitored["folder"] / "events.jsonl").read_text(encoding="utf-8").splitlines()
    events_file = tmp_path / "events.jsonl"
    # line 6: half an event (the API killed mid-write), then whole ones; the last line still being written
    events_file.write_text("\n".join(lines[:5] + [lines[5][:72]] + lines[5:]) + "\n" + lines[0][:40], encoding="utf-8")
    out = tmp_path / "report.html"
    result = run_script("-m", "monitoring.monitoring_report", "--events", str(events_file), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert f"skipped 1 line(s) that are not prediction events: {events_file}:6 is not" in result.stderr
    page = out.read_text()
    assert f"{STREAM} predictions from {monitored['events'][0].timestamp}" in page
    assert "<p class='skipped'>skipped 1 line(s) that are not prediction events" in page
