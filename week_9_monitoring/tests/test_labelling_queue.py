"""The labelling queue: uncertain and outlying sentences first, duplicates counted once, a CSV that round-trips."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from conftest import run_script
from errors import CourseError
from helpers.prediction_windows import predict_events, write_events
from inference_onnx import ColaOnnxPredictor
from monitoring import drift, drift_reference
from monitoring.labelling_queue import (
    CSV_COLUMNS,
    QueueItem,
    build_queue,
    normalise,
    read_queue_csv,
    write_queue_csv,
)
from monitoring.prediction_events import PredictionEvent, build_event, to_json_line
from support import shifted_text


def event(text: str | None, p_acceptable: float, index: int) -> PredictionEvent:
    """An event with chosen probabilities, so a test decides how sure the model was."""
    probabilities = {"unacceptable": 1 - p_acceptable, "acceptable": p_acceptable}
    label = max(probabilities, key=probabilities.get)
    result = {"label": label, "score": probabilities[label], "probabilities": probabilities}
    return build_event(
        result,
        text or "hidden",
        request_id="queue",
        index=index,
        source="api",
        model_config={"model_version": "v1-test"},
        latency_ms=1.0,
        log_text=text is not None,
    )


@pytest.fixture(scope="module")
def mixed_events() -> dict:
    """50 familiar sentences predicted confidently, one predicted 51/49, three French ones predicted confidently."""
    holdout = [row["sentence"] for row in shifted_text.validation_half("holdout")]
    french = shifted_text.other_language(3, seed=0)
    familiar = [event(text, 0.97 if i % 2 else 0.03, i) for i, text in enumerate(holdout[:50])]
    uncertain = event(holdout[50], 0.51, 50)
    outlying = [event(text, 0.03, 51 + i) for i, text in enumerate(french)]
    return {
        "events": familiar[:20] + [uncertain] + familiar[20:] + outlying,
        "uncertain": holdout[50],
        "french": french,
    }


def test_the_most_uncertain_and_the_most_outlying_come_first(
    mixed_events: dict, reference: drift.Reference, config: drift.MonitoringConfig
) -> None:
    queue = build_queue(mixed_events["events"], reference, config)
    assert [item.rank for item in queue] == list(range(1, 55))
    assert [item.priority for item in queue] == sorted((item.priority for item in queue), reverse=True)
    top = {item.sentence: item for item in queue[:4]}
    assert set(top) == {mixed_events["uncertain"], *mixed_events["french"]}
    assert top[mixed_events["uncertain"]].reason == "uncertain: margin 0.02"
    for sentence in mixed_events["french"]:
        assert top[sentence].reason.startswith("outlier: 100% words unseen in training")
        assert top[sentence].predicted_label == "unacceptable" and top[sentence].score == 0.97
    assert queue[-1].reason == "confident and familiar: margin 0.94"
    assert all(item.label == "" and item.seen == 1 for item in queue)


def test_the_weights_come_from_the_config(
    mixed_events: dict, reference: drift.Reference, config: drift.MonitoringConfig
) -> None:
    only_uncertainty = drift_reference.QueueWeights(uncertainty=1.0, oov=0.0, domain=0.0)
    settings = config.labelling_queue.model_copy(update={"weights": only_uncertainty})
    queue = build_queue(mixed_events["events"], reference, config.model_copy(update={"labelling_queue": settings}))
    assert queue[0].sentence == mixed_events["uncertain"] and queue[0].priority == 0.98
    # the French sentences are now as low as any other confident prediction
    assert {item.priority for item in queue[1:]} == {0.06}


def test_duplicates_collapse_into_one_row_that_counts_them(
    mixed_events: dict, reference: drift.Reference, config: drift.MonitoringConfig
) -> None:
    first = mixed_events["events"][:10]
    repeats = [
        event(first[3].text.upper().replace(" ", "  "), 0.6, 100),  # other case and spacing: the same sentence
        event(first[3].text + "  ", 0.6, 101),
        event(None, 0.5, 102),  # no text: cannot be labelled, so not in the queue
    ]
    queue = build_queue(first + repeats, reference, config)
    assert len(queue) == 10
    (row,) = [item for item in queue if normalise(item.sentence) == normalise(first[3].text)]
    assert row.seen == 3 and row.sentence == first[3].text  # kept as first seen, with its prediction
    assert sum(item.seen for item in queue) == 12
    assert normalise("  The   Dog\tsleeps. ") == "the dog sleeps."


def test_events_without_text_give_a_clear_error(reference: drift.Reference, config: drift.MonitoringConfig) -> None:
    with pytest.raises(CourseError, match="LOG_TEXT=true"):
        build_queue([event(None, 0.5, i) for i in range(10)], reference, config)


def test_csv_round_trips_exactly(tmp_path: Path) -> None:
    items = [
        QueueItem(
            1, 'She said "hi", then left.', "acceptable", 0.1 + 0.2, 0.7071067811865476, "uncertain: margin 0.40", 2
        ),
        QueueItem(2, "Est-ce que l'école ferme ?  ", "unacceptable", 0.93, 0.5, "outlier: 100% words unseen", 1, "0"),
        QueueItem(3, "two\nlines, one sentence", "acceptable", 1.0, 0.0, "confident and familiar: margin 1.00", 7, ""),
    ]
    path = write_queue_csv(items, tmp_path / "labelling" / "queue.csv")
    assert path.read_text(encoding="utf-8").splitlines()[0] == ",".join(CSV_COLUMNS)
    assert read_queue_csv(path) == items


def test_a_csv_without_the_queue_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("sentence,label\nThe dog sleeps.,1\n", encoding="utf-8")
    with pytest.raises(CourseError, match="lacks the column"):
        read_queue_csv(path)


def test_cli_writes_the_top_of_the_queue_of_a_drifting_stream(
    exported: dict, reference: drift.Reference, tmp_path: Path
) -> None:
    predictor = ColaOnnxPredictor(exported["export_dir"])
    sentences = list(shifted_text.drifting_stream(120, 60, "domain", seed=2))
    events = predict_events(predictor, sentences) + predict_events(predictor, sentences[:5], log_text=False)
    events_file = write_events(tmp_path / "events.jsonl", events)
    reference_file = drift.save_reference(reference, tmp_path / "reference.json")
    out = tmp_path / "labelling" / "queue.csv"
    result = run_script(
        "-m", "monitoring.labelling_queue",
        "--events",
        str(events_file),
        "--out",
        str(out),
        "--top",
        "20",
        "--reference",
        str(reference_file),
    )
    assert result.returncode == 0, result.stderr
    assert "5 events carry no text and cannot be labelled (set LOG_TEXT=true)" in result.stderr
    queue = read_queue_csv(out)
    assert [item.rank for item in queue] == list(range(1, 21))
    with open(out, encoding="utf-8", newline="") as handle:
        assert all(row["label"] == "" for row in csv.DictReader(handle))
    software = set(sentences[60:])
    # measured: the software sentences hold 16 of the top 20 (the rest: familiar sentences with margins of 0.00-0.10)
    assert sum(item.sentence in software for item in queue) >= 12
    assert all("outlier" in item.reason for item in queue if item.sentence in software)


# ----------------------------------------------------------------------------- spreadsheets and faults (issue 18)

FORMULAS = [
    '=HYPERLINK("http://evil.example","click")',
    "+33 6 12 34 56 78",
    "-2+3",
    "@SUM(A1:A9)",
    "\tA tab first.",
    "\rA carriage return first.",
    "'Tis a quote, really.",  # a real leading quote: kept
    "'=not escaped by the user",  # a quote then a formula character: kept as written
    "''",
    "'",
    "A plain sentence.",
]


def test_formula_cells_are_escaped_on_write_and_read_back_exactly(tmp_path: Path) -> None:
    items = [
        QueueItem(i, sentence, "acceptable", 0.5, 0.5, "uncertain: margin 0.00", 1)
        for i, sentence in enumerate(FORMULAS, 1)
    ]
    path = write_queue_csv(items, tmp_path / "queue.csv")
    with open(path, encoding="utf-8", newline="") as handle:
        cells = [row["sentence"] for row in csv.DictReader(handle)]
    # What a spreadsheet sees: no cell starts a formula; the dangerous ones carry OWASP's quote.
    assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert cells[:6] == ["'" + sentence for sentence in FORMULAS[:6]]
    assert cells[6] == "'Tis a quote, really." and cells[7] == "''=not escaped by the user"
    assert cells[8:] == ["'''", "'", "A plain sentence."]  # a lone quote is not ambiguous: kept
    assert read_queue_csv(path) == items
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary file, renamed over


def test_a_queue_saved_with_a_bom_reads_and_a_duplicated_header_is_refused(tmp_path: Path) -> None:
    items = [QueueItem(1, "The dog sleeps.", "acceptable", 0.5, 0.5, "uncertain: margin 0.00", 1, "1")]
    path = write_queue_csv(items, tmp_path / "queue.csv")
    path.write_bytes("\ufeff".encode() + path.read_bytes())  # Excel's "CSV UTF-8"
    assert read_queue_csv(path) == items
    text = path.read_text(encoding="utf-8-sig").replace(",label\n", ",label,label\n", 1).replace(",1\n", ",1,\n")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CourseError, match=r"names a column twice \(label in columns 8 and 9\)"):
        read_queue_csv(path)


def test_cli_skips_a_broken_line_and_never_overwrites_labels(
    exported: dict, reference: drift.Reference, tmp_path: Path
) -> None:
    predictor = ColaOnnxPredictor(exported["export_dir"])
    events = predict_events(predictor, list(shifted_text.drifting_stream(80, 40, "domain", seed=5)))
    events_file = tmp_path / "events.jsonl"
    lines = [to_json_line(e) for e in events]
    # line 11: half an event, then whole ones (the API killed mid-write); the last line is still being written
    events_file.write_text("\n".join(lines[:10] + [lines[10][:72]] + lines[10:]) + "\n" + lines[0][:50])
    reference_file = drift.save_reference(reference, tmp_path / "reference.json")
    out = tmp_path / "queue.csv"
    args = ["-m", "monitoring.labelling_queue", "--events", str(events_file), "--reference", str(reference_file)]

    first = run_script(*args, "--out", str(out), "--top", "20")
    assert first.returncode == 0, first.stderr
    assert f"{out}: 20 sentences to label (they were sent 20 times in 80 events)" in first.stdout
    assert f"skipped 1 line(s) that are not prediction events: {events_file}:11 is not" in first.stderr

    # a queue nobody labelled yet is replaced, and the output says so
    again = run_script(*args, "--out", str(out), "--top", "20")
    assert again.returncode == 0, again.stderr
    assert "replaced the queue that was there: none of its rows had a label" in again.stdout

    # a queue with labels is never overwritten: one line, the file untouched
    filled = read_queue_csv(out)
    filled[0].label, filled[3].label = "acceptable", "0"
    write_queue_csv(filled, out)
    before = out.read_bytes()
    refused = run_script(*args, "--out", str(out), "--top", "20")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"error: --out {out} holds a queue with 2 label(s) filled in: write the new queue to another file "
        f"(--out {tmp_path / 'queue-2.csv'}), or pass --force to overwrite the labels"
    ]
    assert out.read_bytes() == before

    forced = run_script(*args, "--out", str(out), "--top", "20", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "--force: replaced the file that was there" in forced.stdout
    assert all(item.label == "" for item in read_queue_csv(out))

    # a file that is not a queue is not a queue to replace either
    other = tmp_path / "notes.txt"
    other.write_text("my notes\n")
    not_queue = run_script(*args, "--out", str(other))
    assert not_queue.returncode == 2
    assert f"--out {other} exists and is not a labelling queue" in not_queue.stderr
    assert other.read_text() == "my notes\n"
