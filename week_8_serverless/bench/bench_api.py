"""What does HTTP cost? The API under a bounded loopback load vs the raw ONNX Runtime call, in one run.

    python -m bench.bench_api                   # needs artifacts/onnx/ (convert_model_to_onnx.py)
    python -m bench.bench_api --image cola-api  # also reports the size of a built image

Measured, on the same machine and model, with the same ONNX Runtime thread count:
  raw        ColaOnnxPredictor.predict(sentence) in this process (tokenize + run + softmax), called
             from CONCURRENCY threads
  /predict   one uvicorn worker on 127.0.0.1, CONCURRENCY clients with keep-alive connections,
             each sending its share of REQUESTS one after another (a bounded, closed-loop load)
and the same for 64 sentences at a time (predict_batch vs POST /predict/batch, REQUESTS/20 calls).
Then the same /predict load on the apps of bench/http_floor.py, which do not run the model: FastAPI as app.py
has it, FastAPI without the hop to a worker thread, and a bare ASGI app. A server has to do their work
AND the model's on the same cores, so each gives a ceiling for /predict: 1 / (1/floor + 1/raw).
Writes a JSON file and a Markdown table beside it (--out), and prints the table.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from errors import CourseError, run_cli
from inference_onnx import EXPORT_DIR, ColaOnnxPredictor
from source import OFFLINE_DATA_DIR, WEEK_DIR, read_split
from support.local_server import local_server

BATCH = 64
# The targets for one uvicorn worker, checked in the table.
TARGET_P50_EXTRA_MS = 2.0
TARGET_THROUGHPUT_SHARE = 0.80
TARGET_IMAGE_MB = 500
# The apps of bench/http_floor.py, by report key: (app, path, what it is). The same load, without the model.
FLOORS = {
    "floor_fastapi": ("bench.http_floor:fastapi_app", "/predict", "FastAPI, `def` as app.py"),
    "floor_fastapi_async": ("bench.http_floor:fastapi_app", "/predict-async", "FastAPI, `async def`"),
    "floor_bare": ("bench.http_floor:bare_app", "/predict", "bare ASGI, no framework"),
}


def read_sentences(data_dir: Path = OFFLINE_DATA_DIR) -> list[str]:
    """The validation sentences (source.read_split needs only the standard library: no pandas or torch here)."""
    return [row["sentence"] for row in read_split("validation", data_dir)]


def summarize(latencies_s: list[float], wall_s: float, items: int, errors: int = 0) -> dict:
    """p50/p95/p99 in ms, and throughput in items per second of wall-clock time."""
    milliseconds = np.array(latencies_s) * 1000
    return {
        "p50_ms": float(np.percentile(milliseconds, 50)),
        "p95_ms": float(np.percentile(milliseconds, 95)),
        "p99_ms": float(np.percentile(milliseconds, 99)),
        "per_s": items / wall_s,
        "requests": len(latencies_s),
        "errors": errors,
    }


def measure_raw(predictor: ColaOnnxPredictor, work: list, concurrency: int, batch: bool) -> dict:
    """Call the predictor directly from `concurrency` threads, the same load shape as the API gets.

    ONNX Runtime releases the GIL while it runs, so threads overlap as the server's worker threads do.
    """
    call = predictor.predict_batch if batch else predictor.predict
    for item in work[:20]:  # warm-up: first calls allocate ONNX Runtime's buffers
        call(item)
    progress = tqdm(total=len(work), desc="raw batch" if batch else "raw", unit="call", leave=False)

    def caller(share: list) -> list[float]:
        latencies = []
        for item in share:
            began = time.perf_counter()
            call(item)
            latencies.append(time.perf_counter() - began)
            progress.update()
        return latencies

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(caller, [work[i::concurrency] for i in range(concurrency)]))
    wall = time.perf_counter() - start
    progress.close()
    return summarize([x for share in results for x in share], wall, items=len(work) * (BATCH if batch else 1))


def measure_api(url: str, path: str, bodies: list[dict], concurrency: int, items_per_body: int) -> dict:
    """POST every body to url+path from `concurrency` keep-alive clients; count anything but 200 as an error."""
    host, port = url.removeprefix("http://").split(":")
    progress = tqdm(total=len(bodies), desc=f"POST {path}", unit="req", leave=False)

    def client(share: list[dict]) -> tuple[list[float], int]:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        latencies, errors = [], 0
        for body in share:
            payload = json.dumps(body).encode()
            began = time.perf_counter()
            try:
                connection.request("POST", path, payload, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                errors += response.status != 200
            except (OSError, http.client.HTTPException):
                errors += 1
                connection.close()
                connection = http.client.HTTPConnection(host, int(port), timeout=30)
            latencies.append(time.perf_counter() - began)
            progress.update()
        connection.close()
        return latencies, errors

    shares = [bodies[i::concurrency] for i in range(concurrency)]
    client(bodies[:20])  # warm-up on one connection
    progress.reset()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(client, shares))
    wall = time.perf_counter() - start
    progress.close()
    latencies = [latency for share, _ in results for latency in share]
    errors = sum(errors for _, errors in results)
    return summarize(latencies, wall, items=len(bodies) * items_per_body, errors=errors)


def image_size_mb(image: str) -> float:
    """Uncompressed size of a built image, with Docker or else podman."""
    for engine in ("docker", "podman"):
        if shutil.which(engine):
            result = subprocess.run(
                [engine, "image", "inspect", "--format", "{{.Size}}", image], capture_output=True, text=True
            )
            if result.returncode == 0:
                return int(result.stdout.strip()) / 1e6
    raise CourseError(f"no image {image!r} found with docker or podman: build it first (see the README)")


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def ceiling_row(name: str, floor_per_s: float, raw_per_s: float) -> str:
    """The most /predict could reach if it cost what a floor app costs plus what the model costs.

    Both run on the same cores, so their times per request add up: 1 / (1/floor + 1/raw).
    """
    ceiling = 1 / (1 / floor_per_s + 1 / raw_per_s) / raw_per_s
    reach = "target within reach" if ceiling >= TARGET_THROUGHPUT_SHARE else "target out of reach"
    return f"| ceiling for /predict: {name} + the model | {ceiling:.0%} of raw | {reach} |"


def table(report: dict) -> str:
    """The comparison as Markdown: one row per path, then the targets."""
    raw, api, raw_b, api_b = report["raw"], report["api"], report["raw_batch"], report["api_batch"]
    floors = [(name, report[key]) for key, (_, _, name) in FLOORS.items()]
    extra_ms = api["p50_ms"] - raw["p50_ms"]
    share = api["per_s"] / raw["per_s"]
    share_b = api_b["per_s"] / raw_b["per_s"]
    clients = report["concurrency"]
    errors = api["errors"] + api_b["errors"] + sum(floor["errors"] for _, floor in floors)
    rows = [
        "| path | p50 ms | p99 ms | sentences/s | errors |",
        "|---|---:|---:|---:|---:|",
        f"| raw ONNX Runtime, 1 sentence a call, {clients} threads "
        f"| {raw['p50_ms']:.2f} | {raw['p99_ms']:.2f} | {raw['per_s']:.0f} | - |",
        f"| POST /predict, {clients} clients | {api['p50_ms']:.2f} | {api['p99_ms']:.2f} "
        f"| {api['per_s']:.0f} | {api['errors']} |",
        f"| raw ONNX Runtime, {BATCH} sentences a call, {clients} threads "
        f"| {raw_b['p50_ms']:.2f} | {raw_b['p99_ms']:.2f} | {raw_b['per_s']:.0f} | - |",
        f"| POST /predict/batch ({BATCH}), {clients} clients | {api_b['p50_ms']:.2f} "
        f"| {api_b['p99_ms']:.2f} | {api_b['per_s']:.0f} | {api_b['errors']} |",
        *(
            f"| POST to {name}, no model (bench/http_floor.py), {clients} clients | {floor['p50_ms']:.2f} "
            f"| {floor['p99_ms']:.2f} | {floor['per_s']:.0f} | {floor['errors']} |"
            for name, floor in floors
        ),
        "",
        "| target | measured | |",
        "|---|---:|---|",
        f"| /predict p50 within {TARGET_P50_EXTRA_MS:g} ms of raw | +{extra_ms:.2f} ms "
        f"| {verdict(extra_ms <= TARGET_P50_EXTRA_MS)} |",
        f"| /predict throughput ≥ {TARGET_THROUGHPUT_SHARE:.0%} of raw | {share:.0%} "
        f"| {verdict(share >= TARGET_THROUGHPUT_SHARE)} |",
        f"| /predict/batch throughput ≥ {TARGET_THROUGHPUT_SHARE:.0%} of raw batch | {share_b:.0%} "
        f"| {verdict(share_b >= TARGET_THROUGHPUT_SHARE)} |",
        *(ceiling_row(name, floor["per_s"], raw["per_s"]) for name, floor in floors),
        f"| zero errors | {errors} | {verdict(errors == 0)} |",
    ]
    if report.get("image_mb") is not None:
        rows.append(
            f"| image ≤ {TARGET_IMAGE_MB} MB | {report['image_mb']:.0f} MB | "
            f"{verdict(report['image_mb'] <= TARGET_IMAGE_MB)} |"
        )
    return "\n".join(rows)


def run(export_dir: Path, requests: int, concurrency: int, threads: int, image: str | None) -> dict:
    """Measure everything; returns the report (see table())."""
    # A missing image is known at once: say so before minutes of load, not after.
    image_mb = image_size_mb(image) if image else None
    sentences = read_sentences()
    singles = [sentences[i % len(sentences)] for i in range(requests)]
    batches = [[sentences[(i * BATCH + j) % len(sentences)] for j in range(BATCH)] for i in range(requests // 20)]
    predictor = ColaOnnxPredictor(export_dir, "fp32", threads)
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "requests": requests,
        "concurrency": concurrency,
        "ort_threads": threads,
        "raw": measure_raw(predictor, singles, concurrency, batch=False),
        "raw_batch": measure_raw(predictor, batches, concurrency, batch=True),
    }
    with local_server(export_dir, env={"ORT_THREADS": str(threads)}) as url:
        report["api"] = measure_api(url, "/predict", [{"text": s} for s in singles], concurrency, 1)
        report["api_batch"] = measure_api(url, "/predict/batch", [{"texts": b} for b in batches], concurrency, BATCH)
    for key, (app, path, _) in FLOORS.items():
        with local_server(export_dir, app=app) as url:
            report[key] = measure_api(url, path, [{"text": s} for s in singles], concurrency, 1)
    report["image"] = image
    report["image_mb"] = image_mb
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--export-dir", type=Path, default=EXPORT_DIR, help="default: artifacts/onnx")
    parser.add_argument("--requests", type=int, default=3000, help="single-sentence requests (default 3000)")
    parser.add_argument("--concurrency", type=int, default=2, help="concurrent clients (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads, both paths (default 1)")
    parser.add_argument("--image", help="a built image whose size to report, e.g. cola-api")
    parser.add_argument("--out", type=Path, default=WEEK_DIR / "artifacts" / "bench_api.json")
    args = parser.parse_args()
    if args.requests < BATCH or args.concurrency < 1 or args.threads < 1:
        raise CourseError(f"--requests must be at least {BATCH}, --concurrency and --threads at least 1")
    report = run(args.export_dir, args.requests, args.concurrency, args.threads, args.image)
    markdown = f"Machine: {report['machine']}; ONNX Runtime threads: {args.threads}\n\n{table(report)}\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown)
    print(markdown)
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    run_cli(main)
