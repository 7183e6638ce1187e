"""Drift detection on events the API would log: few false alarms on held-out data, every kind of shift caught."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from conftest import run_script
from errors import CourseError
from helpers.prediction_windows import predict_events, write_events
from inference_onnx import ColaOnnxPredictor
from monitoring import drift
from monitoring.prediction_events import PredictionEvent, to_json_line
from support import shifted_text

WINDOW = 100
WINDOWS = 50
FEATURE_TESTS = {"text_length", "word_count", "oov_rate", "domain_classifier"}
ALL_TESTS = FEATURE_TESTS | {"predicted_label", "score"}


@pytest.fixture(scope="module")
def predictor(exported: dict) -> ColaOnnxPredictor:
    return ColaOnnxPredictor(exported["export_dir"])


@pytest.fixture(scope="module")
def holdout_events(predictor: ColaOnnxPredictor) -> list[PredictionEvent]:
    """The model's events on the held-out half of validation: in distribution, never in the reference."""
    return predict_events(predictor, [row["sentence"] for row in shifted_text.validation_half("holdout")])


def drifted(report: drift.DriftReport) -> set[str]:
    return {result.name for result in report.results if result.drifted}


def test_reference_holds_the_reference_half_and_the_training_vocabulary(
    reference: drift.Reference, predictor: ColaOnnxPredictor
) -> None:
    reference_half = [row["sentence"] for row in shifted_text.validation_half("reference")]
    assert reference.texts == reference_half
    assert not set(reference.texts) & {row["sentence"] for row in shifted_text.validation_half("holdout")}
    assert reference.predicted_labels == [p["label"] for p in predictor.predict_batch(reference_half)]
    assert reference.model_version == predictor.config["model_version"]
    assert {"dog", "chased", "the"} <= set(reference.vocabulary)
    # the reference half is new to the model, but made of training words (0.1% unseen)
    assert reference.oov_rates().mean() < 0.01


def test_in_distribution_windows_raise_few_false_alarms(
    holdout_events: list[PredictionEvent], reference: drift.Reference, config: drift.MonitoringConfig
) -> None:
    rng = random.Random(0)
    alarms, p_values = [], {name: [] for name in ALL_TESTS}
    for _ in range(WINDOWS):
        report = drift.check_drift(rng.sample(holdout_events, WINDOW), reference, config)
        assert {r.name for r in report.results if r.status != "not run"} == ALL_TESTS
        alarms.append(sorted(drifted(report)))
        for result in report.results:
            p_values[result.name].append(result.p_value)
    rate = sum(bool(a) for a in alarms) / WINDOWS
    below_5 = {name: sum(p < 0.05 for p in values) / WINDOWS for name, values in p_values.items()}
    print(f"\nfalse-alarm rate: {rate:.0%} of {WINDOWS} held-out windows of {WINDOW}; share of p < 0.05: {below_5}")
    # Bonferroni: at most 6 tests x alpha 0.01 = 6% per window; 10% leaves room for chance.
    assert rate <= 0.10
    # A test whose p-values are honest has p < 0.05 in about 5% of windows without drift. Two
    # designs this replaced failed here: a domain classifier tested on pooled cross-validation
    # scores, or compared with training sentences instead of held-out ones (measured: 17% and 23%).
    assert max(below_5.values()) <= 0.10


@pytest.mark.parametrize(
    "kind, features_drifted, labels_drifted",
    [
        # Measured (100 sentences, seed 1): OOV rate 64% / 99% / 58% against 0.1% in the reference;
        # the domain classifier's held-out AUC 1.00 / 1.00 / 0.84; all p < 1e-12. Software sentences
        # are longer (median 52 characters vs 42); French and garbled ones are not (p 0.03 and 0.17).
        ("domain", {"text_length", "oov_rate", "domain_classifier"}, {"predicted_label", "score"}),
        ("language", {"oov_rate", "domain_classifier"}, {"predicted_label", "score"}),
        ("garbled", {"oov_rate", "domain_classifier"}, {"predicted_label"}),
    ],
)
def test_shifted_windows_are_flagged_by_the_expected_tests(
    kind: str,
    features_drifted: set[str],
    labels_drifted: set[str],
    predictor: ColaOnnxPredictor,
    reference: drift.Reference,
    config: drift.MonitoringConfig,
) -> None:
    events = predict_events(predictor, shifted_text.shifted(kind, WINDOW, seed=1))
    report = drift.check_drift(events, reference, config)
    print(f"\n{kind}:\n{drift.format_report(report)}")
    assert report.drifted
    # The feature tests see only the text, so their verdicts are fixed by the seed.
    assert drifted(report) & FEATURE_TESTS == features_drifted
    # The label tests depend on the trained model: the shifted sentences are predicted mostly
    # "unacceptable" (90-100% against 38% in the reference), with p < 1e-18.
    assert labels_drifted <= drifted(report)
    assert report.result("predicted_label").p_value < 1e-6


