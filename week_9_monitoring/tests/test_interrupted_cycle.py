"""Ctrl-C during monitoring/continuous_training.py's `dvc repro`, then the same command again.

The labels are already in the data when the interrupt comes (params.yaml at v3, data/labelled/v3.csv
written), so the rerun must not wait for new labels: it finishes the cycle (dvc repro, promotion,
drift reference). Everything runs for real in a throwaway git+DVC project; the interrupt is a SIGINT
to the command's whole process group, as a terminal sends it."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time

import pytest

from helpers.dvc_project import Project
from helpers.loop_files import csv_rows, data_version
from helpers.loop_project import RETRAINING, first_model_project, production_listing, record
from helpers.prediction_windows import predict_events, write_events
from inference_onnx import ColaOnnxPredictor
from support.ops_grammar import other_domain_rows

INTERRUPT_AT = "Running stage 'train'"  # dvc prints it as training starts: the batch and params are written


@pytest.fixture(scope="module")
def cycle(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """v1 in production with its drift reference, drifted events, and every drifted sentence labelled."""
    project = first_model_project(tmp_path_factory.mktemp("interrupted"))
    project.run("python", "-m", "monitoring.promote")
    project.run("python", "-m", "monitoring.drift", "reference", "--export-dir", "production/onnx")
    folder = tmp_path_factory.mktemp("cycle")
    rows = other_domain_rows(200, seed=1)
    predictor = ColaOnnxPredictor(project.week / "production" / "onnx", "fp32")
    events = write_events(folder / "events.jsonl", predict_events(predictor, [row["sentence"] for row in rows]))
    filled = folder / "filled.csv"
    with open(filled, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["sentence", "label"])
        writer.writeheader()
        for row in rows:
            writer.writerow({"sentence": row["sentence"], "label": ("unacceptable", "acceptable")[row["label"]]})
    project.set_params(**RETRAINING)
    command = ["python", "-m", "monitoring.continuous_training", "--events", str(events), "--labelled", str(filled)]
    return {"project": project, "command": command}


def interrupt_during_repro(project: Project, command: list[str]) -> tuple[int, str]:
    """Run `command` in its own process group and SIGINT the group once training starts: (exit code, output)."""
    process = subprocess.Popen(
        command,
        cwd=project.week,
        env={**project.env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a process group of its own, like a job in a terminal
        # A terminal's job takes Ctrl-C; a CI started in the background (`nohup ... &`) hands its
        # children SIGINT ignored, and an ignored signal stays ignored across exec.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines = []
    for line in process.stdout:
        lines.append(line)
        if INTERRUPT_AT in line:
            time.sleep(1)  # well inside the stage: the train command has started
            os.killpg(process.pid, signal.SIGINT)
            break
    lines.extend(process.stdout)
    return process.wait(timeout=180), "".join(lines)


def test_a_rerun_finishes_the_cycle_that_ctrl_c_interrupted(cycle: dict) -> None:
    project, command = cycle["project"], cycle["command"]
    week = project.week
    before = record(week)
    assert before["data_version"] == "v1"

    code, output = interrupt_during_repro(project, command)
    print(output)
    assert INTERRUPT_AT in output, "the run ended before training started"
    assert code == 130, output
    assert "interrupted: run the same command again" in output
    # Where the interrupt left things: the labels are in the data, the pipeline is not reproduced,
    # production still serves v1.
    assert data_version(week) == "v3" and len(csv_rows(week / "data" / "labelled" / "v3.csv")) == 200
    assert json.loads(project.dvc("status", "--json").stdout) != {}
    assert record(week) == before

    result = project.run(*command, check=False)
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert (
        "an unfinished cycle: data/labelled/v3.csv is data version v3 in params.yaml, but `dvc repro` did not finish"
    ) in out
    assert "step 1/6" not in out and "step 3/6" not in out  # no drift check, no second batch
    assert "Running stage 'train'" in out and "promoted: candidate mcc" in out
    assert "the unfinished cycle is finished" in out

    promoted = record(week)
    assert promoted["data_version"] == "v3" and promoted["model_version"].startswith("v3-")
    assert promoted["metrics"] == json.loads((week / "metrics.json").read_text())
    assert production_listing(week) == ["onnx"]
    assert project.dvc("status", "--json").stdout.strip() == "{}"
    assert data_version(week) == "v3" and not (week / "data" / "labelled" / "v4.csv").exists()
    reference = json.loads((week / "artifacts" / "monitoring" / "reference.json").read_text())
    assert reference["model_version"] == promoted["model_version"]
