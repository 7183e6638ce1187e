"""The whole course in one command, offline: train, version, export, serve, drift, label, report.

    python demo.py                      # what `make demo` at the repo root runs
    python demo.py --sentences 200 --drift-kind language

Steps (each prints what it did):
  1. a workspace: this week copied into artifacts/demo/workspace, a new git + DVC repository
  2. `dvc repro`: prepare data v1 -> train (Lightning's progress bar) -> evaluate -> export ONNX;
     git commits dvc.lock, so the model is a versioned result of a versioned dataset
  3. the drift reference for this model (monitoring/drift.py reference)
  4. the API started on loopback, logging every prediction to an events file (LOG_TEXT=true)
  5. a stream of sentences sent to the API: in-distribution first, shifted from the middle on
  6. drift checked on the first and on the second half of the stream
  7. the labelling queue built from the second half (labelling/queue.csv)
  8. the monitoring report written: an HTML page whose path is printed last
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict
from pathlib import Path

from errors import CourseError, run_cli
from source import WEEK_DIR

DEMO_DIR = WEEK_DIR / "artifacts" / "demo"
# What a fresh clone of the week holds; outputs, caches and the tests stay behind.
NOT_COPIED = (
    "artifacts",
    "tests",
    "logs",
    "labelling",
    "reports",
    "dvc-remote",
    "wandb",
    "outputs",
    "multirun",
    "__pycache__",
    ".pytest_cache",
    "config.local",
    "tmp",
    ".dvc",
    "dvc.lock",
    "metrics.json",
)


def step(number: int, text: str) -> None:
    print(f"\n== [{number}/8] {text}", flush=True)


def run(command: list[str], cwd: Path, env: dict | None = None) -> None:
    """Run a command with its output shown (DVC's and Lightning's progress included).

    This Python's folder goes first on PATH, so `dvc` and the `python` of the pipeline's stages
    are the ones of this environment even when it is not activated (as under `make demo`).
    """
    path = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    result = subprocess.run(command, cwd=cwd, env={**os.environ, "PATH": path, **(env or {})})
    if result.returncode != 0:
        raise CourseError(f"`{' '.join(command)}` failed in {cwd} (exit {result.returncode}): see its output above")


def make_workspace(workspace: Path, epochs: int) -> None:
    """The week as a learner's fresh repository: git, DVC, the pipeline's params."""
    if workspace.exists():
        shutil.rmtree(workspace)
    shutil.copytree(WEEK_DIR, workspace, ignore=shutil.ignore_patterns(*NOT_COPIED))
    params = workspace / "params.yaml"
    params.write_text(params.read_text().replace("max_epochs: 10", f"max_epochs: {epochs}"))
    for command in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "config", "user.email", "demo@example.com"],
        ["git", "config", "user.name", "Demo"],
        ["dvc", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "commit", "-q", "-m", "the week as cloned"],
    ):
        run(command, workspace)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_api(workspace: Path, events_file: Path, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "MODEL_DIR": str(workspace / "artifacts" / "onnx"),
        "EVENTS_FILE": str(events_file),
        "LOG_TEXT": "true",
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    # The API prints each event on stdout too; the demo reads them from the file instead.
    server = subprocess.Popen(command, cwd=workspace, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise CourseError(f"the API exited at start-up (exit {server.returncode}): see its messages above")
        try:
            with opener.open(f"http://127.0.0.1:{port}/ready", timeout=2):
                return server
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.3)
    server.terminate()
    raise CourseError("the API did not become ready within 60 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--sentences", type=int, default=400, help="length of the stream (default 400)")
    parser.add_argument("--drift-kind", default="domain", choices=("domain", "language", "garbled"))
    parser.add_argument("--epochs", type=int, default=10, help="training epochs (default 10, as params.yaml)")
    parser.add_argument("--out", type=Path, default=DEMO_DIR, help="default: artifacts/demo")
    args = parser.parse_args()
    if args.sentences < 100:
        raise CourseError(f"--sentences {args.sentences} is too short: use at least 100 (two windows of 50)")

    from monitoring import drift, labelling_queue, monitoring_report
    from monitoring.prediction_events import BadLine, describe_bad_lines, read_events
    from support.shifted_text import drifting_stream
    from support.traffic import send_stream

    started = time.monotonic()
    workspace = args.out / "workspace"
    step(1, f"workspace: a fresh git + DVC repository in {workspace}")
    make_workspace(workspace, args.epochs)

    step(2, "dvc repro: prepare data v1 -> train -> evaluate -> export to ONNX")
    run(["dvc", "repro"], workspace, {"WANDB_MODE": "disabled"})
    run(["git", "add", "-A"], workspace)
    run(["git", "commit", "-q", "-m", "model trained on data v1 (dvc.lock)"], workspace)
    print((workspace / "metrics.json").read_text().strip())

    step(3, "drift reference for this model")
    config = drift.load_config()
    reference = drift.build_reference(workspace / "artifacts" / "onnx")
    reference_path = drift.save_reference(reference, args.out / "reference.json")
    print(f"{reference_path}: model {reference.model_version}")

    step(4, "API on loopback, logging every prediction")
    events_file = args.out / "logs" / "events.jsonl"
    events_file.unlink(missing_ok=True)
    port = free_port()
    server = start_api(workspace, events_file, port)
    print(f"http://127.0.0.1:{port} ready; events -> {events_file}")
    try:
        half = args.sentences // 2
        step(5, f"{args.sentences} sentences: in-distribution, then {args.drift_kind} text from #{half} on")
        send_stream(f"http://127.0.0.1:{port}", list(drifting_stream(args.sentences, half, args.drift_kind)))
    finally:
        server.terminate()
        server.wait(timeout=10)
    skipped: list[BadLine] = []  # a line that is not an event (a crash's half line) is skipped, and said
    events = list(read_events(events_file, skipped))
    if skipped:
        print(describe_bad_lines(skipped))

    step(6, "drift: first half of the stream, then second half")
    first = drift.check_drift(events[:half], reference, config)
    print("first half:\n" + drift.format_report(first))
    second = drift.check_drift(events[half:], reference, config)
    print("\nsecond half:\n" + drift.format_report(second))

    step(7, "labelling queue from the second half")
    queue = labelling_queue.build_queue(events[half:], reference, config)
    queue_path = labelling_queue.write_queue_csv(queue, args.out / "labelling" / "queue.csv")
    for item in queue[:5]:
        print(f"  {item.rank:>3}. {item.sentence}\n       {item.reason}")
    print(f"{len(queue)} sentences to label in {queue_path}")

    step(8, "monitoring report")
    rows = [asdict(item) for item in queue]
    report = monitoring_report.write_report(args.out / "report.html", events, second.to_dict(), rows)
    minutes, seconds = divmod(int(time.monotonic() - started), 60)
    print(f"\ndone in {minutes} min {seconds} s")
    print(
        f"first half: {'DRIFT' if first.drifted else 'no drift'}; second half: "
        f"{'DRIFT' if second.drifted else 'no drift'}"
    )
    print(f"report: {report.resolve()}")


if __name__ == "__main__":
    run_cli(main)
