"""The dynamic batcher (batcher.py) and POST /predict/dynamic: same answers as the model, one call per batch,
the limits honoured, failures and cancellations kept to their own requests, errors identical to /predict."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient
from test_app import BAD_BODIES

from app import app
from batcher import Batcher, BatcherClosed
from errors import CourseError
from inference_onnx import ColaOnnxPredictor
from settings import read_settings
from source import WEEK_DIR, read_split
from support.local_server import free_port, local_server, server_command, stop, wait_ready

TOLERANCE = 1e-5  # padding to a batch's longest sentence moves a probability by less than this


class CountingModel:
    """The real ONNX predictor, recording every call it gets; it can fail, or hold, a batch on purpose."""

    def __init__(self, predictor: ColaOnnxPredictor, fail_text: str | None = None) -> None:
        self.predictor = predictor
        self.fail_text = fail_text
        self.calls: list[list[str]] = []
        self.release = threading.Event()
        self.release.set()

    def predict_batch(self, texts: list[str]) -> list[dict]:
        self.calls.append(list(texts))
        self.release.wait(timeout=30)
        if self.fail_text in texts:
            raise ValueError(f"the model failed on {self.fail_text!r}")
        return self.predictor.predict_batch(texts)


@pytest.fixture(scope="module")
def predictor(exported: dict) -> ColaOnnxPredictor:
    return ColaOnnxPredictor(exported["export_dir"], "fp32")


def sentences(count: int) -> list[str]:
    rows = read_split("validation")
    return [rows[i % len(rows)]["sentence"] for i in range(count)]


def assert_close(got: dict, expected: dict) -> None:
    assert got["label"] == expected["label"]
    for label, probability in expected["probabilities"].items():
        assert abs(got["probabilities"][label] - probability) <= TOLERANCE


async def serve(batcher: Batcher, texts: list[str], *, stagger_s: float = 0.0) -> list:
    """Submit every text concurrently (optionally `stagger_s` apart); results or exceptions, in order."""

    async def one(index: int, text: str):
        await asyncio.sleep(index * stagger_s)
        return await batcher.submit(text)

    return await asyncio.gather(*(one(i, t) for i, t in enumerate(texts)), return_exceptions=True)


def run_batcher(model: CountingModel, texts: list[str], max_batch_size: int, max_wait_s: float, **kw) -> list:
    async def main() -> list:
        batcher = Batcher(model.predict_batch, max_batch_size, max_wait_s)
        batcher.start()
        try:
            return await serve(batcher, texts, **kw)
        finally:
            await batcher.close()

    return asyncio.run(main())


def test_32_concurrent_requests_answer_like_the_model_in_one_call(predictor: ColaOnnxPredictor) -> None:
    texts = sentences(32)
    model = CountingModel(predictor)
    results = run_batcher(model, texts, max_batch_size=32, max_wait_s=0.5)
    assert model.calls == [texts]  # one model call, every sentence in the order it came
    for text, result in zip(texts, results, strict=True):
        assert result["sentence"] == text
        assert_close(result, predictor.predict(text))


def test_no_batch_is_larger_than_max_batch_size(predictor: ColaOnnxPredictor) -> None:
    texts = sentences(20)
    model = CountingModel(predictor)
    results = run_batcher(model, texts, max_batch_size=8, max_wait_s=0.5)
    assert [len(call) for call in model.calls] == [8, 8, 4]
    assert [text for call in model.calls for text in call] == texts
    assert [r["sentence"] for r in results] == texts


def test_max_wait_bounds_how_long_the_first_request_waits(predictor: ColaOnnxPredictor) -> None:
    model = CountingModel(predictor)
    began = time.perf_counter()
    run_batcher(model, sentences(1), max_batch_size=32, max_wait_s=0.3)
    waited = time.perf_counter() - began
    assert 0.3 <= waited < 2.0  # alone, it waits the whole 0.3 s for company, then goes
    # A request 50 ms after the first joins its batch; one 600 ms later (past 0.3 s) gets a batch of its own.
    model = CountingModel(predictor)
    run_batcher(model, sentences(2), max_batch_size=32, max_wait_s=0.3, stagger_s=0.05)
    assert [len(call) for call in model.calls] == [2]
    model = CountingModel(predictor)
    run_batcher(model, sentences(2), max_batch_size=32, max_wait_s=0.3, stagger_s=0.6)
    assert [len(call) for call in model.calls] == [1, 1]
    # max_wait 0: a lone request goes straight to the model.
    model = CountingModel(predictor)
    began = time.perf_counter()
    run_batcher(model, sentences(1), max_batch_size=32, max_wait_s=0.0)
    assert time.perf_counter() - began < 0.3


def test_a_failing_batch_fails_only_its_own_requests(predictor: ColaOnnxPredictor) -> None:
    texts = sentences(6)
    model = CountingModel(predictor, fail_text=texts[1])

    async def main() -> tuple[list, list]:
        batcher = Batcher(model.predict_batch, max_batch_size=3, max_wait_s=0.5)
        batcher.start()
        try:
            return await serve(batcher, texts[:3]), await serve(batcher, texts[3:])
        finally:
            await batcher.close()

    first, second = asyncio.run(main())
    assert all(isinstance(r, ValueError) and texts[1] in str(r) for r in first)
    for text, result in zip(texts[3:], second, strict=True):
        assert_close(result, predictor.predict(text))
    assert len(model.calls) == 2


def test_a_cancelled_request_is_left_out_and_the_others_answered(predictor: ColaOnnxPredictor) -> None:
    texts = sentences(3)
    model = CountingModel(predictor)

    async def main() -> list:
        batcher = Batcher(model.predict_batch, max_batch_size=32, max_wait_s=0.2)
        batcher.start()
        tasks = [asyncio.create_task(batcher.submit(t)) for t in texts]
        await asyncio.sleep(0.05)
        tasks[1].cancel()  # its client went away while it waited for the batch
        results = await asyncio.gather(*tasks, return_exceptions=True)
        # Cancelled while the model runs: the batcher must not trip over the cancelled future.
        model.release.clear()
        late = [asyncio.create_task(batcher.submit(t)) for t in texts]
        await asyncio.sleep(0.3)
        late[0].cancel()
        model.release.set()
        results += await asyncio.gather(*late, return_exceptions=True)
        results.append(await batcher.submit(texts[2]))  # still serving
        await batcher.close()
        return results

    results = asyncio.run(main())
    assert model.calls[0] == [texts[0], texts[2]]  # no model time for the cancelled request
    assert isinstance(results[1], asyncio.CancelledError) and isinstance(results[3], asyncio.CancelledError)
    for index in (0, 2, 4, 5, 6):
        assert_close(results[index], predictor.predict(results[index]["sentence"]))


def test_close_answers_what_is_queued_then_refuses(predictor: ColaOnnxPredictor) -> None:
    texts = sentences(10)
    model = CountingModel(predictor)

    async def main() -> list:
        batcher = Batcher(model.predict_batch, max_batch_size=4, max_wait_s=0.0)
        batcher.start()
        tasks = [asyncio.create_task(batcher.submit(t)) for t in texts]
        await asyncio.sleep(0)  # every request is queued
        await batcher.close()
        with pytest.raises(BatcherClosed):
            await batcher.submit(texts[0])
        return await asyncio.gather(*tasks)

    results = asyncio.run(main())
    assert [r["sentence"] for r in results] == texts


def test_close_does_not_hang_on_a_stuck_model(predictor: ColaOnnxPredictor) -> None:
    model = CountingModel(predictor)
    model.release.clear()

    async def main() -> list:
        batcher = Batcher(model.predict_batch, max_batch_size=2, max_wait_s=0.0)
        batcher.start()
        tasks = [asyncio.create_task(batcher.submit(t)) for t in sentences(5)]
        await asyncio.sleep(0.05)
        began = time.perf_counter()
        await batcher.close(timeout_s=0.2)
        assert time.perf_counter() - began < 5
        return await asyncio.gather(*tasks, return_exceptions=True)

    try:
        results = asyncio.run(main())
    finally:
        model.release.set()
    assert all(isinstance(r, BatcherClosed) for r in results)


def test_batching_settings_have_defaults_and_name_a_bad_variable() -> None:
    assert (read_settings({}).batch_max_size, read_settings({}).batch_max_wait_ms) == (32, 0.0)
    chosen = read_settings({"BATCH_MAX_SIZE": "8", "BATCH_MAX_WAIT_MS": "1.5"})
    assert (chosen.batch_max_size, chosen.batch_max_wait_ms) == (8, 1.5)
    for name, value in [("BATCH_MAX_SIZE", "0"), ("BATCH_MAX_SIZE", "65"), ("BATCH_MAX_SIZE", "x")]:
        with pytest.raises(CourseError, match=f"{name}='{value}' is not a whole number from 1 to 64"):
            read_settings({name: value})
    for value in ("-1", "nan", "2ms", "5000"):
        with pytest.raises(CourseError, match=f"BATCH_MAX_WAIT_MS='{value}' is not a number of milliseconds"):
            read_settings({"BATCH_MAX_WAIT_MS": value})


# ----------------------------------------------------------------------------- through the app


@pytest.fixture(scope="module")
def client(exported: dict) -> TestClient:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODEL_DIR", str(exported["export_dir"]))
        for name in ("MODEL_VARIANT", "ORT_THREADS", "BATCH_MAX_SIZE", "BATCH_MAX_WAIT_MS"):
            patch.delenv(name, raising=False)
        # raise_server_exceptions=False: a 500 is answered as a client sees it. One client for the module:
        # the batcher belongs to the event loop its lifespan ran on.
        with TestClient(app, raise_server_exceptions=False) as test_client:
            yield test_client


@pytest.mark.parametrize(("body", "message"), BAD_BODIES)
def test_bad_input_gets_the_same_answer_as_predict(client: TestClient, body: object, message: str) -> None:
    plain, dynamic = client.post("/predict", json=body), client.post("/predict/dynamic", json=body)
    assert dynamic.status_code == plain.status_code == 422
    assert dynamic.json() == plain.json() and message in dynamic.json()["error"]


@pytest.mark.parametrize(
    "content", [b'{"text": "The dog', b"", b'{"text": "The dog \xff sleeps."}', b"[" * 100_000], ids=str
)
def test_undecodable_bodies_get_the_same_answer_as_predict(client: TestClient, content: bytes) -> None:
    headers = {"content-type": "application/json"}
    plain = client.post("/predict", content=content, headers=headers)
    dynamic = client.post("/predict/dynamic", content=content, headers=headers)
    assert (dynamic.status_code, dynamic.json()) == (plain.status_code, plain.json())


def test_a_model_error_is_the_same_500_as_predict(client: TestClient, predictor: ColaOnnxPredictor) -> None:
    text = "The dog sleeps."
    failing = CountingModel(predictor, fail_text=text)
    batcher = client.app.state.batcher
    real = batcher.predict_batch
    batcher.predict_batch = failing.predict_batch
    try:
        failed = client.post("/predict/dynamic", json={"text": text})
        assert failed.status_code == 500
        assert failed.json() == {"error": "the service failed on this request (ValueError): see its log"}
        assert client.post("/predict/dynamic", json={"text": "A dog barks."}).status_code == 200
    finally:
        batcher.predict_batch = real


def test_without_a_model_the_same_500_as_predict(exported: dict) -> None:
    serving = app.state.predictor, app.state.batcher
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MODEL_DIR", str(exported["export_dir"]))
            with TestClient(app):
                pass  # start-up starts the batcher, shutdown closes it
        assert app.state.batcher is None
        unstarted = TestClient(app, raise_server_exceptions=False)
        plain = unstarted.post("/predict", json={"text": "The dog sleeps."})
        dynamic = unstarted.post("/predict/dynamic", json={"text": "The dog sleeps."})
        assert (
            (dynamic.status_code, dynamic.json())
            == (plain.status_code, plain.json())
            == (
                500,
                {"error": "the service failed on this request (RuntimeError): see its log"},
            )
        )
    finally:
        app.state.predictor, app.state.batcher = serving


def test_real_server_answers_32_concurrent_clients_like_the_model(exported: dict, predictor: ColaOnnxPredictor) -> None:
    texts = sentences(96)
    env = {"BATCH_MAX_SIZE": "16", "BATCH_MAX_WAIT_MS": "2"}
    with local_server(exported["export_dir"], env=env) as url, httpx.Client(base_url=url, trust_env=False) as http:
        with ThreadPoolExecutor(max_workers=32) as pool:
            answers = list(pool.map(lambda t: http.post("/predict/dynamic", json={"text": t}), texts))
    assert [a.status_code for a in answers] == [200] * len(texts)
    for text, answer in zip(texts, answers, strict=True):
        assert answer.json()["text"] == text
        assert_close(answer.json(), predictor.predict(text))


def test_a_real_server_stopped_under_load_answers_what_it_accepted_and_exits_cleanly(exported: dict) -> None:
    """SIGTERM while 32 clients wait on /predict/dynamic: uvicorn finishes them, then the batcher closes."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile(mode="w+") as output:
        process = subprocess.Popen(
            server_command(port),
            cwd=WEEK_DIR,
            env={**os.environ, "MODEL_DIR": str(exported["export_dir"]), "BATCH_MAX_WAIT_MS": "50"},
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_ready(url + "/ready", process, output)

            def post(text: str) -> int | str:
                try:
                    return httpx.post(
                        url + "/predict/dynamic", json={"text": text}, trust_env=False, timeout=30
                    ).status_code
                except httpx.TransportError as error:  # sent after the server stopped accepting
                    return type(error).__name__

            with ThreadPoolExecutor(max_workers=32) as pool:
                answers = [pool.submit(post, text) for text in sentences(32)]
                time.sleep(0.02)  # the first requests are waiting in the batcher (BATCH_MAX_WAIT_MS=50)
                process.send_signal(signal.SIGTERM)
                statuses = [answer.result() for answer in answers]
            returncode = process.wait(timeout=30)
        finally:
            stop(process)
        output.seek(0)
        log = output.read()
    assert returncode in (0, -signal.SIGTERM), log  # uvicorn re-raises the signal once it has shut down cleanly
    assert 200 in statuses and all(status == 200 or isinstance(status, str) for status in statuses), statuses
    assert "Application shutdown complete" in log and "Traceback" not in log and "Task was destroyed" not in log, log
