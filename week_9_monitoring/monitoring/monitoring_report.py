"""The monitoring report: one self-contained HTML page built from the logged prediction events.

    python -m monitoring.monitoring_report --events logs/events.jsonl --out reports/monitoring.html
    python -m monitoring.monitoring_report --events logs/events.jsonl --queue labelling/queue.csv --drift drift.json

It needs no server: open the file in a browser. The page shows predictions over time, the
label and score distributions, the model's confidence over the stream, the drift tests against
their thresholds (monitoring/drift.py), the top of the labelling queue (monitoring/labelling_queue.py), and
the promotion gate's result for the champion (monitoring/gate.py, from production/onnx/registered_model.json). It is the
embedded default of week 9's dashboards when no OpenSearch or Grafana runs.

The plots are PNGs drawn by matplotlib and embedded as data URIs, so the page is one file that
works offline. A small script at the end of the page marks each plot as drawn once the browser
has decoded it; the test reads that mark from headless Chromium.

A line of the events file that is not an event (half a line left by a crash) is skipped: the
page and stderr say how many and where, and everything else is reported.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import sys
from collections import Counter
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: render to memory, also off the main thread

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from errors import CourseError, run_cli  # noqa: E402
from monitoring.prediction_events import BadLine, PredictionEvent, describe_bad_lines, read_events  # noqa: E402
from settings import REGISTERED_RECORD  # noqa: E402

LABEL_COLOURS = {"acceptable": "#2a9d8f", "unacceptable": "#e76f51"}
QUEUE_ROWS_SHOWN = 15

# After the images load, count those the browser really decoded (naturalWidth > 0).
RENDER_CHECK = """
<script>
window.addEventListener("load", () => {
  const plots = Array.from(document.querySelectorAll("img.plot"));
  const drawn = plots.filter((img) => img.complete && img.naturalWidth > 0);
  drawn.forEach((img) => img.setAttribute("data-drawn", "true"));
  document.body.setAttribute("data-plots", String(plots.length));
  document.body.setAttribute("data-plots-drawn", String(drawn.length));
});
</script>
"""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2rem; } .subtitle { color: #555; margin-top: 0; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
figure { margin: 0; } img.plot { width: 100%; border: 1px solid #ddd; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; margin: 0.5rem 0 1.5rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.5rem; text-align: left; }
.drift { color: #b00020; font-weight: bold; } .ok { color: #2a7d2a; } .notrun { color: #777; }
.verdict { font-size: 1.2rem; padding: 0.6rem 1rem; border-radius: 6px; display: inline-block; }
.verdict.drift { background: #fde8e8; } .verdict.ok { background: #e8f6e8; }
"""