def test_drift_in_the_last_part_of_a_stream_is_found_in_the_last_window(
    predictor: ColaOnnxPredictor, reference: drift.Reference, config: drift.MonitoringConfig
) -> None:
    events = predict_events(predictor, list(shifted_text.drifting_stream(200, 100, "language", seed=3)))
    assert not drift.check_drift(events[:WINDOW], reference, config).drifted
    late = drift.select_window(events, last=WINDOW)
    assert late == events[100:]
    assert drifted(drift.check_drift(late, reference, config)) >= {"oov_rate", "domain_classifier"}
    assert drift.select_window(events, since="2026-11-23T12:02:30Z") == events[150:]


def test_events_without_text_report_the_text_tests_as_not_run(
    predictor: ColaOnnxPredictor, reference: drift.Reference, config: drift.MonitoringConfig
) -> None:
    events = predict_events(predictor, shifted_text.other_language(WINDOW, seed=1), log_text=False)
    report = drift.check_drift(events, reference, config)
    for name in ("oov_rate", "domain_classifier"):
        result = report.result(name)
        assert result.status == "not run" and result.drifted is None and result.statistic is None
        assert result.p_value is None
        assert result.detail == f"not run: {drift.NO_TEXT}"
    assert {r.name for r in report.results if r.status != "not run"} == {
        "text_length",
        "word_count",
        "predicted_label",
        "score",
    }
    assert report.drifted  # the French is still caught, by what the model made of it
    table = drift.format_report(report)
    assert "oov_rate" in table and "events carry no text (set LOG_TEXT=true)" in table
    assert "2 not run" in table


def test_text_tests_need_enough_events_with_text(
    holdout_events: list[PredictionEvent], reference: drift.Reference, config: drift.MonitoringConfig
) -> None:
    window = [e if i < 20 else e.model_copy(update={"text": None}) for i, e in enumerate(holdout_events[:WINDOW])]
    report = drift.check_drift(window, reference, config)
    assert report.result("oov_rate").status == "not run"
    assert "only 20 of 100 events carry text" in report.result("oov_rate").detail
    window = [e if i < 80 else e.model_copy(update={"text": None}) for i, e in enumerate(holdout_events[:WINDOW])]
    report = drift.check_drift(window, reference, config)
    assert report.result("oov_rate").status == "no drift"
    assert "on the 80 of 100 events that carry text" in report.result("oov_rate").detail


def test_a_small_window_is_refused(
    holdout_events: list[PredictionEvent], reference: drift.Reference, config: drift.MonitoringConfig
) -> None:
    small = holdout_events[: config.drift.min_window - 1]
    with pytest.raises(CourseError, match=f"the window has {len(small)} events, fewer than drift.min_window=50"):
        drift.check_drift(small, reference, config)


def test_another_model_version_is_not_compared_with_the_reference(
    holdout_events: list[PredictionEvent], reference: drift.Reference, config: drift.MonitoringConfig
) -> None:
    window = [e.model_copy(update={"model_version": "v9-00000000"}) for e in holdout_events[:WINDOW]]
    report = drift.check_drift(window, reference, config)
    for name in ("predicted_label", "score"):
        assert report.result(name).status == "not run"
        assert "model v9-00000000" in report.result(name).detail
        assert "python -m monitoring.drift reference" in report.result(name).detail
    assert report.result("oov_rate").status == "no drift"


def test_report_dict_is_json_with_what_the_report_page_reads(
    predictor: ColaOnnxPredictor, reference: drift.Reference, config: drift.MonitoringConfig
) -> None:
    events = predict_events(predictor, shifted_text.garbled(60, seed=5))
    data = json.loads(json.dumps(drift.check_drift(events, reference, config).to_dict()))
    assert data["drifted"] is True and data["window_size"] == 60 and data["reference_size"] == 300
    assert data["tests_run"] == 6 and data["tests_drifted"] >= 3
    assert [r["name"] for r in data["results"]] == list(drift.new_results(0.01))
    for result in data["results"]:
        assert {"name", "kind", "statistic", "p_value", "threshold", "drifted", "status", "detail"} <= set(result)
        assert result["threshold"] == config.drift.alpha
        assert result["drifted"] == (result["p_value"] < result["threshold"])


def test_bad_config_names_the_setting(tmp_path: Path) -> None:
    text = drift.CONFIG_PATH.read_text().replace("alpha: 0.01", "alpah: 0.01")
    (tmp_path / "monitoring.yaml").write_text(text)
    with pytest.raises(CourseError, match="drift.alpah: Extra inputs are not permitted"):
        drift.load_config(tmp_path / "monitoring.yaml")


