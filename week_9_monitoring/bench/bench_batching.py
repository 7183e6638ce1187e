"""Does dynamic batching pay? POST /predict (`def`) vs POST /predict/dynamic (batcher.py) under Locust, in one run.

    python -m bench.bench_batching                  # needs artifacts/onnx/ (convert_model_to_onnx.py)
    python -m bench.bench_batching --client locust  # the same load from Locust (locustfile.py) instead

One uvicorn server on 127.0.0.1 (the learner's `uvicorn app:app`, ORT_THREADS=--threads) serves both
endpoints. For each number of users (1, 8, 32) the load goes to /predict, then to /predict/dynamic:
every user sends its next sentence as soon as the answer comes (a closed loop, no think time).
Beside them, the model alone in this process: one sentence a call from as many threads as users
("raw"), and the users' sentences in one call ("raw, one batch": what batching can at best reach).
The load comes from bench_api.py's client (one http.client connection per user, in threads) or,
with --client locust, from Locust headless with CSV output (p50/p95/p99 then come from every
response time: Locust's own CSV rounds them to whole ms). Either way, the last run measures the
other client on the same load: each one's CPU time per request, on the cores the server needs too,
so the choice of client is a measured one.
Writes a JSON file and a Markdown table beside it (--out), and prints the table with the targets.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from bench.bench_api import measure_api, read_sentences, summarize, verdict
from errors import CourseError, run_cli
from inference_onnx import EXPORT_DIR, ColaOnnxPredictor
from source import WEEK_DIR
from support.local_server import local_server

ENDPOINTS = {"def": "/predict", "dynamic": "/predict/dynamic"}
# The targets, checked in the table.
TARGET_SPEEDUP_AT_MOST_USERS = 2.0  # /predict/dynamic throughput vs /predict, at the most users
TARGET_P99_MS_AT_MOST_USERS = 25.0
TARGET_P50_EXTRA_MS_AT_ONE_USER = 0.5


def measure_raw(call, work: list, threads: int, items_per_call: int) -> dict:
    """Call the model on every item of `work`, from `threads` threads (the shape of the users' load)."""
    for item in work[:10]:  # warm-up: first calls allocate ONNX Runtime's buffers
        call(item)
    latencies: list[list[float]] = [[] for _ in range(threads)]

    def caller(index: int) -> None:
        for item in work[index::threads]:
            began = time.perf_counter()
            call(item)
            latencies[index].append(time.perf_counter() - began)

    start = time.perf_counter()
    workers = [threading.Thread(target=caller, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    flat = [x for share in latencies for x in share]
    return summarize(flat, time.perf_counter() - start, items=len(flat) * items_per_call)


def measure_own_client(url: str, endpoint: str, users: int, requests: int) -> dict:
    """bench_api.py's client (one http.client keep-alive connection per user, in threads), and its CPU cost."""
    bodies = [{"text": s} for s in (read_sentences() * (requests // 500 + 2))[:requests]]
    cpu_before = time.process_time()
    figures = measure_api(url, endpoint, bodies, users, 1)
    cpu_s = time.process_time() - cpu_before
    return {**figures, "client_cpu_ms_per_request": cpu_s * 1000 / (requests + 20)}  # +20: its warm-up


def measure_locust(url: str, endpoint: str, users: int, seconds: float, out_dir: Path) -> dict:
    """Locust headless (locustfile.py) on `endpoint` with `users` users: its figures, CSV and CPU per request."""
    prefix = out_dir / f"{endpoint.strip('/').replace('/', '_')}_{users}u"
    summary_file = prefix.with_suffix(".json")
    command = [
        sys.executable, "-m", "locust", "-f", str(WEEK_DIR / "locustfile.py"), "--headless", "--host", url,
        "-u", str(users), "-r", str(users), "-t", f"{seconds:g}s", "--csv", str(prefix), "--only-summary",
        "--endpoint", endpoint, "--summary-file", str(summary_file), "--loglevel", "WARNING",
        "--exit-code-on-error", "0",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=WEEK_DIR, capture_output=True, text=True, timeout=seconds + 120)
    stats_file = Path(f"{prefix}_stats.csv")
    if result.returncode != 0 or not stats_file.is_file() or not summary_file.is_file():
        raise CourseError(f"locust failed on {endpoint} with {users} users:\n{result.stderr[-2000:]}")
    with stats_file.open(newline="") as handle:
        total = next(row for row in csv.DictReader(handle) if row["Name"] == "Aggregated")
    summary = json.loads(summary_file.read_text())
    latencies_ms = np.array(summary["response_times_ms"])
    requests = int(total["Request Count"])
    return {
        **{f"p{q}_ms": float(np.percentile(latencies_ms, q)) for q in (50, 95, 99)},
        "per_s": float(total["Requests/s"]),
        "requests": requests,
        "errors": int(total["Failure Count"]),
        "csv": str(stats_file),
        "client_cpu_ms_per_request": summary["cpu_s"] * 1000 / max(requests, 1),
    }


def run(
    export_dir: Path, users_levels: list[int], requests: int, seconds: float, client: str, threads: int, out_dir: Path
) -> dict:
    """Measure every path at every number of users; returns the report (see table())."""
    sentences = read_sentences()
    singles = (sentences * (requests // len(sentences) + 1))[:requests]
    predictor = ColaOnnxPredictor(export_dir, "fp32", threads)
    report: dict = {
        "machine": machine(),
        "load_average": os.getloadavg(),
        "client": client,
        "ort_threads": threads,
        "users": {},
    }

    def load(url: str, endpoint: str, users: int) -> dict:
        if client == "locust":
            return measure_locust(url, endpoint, users, seconds, out_dir)
        return measure_own_client(url, endpoint, users, requests)

    with local_server(export_dir, env={"ORT_THREADS": str(threads)}) as url:
        for users in users_levels:
            batches = [singles[i : i + users] for i in range(0, requests - users + 1, users)]
            level = {key: load(url, endpoint, users) for key, endpoint in ENDPOINTS.items()}
            level["raw"] = measure_raw(predictor.predict, singles, users, 1)
            level["raw_batch"] = measure_raw(predictor.predict_batch, batches, 1, users)
            report["users"][str(users)] = level
        # What each client costs the machine it shares with the server: CPU per request, same load.
        most = max(users_levels)
        other = (
            measure_own_client(url, ENDPOINTS["dynamic"], most, requests)
            if client == "locust"
            else measure_locust(url, ENDPOINTS["dynamic"], most, seconds, out_dir)
        )
        this = report["users"][str(most)]["dynamic"]
        own, locust = (other, this) if client == "locust" else (this, other)
        report["client_cost"] = {
            "users": most,
            "own_ms": own["client_cpu_ms_per_request"],
            "locust_ms": locust["client_cpu_ms_per_request"],
            "locust_per_s": locust["per_s"],
            "own_per_s": own["per_s"],
        }
    return report


def machine() -> str:
    """The CPU model (from /proc/cpuinfo where there is one), cores and OS."""
    name = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        fields = dict(line.split(":", 1) for line in cpuinfo.read_text().splitlines()[:30] if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        family, model = fields.get("cpu family", "?"), fields.get("model", "?")
        name = f"{fields.get('model name', name)} (family {family} model {model})"
    return f"{name}, {os.cpu_count()} cores, {platform.platform()}"


def row(name: str, figures: dict) -> str:
    errors = "-" if "raw ONNX Runtime" in name else str(figures["errors"])
    return (
        f"| {name} | {figures['p50_ms']:.2f} | {figures['p95_ms']:.2f} | {figures['p99_ms']:.2f} "
        f"| {figures['per_s']:.0f} | {errors} |"
    )


def table(report: dict) -> str:
    """The comparison as Markdown: one block of rows per number of users, then the targets."""
    rows = ["| users, path | p50 ms | p95 ms | p99 ms | sentences/s | errors |", "|---|---:|---:|---:|---:|---:|"]
    for users, level in report["users"].items():
        rows += [
            row(f"{users}, POST /predict (`def`)", level["def"]),
            row(f"{users}, POST /predict/dynamic (batcher)", level["dynamic"]),
            row(f"{users}, raw ONNX Runtime, 1 sentence a call, {users} threads", level["raw"]),
            row(f"{users}, raw ONNX Runtime, {users} sentences in one call", level["raw_batch"]),
        ]
    levels = {int(users): level for users, level in report["users"].items()}
    most, fewest = levels[max(levels)], levels[min(levels)]
    speedup = most["dynamic"]["per_s"] / most["def"]["per_s"]
    extra_ms = fewest["dynamic"]["p50_ms"] - fewest["def"]["p50_ms"]
    errors = sum(level[key]["errors"] for level in levels.values() for key in ENDPOINTS)
    cost = report["client_cost"]
    rows += [
        "",
        "| target | measured | |",
        "|---|---:|---|",
        f"| {max(levels)} users: /predict/dynamic throughput ≥ {TARGET_SPEEDUP_AT_MOST_USERS:g}× /predict "
        f"| {speedup:.2f}× | {verdict(speedup >= TARGET_SPEEDUP_AT_MOST_USERS)} |",
        f"| {max(levels)} users: /predict/dynamic p99 ≤ {TARGET_P99_MS_AT_MOST_USERS:g} ms "
        f"| {most['dynamic']['p99_ms']:.1f} ms | {verdict(most['dynamic']['p99_ms'] <= TARGET_P99_MS_AT_MOST_USERS)} |",
        f"| {min(levels)} user(s): /predict/dynamic p50 ≤ /predict p50 + {TARGET_P50_EXTRA_MS_AT_ONE_USER:g} ms "
        f"| {extra_ms:+.2f} ms | {verdict(extra_ms <= TARGET_P50_EXTRA_MS_AT_ONE_USER)} |",
        f"| zero errors | {errors} | {verdict(errors == 0)} |",
        "",
        f"The load client's own CPU time per request, {cost['users']} users on /predict/dynamic: "
        f"Locust {cost['locust_ms']:.3f} ms ({cost['locust_per_s']:.0f} requests/s), "
        f"bench_api.py's http.client threads {cost['own_ms']:.3f} ms ({cost['own_per_s']:.0f} requests/s).",
    ]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--export-dir", type=Path, default=EXPORT_DIR, help="default: artifacts/onnx")
    parser.add_argument("--users", type=int, nargs="+", default=[1, 8, 32], help="default: 1 8 32")
    parser.add_argument(
        "--client", choices=("own", "locust"), default="own", help="the load for the table (default own: lighter)"
    )
    parser.add_argument("--requests", type=int, default=2000, help="requests per endpoint and users, own client")
    parser.add_argument("--seconds", type=float, default=15, help="run time per endpoint and users, Locust (15)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads, server and raw (default 1)")
    parser.add_argument("--out", type=Path, default=WEEK_DIR / "artifacts" / "bench_batching.json")
    args = parser.parse_args()
    if min(args.users) < 1 or args.threads < 1 or args.seconds < 1 or args.requests < max(args.users):
        raise CourseError("--users, --threads and --seconds must be at least 1, --requests at least the most users")
    out_dir = args.out.parent / "locust"  # Locust's CSV files, one set per endpoint and number of users
    out_dir.mkdir(parents=True, exist_ok=True)
    users = sorted(set(args.users))
    report = run(args.export_dir, users, args.requests, args.seconds, args.client, args.threads, out_dir)
    load = ", ".join(f"{x:.2f}" for x in report["load_average"])
    per_run = f"{args.seconds:g} s per Locust run" if args.client == "locust" else f"{args.requests} requests per run"
    markdown = (
        f"Machine: {report['machine']}; load average before the run: {load}\n\n"
        f"Client: {args.client}, {per_run}; ONNX Runtime threads: {args.threads}\n\n{table(report)}\n"
    )
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown)
    print(markdown)
    print(f"wrote {args.out}, {args.out.with_suffix('.md')} and Locust's CSV files in {out_dir}")


if __name__ == "__main__":
    run_cli(main)