def figure_to_data_uri(figure: plt.Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def parse_time(event: PredictionEvent) -> datetime:
    return datetime.fromisoformat(event.timestamp.replace("Z", "+00:00"))


def plot_predictions_over_time(events: list[PredictionEvent], labels: list[str]) -> str:
    """Stacked bars: predictions per time bin, split by predicted label (about 30 bins over the span)."""
    times = np.array([parse_time(e).timestamp() for e in events])
    start, span = times.min(), max(times.max() - times.min(), 1.0)
    edges = np.linspace(start, start + span, 31)
    figure, axis = plt.subplots(figsize=(5.5, 3.2))
    bottom = np.zeros(30)
    for label in labels:
        counts, _ = np.histogram([t for t, e in zip(times, events, strict=True) if e.label == label], bins=edges)
        axis.bar(
            (edges[:-1] - start),
            counts,
            width=span / 30,
            bottom=bottom,
            align="edge",
            color=LABEL_COLOURS.get(label),
            label=label,
        )
        bottom += counts
    axis.set_xlabel("seconds since the first event")
    axis.set_ylabel("predictions")
    axis.set_title("Predictions over time")
    axis.legend(fontsize=8)
    return figure_to_data_uri(figure)


def plot_label_distribution(events: list[PredictionEvent], labels: list[str]) -> str:
    counts = Counter(e.label for e in events)
    figure, axis = plt.subplots(figsize=(5.5, 3.2))
    bars = axis.bar(labels, [counts[label] for label in labels], color=[LABEL_COLOURS.get(x) for x in labels])
    axis.bar_label(bars, labels=[f"{counts[x]} ({counts[x] / len(events):.0%})" for x in labels])
    axis.set_ylim(0, max(counts.values()) * 1.15)
    axis.set_ylabel("predictions")
    axis.set_title("Predicted labels")
    return figure_to_data_uri(figure)


def plot_score_histogram(events: list[PredictionEvent]) -> str:
    figure, axis = plt.subplots(figsize=(5.5, 3.2))
    axis.hist([e.score for e in events], bins=np.linspace(0.5, 1.0, 21), color="#457b9d", edgecolor="white")
    axis.set_xlabel("score (probability of the predicted label)")
    axis.set_ylabel("predictions")
    axis.set_title("Score distribution")
    return figure_to_data_uri(figure)


def plot_confidence_over_stream(events: list[PredictionEvent], checked: int | None = None) -> str:
    """Each prediction's score in arrival order, with a rolling mean: a drop is an early warning.

    `checked`: the number of latest predictions the drift job tested, shaded.
    """
    scores = np.array([e.score for e in events])
    window = max(5, len(scores) // 20)
    rolling = np.convolve(scores, np.ones(window) / window, mode="valid")
    figure, axis = plt.subplots(figsize=(5.5, 3.2))
    axis.scatter(np.arange(len(scores)), scores, s=6, alpha=0.4, color="#457b9d", label="one prediction")
    axis.plot(np.arange(window - 1, len(scores)), rolling, color="#1d3557", label=f"mean of {window}")
    if checked:
        axis.axvspan(len(scores) - checked, len(scores), color="#fde8e8", zorder=0, label="window drift checked")
    axis.set_xlabel("prediction number")
    axis.set_ylabel("score")
    axis.set_ylim(0.45, 1.02)
    axis.set_title("Model confidence over the stream")
    axis.legend(fontsize=8, loc="lower left")
    return figure_to_data_uri(figure)


def plot_drift_tests(drift: dict) -> str:
    """Each test that ran: -log10(p-value) against -log10(threshold); a bar past the line is drift."""
    ran = [r for r in drift["results"] if r.get("p_value") is not None]
    figure, axis = plt.subplots(figsize=(11, 0.5 + 0.45 * max(len(ran), 1)))
    names = [r["name"] for r in ran]
    values = [-np.log10(max(r["p_value"], 1e-300)) for r in ran]
    colours = ["#b00020" if r["drifted"] else "#2a9d8f" for r in ran]
    axis.barh(names, values, color=colours)
    for row, result in enumerate(ran):
        axis.plot([-np.log10(result["threshold"])] * 2, [row - 0.4, row + 0.4], color="black", linewidth=2)
    axis.invert_yaxis()
    axis.set_xlabel("-log10(p-value); black mark = threshold, past it = drift (red)")
    axis.set_title("Drift tests against their thresholds")
    return figure_to_data_uri(figure)


def number(value: float | None, spec: str = ".3g") -> str:
    return "" if value is None else format(value, spec)


def drift_table(drift: dict) -> str:
    header = ["test", "kind", "statistic", "p-value", "threshold", "verdict", "detail"]
    rows = []
    for result in drift["results"]:
        ran = result.get("statistic") is not None
        if not ran:
            verdict = '<span class="notrun">not run</span>'
        elif result["drifted"]:
            verdict = '<span class="drift">drift</span>'
        else:
            verdict = '<span class="ok">no drift</span>'
        cells = [
            html.escape(result["name"]),
            html.escape(result.get("kind", "")),
            number(result.get("statistic"), ".4g"),
            number(result.get("p_value")),
            number(result.get("threshold")),
            verdict,
            html.escape(str(result.get("detail", ""))),
        ]
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    head = "<tr>" + "".join(f"<th>{name}</th>" for name in header) + "</tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def queue_table(queue: list[dict]) -> str:
    header = "<tr><th>rank</th><th>sentence</th><th>predicted</th><th>score</th><th>reason</th><th>seen</th></tr>"
    rows = [
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(item.get(key, '')))}</td>"
            for key in ("rank", "sentence", "predicted_label", "score", "reason", "seen")
        )
        + "</tr>"
        for item in queue[:QUEUE_ROWS_SHOWN]
    ]
    return f"<table>{header}{''.join(rows)}</table>"


def gate_section(champion: dict) -> str:
    """The production record's gate summary: the verdict, each data check, each behaviour test's pass rate."""
    gate = champion.get("gate")
    version = html.escape(str(champion.get("model_version")))
    if not isinstance(gate, dict):
        return f"<h2>Promotion gate</h2><p class='notrun'>production model {version} was promoted without a gate</p>"
    verdict, text = ("ok", "passed") if gate.get("passed") else ("drift", "FAILED (promoted with --force)")
    rows = [
        f"<tr><td>data: {html.escape(name)}</td><td></td><td></td>"
        f"<td>{'<span class=ok>pass</span>' if ok else '<span class=drift>fail</span>'}</td></tr>"
        for name, ok in (gate.get("data") or {}).items()
    ]
    for kind, result in (gate.get("behaviour") or {}).items():
        mark = "<span class=ok>pass</span>" if result.get("passed") else "<span class=drift>fail</span>"
        rows.append(
            f"<tr><td>behaviour: {html.escape(kind)}</td><td>{number(result.get('pass_rate'), '.1%')}</td>"
            f"<td>{number(result.get('threshold'), '.0%')}</td><td>{mark}</td></tr>"
        )
    head = "<tr><th>check</th><th>pass rate</th><th>threshold</th><th>verdict</th></tr>"
    return (
        f"<h2>Promotion gate</h2><p class='gate verdict {verdict}'>Production model {version}: gate {text}</p>"
        f"<p>checked {html.escape(str(gate.get('checked_at')))}; "
        f"every case in {html.escape(str(gate.get('report')))}</p>"
        f"<table class='gate'>{head}{''.join(rows)}</table>"
    )