def test_cli_builds_the_reference_and_exits_3_on_drift(
    exported: dict, predictor: ColaOnnxPredictor, holdout_events: list[PredictionEvent], tmp_path: Path
) -> None:
    reference_path = tmp_path / "reference.json"
    built = run_script(
        "-m", "monitoring.drift", "reference", "--export-dir", str(exported["export_dir"]), "--out", str(reference_path)
    )
    assert built.returncode == 0, built.stderr
    assert drift.load_reference(reference_path).texts == [
        r["sentence"] for r in shifted_text.validation_half("reference")
    ]

    stream = predict_events(predictor, list(shifted_text.drifting_stream(200, 100, "domain", seed=4)))
    events_file = write_events(tmp_path / "events.jsonl", stream)
    report_file = tmp_path / "drift.json"
    args = ["-m", "monitoring.drift", "check", "--events", str(events_file), "--reference", str(reference_path)]

    found = run_script(*args, "--last", "100", "--json", str(report_file), "--fail-on-drift")
    assert found.returncode == drift.FAIL_ON_DRIFT_EXIT, found.stderr
    assert "overall: DRIFT" in found.stdout and "oov_rate" in found.stdout
    assert json.loads(report_file.read_text())["drifted"] is True

    clean_file = write_events(tmp_path / "clean.jsonl", holdout_events[:WINDOW])
    clean = run_script(
        "-m", "monitoring.drift",
        "check",
        "--events",
        str(clean_file),
        "--reference",
        str(reference_path),
        "--fail-on-drift",
    )
    assert clean.returncode == 0, clean.stderr
    assert "overall: no drift (6 tests ran)" in clean.stdout

    small = run_script(*args, "--last", "10")
    assert small.returncode == 2
    assert "error: the window has 10 events, fewer than drift.min_window=50" in small.stderr
    assert "Traceback" not in small.stderr


# ----------------------------------------------------------------------------- a file under faults (issue 18)


def half_line(event: PredictionEvent) -> str:
    """The first 72 bytes of an event's line: what a killed API or a full disk leaves behind."""
    return to_json_line(event)[:72]


def test_select_window_streams_and_keeps_the_same_window(holdout_events: list[PredictionEvent]) -> None:
    events = holdout_events[:200]
    since = events[120].timestamp
    # a generator is read once; the window is what the list version gave: filter by time, then the last N
    assert drift.select_window(iter(events), last=30) == events[-30:]
    assert drift.select_window(iter(events), since=since) == events[120:]
    assert drift.select_window(iter(events), last=500, since=since) == events[120:]
    assert drift.select_window(iter(events), last=10, since=since) == events[190:]
    assert drift.select_window(iter(events)) == events
    with pytest.raises(CourseError, match="--last 0: give a positive number"):
        drift.select_window(iter(events), last=0)


def test_a_half_line_is_skipped_and_named_and_the_rest_is_checked(
    holdout_events: list[PredictionEvent], reference: drift.Reference, tmp_path: Path
) -> None:
    events = holdout_events[:WINDOW]
    events_file = tmp_path / "events.jsonl"
    # line 41 is half an event followed by a whole one (the API killed mid-write, then restarted)
    lines = [to_json_line(e) for e in events[:40]] + [half_line(events[40])] + [to_json_line(e) for e in events[40:]]
    events_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    reference_file = drift.save_reference(reference, tmp_path / "reference.json")
    args = ["-m", "monitoring.drift", "check", "--events", str(events_file), "--reference", str(reference_file)]

    result = run_script(*args, "--fail-on-drift", "--json", str(tmp_path / "drift.json"))
    assert result.returncode == 0, result.stderr
    assert f"window: {WINDOW} events from {events[0].timestamp} to {events[-1].timestamp}" in result.stdout
    assert "overall: no drift (6 tests ran)" in result.stdout
    assert "skipped 1 line(s) that are not prediction events" in result.stderr
    assert f"{events_file}:41 is not a prediction event" in result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads((tmp_path / "drift.json").read_text())["window_size"] == WINDOW

    # --last counts events, not lines: the broken line takes no place in the window
    last = run_script(*args, "--last", "60")
    assert last.returncode == 0, last.stderr
    assert f"window: 60 events from {events[40].timestamp}" in last.stdout

    # a window too small still names the skipped line: it may be why
    small = run_script(*args, "--last", "10")
    assert small.returncode == 2
    assert "fewer than drift.min_window=50" in small.stderr and f"{events_file}:41" in small.stderr


def test_the_api_mid_write_on_the_last_line_is_left_for_the_next_check(
    holdout_events: list[PredictionEvent], reference: drift.Reference, config: drift.MonitoringConfig, tmp_path: Path
) -> None:
    events = holdout_events[: WINDOW + 1]
    events_file = write_events(tmp_path / "events.jsonl", events[:WINDOW])
    whole = to_json_line(events[WINDOW]) + "\n"
    with open(events_file, "a", encoding="utf-8") as handle:
        handle.write(whole[:72])  # the API has written part of its line, not the newline yet
    bad_lines: list = []
    assert drift.read_window(events_file, bad_lines) == events[:WINDOW]
    assert bad_lines == []  # not broken, only unfinished
    report = drift.run_check(events_file, drift.save_reference(reference, tmp_path / "r.json"), config, last=50)
    assert report.window_end == events[WINDOW - 1].timestamp

    with open(events_file, "a", encoding="utf-8") as handle:
        handle.write(whole[72:])  # the API finishes the line
    assert drift.read_window(events_file, bad_lines, last=1) == [events[WINDOW]]
    assert bad_lines == []