def render(
    events: list[PredictionEvent],
    drift: dict | None = None,
    queue: list[dict] | None = None,
    title: str = "CoLA classifier: monitoring report",
    skipped: str | None = None,
    champion: dict | None = None,
) -> str:
    """The report page as one HTML string (plots embedded); `skipped` names lines of the file that were not events.

    `champion`: the champion's record (production/onnx/registered_model.json), whose gate result the page shows."""
    if not events:
        raise CourseError("no prediction events to report on: send some predictions to the API first")
    labels = sorted({e.label for e in events} | set(LABEL_COLOURS))
    first, last = events[0].timestamp, events[-1].timestamp
    versions = ", ".join(sorted({e.model_version for e in events}))
    plots = {
        "predictions-over-time": plot_predictions_over_time(events, labels),
        "label-distribution": plot_label_distribution(events, labels),
        "score-histogram": plot_score_histogram(events),
        "confidence-over-stream": plot_confidence_over_stream(events, drift.get("window_size") if drift else None),
    }
    figures = "".join(
        f'<figure><img class="plot" data-plot="{name}" alt="{name}" src="{uri}"></figure>'
        for name, uri in plots.items()
    )
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='subtitle'>{len(events)} predictions from {first} to {last}; model {html.escape(versions)}</p>",
    ]
    if skipped:
        parts.append(f"<p class='skipped'>{html.escape(skipped)}</p>")
    if drift is not None:
        verdict = "drift" if drift["drifted"] else "ok"
        text = "Drift detected" if drift["drifted"] else "No drift detected"
        parts.append(f"<p class='verdict {verdict}'>{text} in the last {drift.get('window_size', '?')} predictions</p>")
    parts.append(f"<h2>Predictions</h2><div class='grid'>{figures}</div>")
    if drift is not None:
        drift_plot = plot_drift_tests(drift)
        parts.append("<h2>Drift tests</h2>")
        parts.append(
            f'<figure><img class="plot" data-plot="drift-tests" alt="drift tests" src="{drift_plot}"></figure>'
        )
        parts.append(drift_table(drift))
    if queue is not None:
        parts.append(f"<h2>Labelling queue (top {min(len(queue), QUEUE_ROWS_SHOWN)} of {len(queue)})</h2>")
        parts.append(queue_table(queue))
    if champion is not None:
        parts.append(gate_section(champion))
    parts.append(RENDER_CHECK + "</body></html>")
    return "\n".join(parts)


def write_report(
    path: Path,
    events: list[PredictionEvent],
    drift: dict | None = None,
    queue: list[dict] | None = None,
    skipped: str | None = None,
    champion: dict | None = None,
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(events, drift, queue, skipped=skipped, champion=champion), encoding="utf-8")
    return path


def read_champion(record: Path) -> dict | None:
    """The champion's record (registered_model.json in its cached copy), for its gate result; None (no gate
    section) when there is no readable one."""
    try:
        champion = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return champion if isinstance(champion, dict) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--events", type=Path, required=True, help="the API's EVENTS_FILE (JSON lines)")
    parser.add_argument(
        "--drift", type=Path, help="a drift result written by `python -m monitoring.drift check --json FILE`"
    )
    parser.add_argument("--queue", type=Path, help="a labelling queue CSV written by monitoring/labelling_queue.py")
    parser.add_argument("--out", type=Path, default=Path("reports/monitoring.html"))
    parser.add_argument(
        "--production",
        type=Path,
        default=Path("production/onnx"),
        help="the champion's cached copy (monitoring/registry.py fetch) whose gate result to show",
    )
    args = parser.parse_args()
    bad_lines: list[BadLine] = []
    events = list(read_events(args.events, bad_lines))
    skipped = describe_bad_lines(bad_lines) if bad_lines else None
    if skipped:
        print(skipped, file=sys.stderr)
    drift = json.loads(args.drift.read_text()) if args.drift else None
    queue = None
    if args.queue:
        from monitoring.labelling_queue import read_queue_csv

        queue = [asdict(item) for item in read_queue_csv(args.queue)]
    champion = read_champion(args.production / REGISTERED_RECORD)
    path = write_report(args.out, events, drift, queue, skipped, champion)
    print(f"report: {path.resolve()}")


if __name__ == "__main__":
    run_cli(main)
