"""The classifier as a web service: FastAPI in front of the ONNX model (no torch on this path).

    uvicorn app:app --port 8000          # then open http://127.0.0.1:8000/docs

    POST /predict        {"text": "The dogs are chasing a cat."}  -> label, score, probabilities
    POST /predict/batch  {"texts": ["...", "..."]}                  -> one prediction per text
    POST /predict/dynamic  as /predict, through the dynamic batcher (batcher.py): one model call
                           for every sentence waiting at the time, faster under concurrent load
    GET  /health         the process is alive
    GET  /ready          the model is loaded and the service can answer
    GET  /metrics        Prometheus metrics: requests, latency, predicted labels, score histogram

The model is loaded once, at start-up, from MODEL_DIR (see settings.py). If it is missing or
corrupt the service does not start: it logs what is wrong and how to fix it, and exits.

Every prediction emits one JSON event on stdout (and into EVENTS_FILE when set): see
monitoring/prediction_events.py. A request's X-Request-ID header, when sent, becomes the events' request_id;
the response always carries the X-Request-ID its events were logged with.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from batcher import Batcher
from errors import CourseError
from inference_onnx import ColaOnnxPredictor
from monitoring import prediction_metrics
from monitoring.prediction_events import EventSink, build_event, new_request_id
from schemas import (
    BadInput,
    BatchPrediction,
    BatchRequest,
    ErrorBody,
    Health,
    NotReady,
    Prediction,
    PredictRequest,
    Readiness,
)
from settings import read_registered, read_settings

# uvicorn configures this logger, so the service's lines appear in its format and at its level.
log = logging.getLogger("uvicorn.error")


class DropStartupTraceback(logging.Filter):
    """Starlette hands uvicorn the whole traceback of a failed start-up. For a CourseError the one
    line the lifespan logs says what is wrong and how to fix it, so its traceback is left out."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not (text.startswith("Traceback") and "errors.CourseError: " in text)


log.addFilter(DropStartupTraceback())


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the model before the first request is accepted; drop it at shutdown."""
    try:
        settings = read_settings()
        app.state.predictor = ColaOnnxPredictor(settings.model_dir, settings.variant, settings.threads)
        batcher = Batcher(app.state.predictor.predict_batch, settings.batch_max_size, settings.batch_max_wait_ms / 1000)
        app.state.events = EventSink(settings.events_file, on_error=prediction_metrics.count_event_write_error, log=log)
    except CourseError as error:
        # One line, the one to read in `docker logs`; DropStartupTraceback keeps the traceback out.
        log.error("cannot start the service: %s", error)
        raise
    app.state.log_text = settings.log_text
    # Read once, with the model: a cache swapped under a running service must not change what /ready claims.
    app.state.registered = read_registered(settings.model_dir)
    prediction_metrics.start_label_series(app.state.predictor.labels)
    log.info("model loaded from %s (%s)", settings.model_dir, settings.variant)
    if app.state.registered:
        log.info("registered model %(name)s version %(version)s", app.state.registered)
    log.info(
        "prediction events: stdout%s; sentences %s",
        f" and {settings.events_file}" if settings.events_file else "",
        "logged (LOG_TEXT=true)" if settings.log_text else "hashed (set LOG_TEXT=true to log them)",
    )
    batcher.start()
    app.state.batcher = batcher
    try:
        yield
    finally:
        # uvicorn has finished the open requests by now; close() still answers anything queued.
        app.state.batcher = None
        await batcher.close()
        app.state.predictor = None


app = FastAPI(
    title="CoLA sentence acceptability",
    description="Is an English sentence grammatically acceptable? A BERT-tiny classifier exported to ONNX.",
    version="9.0.0",
    lifespan=lifespan,
)
app.state.predictor = None
app.state.batcher = None
app.state.registered = None
prediction_metrics.instrument(app)


EXAMPLE_BODY = '{"text": "The dog sleeps."}'


def describe(error: dict, content_type: str) -> str:
    """One readable line for one validation error, e.g. `texts.3: String should have at most 1000 characters`."""
    where = ".".join(str(part) for part in error["loc"] if part != "body")
    if error["type"] == "json_invalid":
        reason = error.get("ctx", {}).get("error", "")
        return f"the body is not valid JSON ({reason}): send e.g. {EXAMPLE_BODY}"
    if where == "" and error["type"] == "missing":
        return f"the body is empty: send e.g. {EXAMPLE_BODY}"
    if where == "" and error["type"] == "model_attributes_type":
        if "json" not in content_type:
            sent_as = f"as {content_type}" if content_type else "without a Content-Type"
            return f"the body was sent {sent_as}: send JSON with Content-Type: application/json"
        return f"the body must be a JSON object, e.g. {EXAMPLE_BODY}"
    return f"{where or 'the body'}: {error['msg']}"


class ErrorResponse(JSONResponse):
    """JSON with every non-ASCII character escaped: an error may quote what the client sent, and a
    lone surrogate (`"\\ud800"` in the JSON it sent) cannot be encoded as UTF-8, so it would turn
    a 422 into a 500."""

    def render(self, content: object) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


@app.exception_handler(RequestValidationError)
async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with a one-line `error` a person can read, plus FastAPI's structured `detail`."""
    content_type = request.headers.get("content-type", "")
    problems = [describe(error, content_type) for error in exc.errors()]
    # A body that is not JSON is quoted as bytes, which need not be UTF-8: shown with \x escapes.
    detail = jsonable_encoder(exc.errors(), custom_encoder={bytes: lambda raw: raw.decode("utf-8", "backslashreplace")})
    return ErrorResponse(status_code=422, content={"error": "; ".join(problems), "detail": detail})


def unreadable_body(cause: BaseException | None) -> str:
    """The line for a JSON body that FastAPI could not even parse (it would answer a bare 400)."""
    if isinstance(cause, UnicodeDecodeError):
        return f"the body is not UTF-8 ({cause.reason} at byte {cause.start}): send JSON encoded as UTF-8"
    if isinstance(cause, RecursionError):
        return f"the body's JSON is nested too deeply to read: send e.g. {EXAMPLE_BODY}"
    return f"the body could not be read as JSON ({type(cause).__name__}): send e.g. {EXAMPLE_BODY}"


@app.exception_handler(HTTPException)
async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    """Every other refusal gets the same `error` line. FastAPI raises a 400 only for a JSON body it
    cannot parse (not UTF-8, nested too deeply): that is bad input like any other, so a 422."""
    if exc.status_code == 400 and exc.__cause__ is not None:
        line = unreadable_body(exc.__cause__)
        problem = {"type": "body_unreadable", "loc": ["body"], "msg": line}
        return ErrorResponse(status_code=422, content={"error": line, "detail": [problem]})
    if exc.status_code == 404:
        line = f"there is no {request.url.path}: the endpoints are listed at /docs"
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "another method")
        line = f"{request.method} is not allowed on {request.url.path}: use {allowed}"
    else:
        line = str(exc.detail)
    return ErrorResponse(
        status_code=exc.status_code, content={"error": line, "detail": exc.detail}, headers=exc.headers
    )


@app.exception_handler(Exception)
async def server_error(request: Request, exc: Exception) -> JSONResponse:
    """500 as JSON with the `error` line (uvicorn still logs the traceback): a bug, never the client's fault."""
    return ErrorResponse(
        status_code=500, content={"error": f"the service failed on this request ({type(exc).__name__}): see its log"}
    )


# Every status an endpoint can answer is in the OpenAPI document, with the body it carries.
REFUSALS = {
    422: {"model": BadInput, "description": "the request was refused: `error` says why and what to send"},
    500: {"model": ErrorBody, "description": "the service failed (a bug): `error` says so, the log has the traceback"},
}


def predictor_of(request: Request) -> ColaOnnxPredictor:
    predictor = request.app.state.predictor
    if predictor is None:  # only between shutdown and exit: the lifespan loads it before serving
        raise RuntimeError("the model is not loaded")
    return predictor


def batcher_of(request: Request) -> Batcher:
    batcher = request.app.state.batcher
    if batcher is None or not batcher.running:  # the same 500 as /predict without a model
        raise RuntimeError("the model is not loaded")
    return batcher


# A client's own request id is kept only if it is short and plain: it goes into logs and indexes.
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_of(request: Request) -> str:
    sent = request.headers.get("x-request-id", "")
    return sent if REQUEST_ID.match(sent) else new_request_id()


def classify(request: Request, response: Response, texts: list[str]) -> list[dict]:
    """Run the model on `texts`, then emit one event and update the metrics per prediction."""
    predictor = predictor_of(request)
    started = time.perf_counter()
    results = predictor.predict_batch(texts)
    return record(request, response, texts, results, (time.perf_counter() - started) * 1000)


def record(
    request: Request, response: Response, texts: list[str], results: list[dict], latency_ms: float
) -> list[dict]:
    """One event and the metrics per prediction, and the X-Request-ID header; returns `results`."""
    predictor = predictor_of(request)
    request_id = request_id_of(request)
    event_prefix = new_request_id()  # never the client's id: a reused X-Request-ID would overwrite events
    events = [
        build_event(
            result,
            text,
            request_id=request_id,
            index=index,
            source="api",
            model_config=predictor.config,
            latency_ms=latency_ms,
            log_text=request.app.state.log_text,
            event_prefix=event_prefix,
        )
        for index, (text, result) in enumerate(zip(texts, results, strict=True))
    ]
    request.app.state.events.emit(events)
    for result in results:
        prediction_metrics.observe(result["label"], result["score"])
    response.headers["X-Request-ID"] = request_id
    return results


# The prediction endpoints are plain `def`: FastAPI runs them in a worker thread, so the model's
# CPU work never blocks the event loop that answers /health and accepts connections.
@app.post("/predict", response_model=Prediction, responses=REFUSALS)
def predict(body: PredictRequest, request: Request, response: Response) -> Prediction:
    """Classify one sentence."""
    result = classify(request, response, [body.text])[0]
    return Prediction(text=body.text, **{k: result[k] for k in ("label", "score", "probabilities")})


# The same request, answer, events and metrics as /predict, on the event loop: the request waits (without a
# thread) for the batcher, which runs the model on its own thread for every sentence waiting at the time.
# The events' latency_ms is the request's wait for the batcher plus its batch's model call.
@app.post("/predict/dynamic", response_model=Prediction, responses=REFUSALS)
async def predict_dynamic(body: PredictRequest, request: Request, response: Response) -> Prediction:
    """Classify one sentence, in one model call with the others waiting (BATCH_MAX_SIZE, BATCH_MAX_WAIT_MS)."""
    started = time.perf_counter()
    result = await batcher_of(request).submit(body.text)
    record(request, response, [body.text], [result], (time.perf_counter() - started) * 1000)
    return Prediction(text=body.text, **{k: result[k] for k in ("label", "score", "probabilities")})


@app.post("/predict/batch", response_model=BatchPrediction, responses=REFUSALS)
def predict_batch(body: BatchRequest, request: Request, response: Response) -> BatchPrediction:
    """Classify up to 64 sentences in one model call."""
    results = classify(request, response, body.texts)
    return BatchPrediction(
        predictions=[
            Prediction(text=text, **{k: result[k] for k in ("label", "score", "probabilities")})
            for text, result in zip(body.texts, results, strict=True)
        ]
    )


@app.get("/health", response_model=Health)
async def health() -> Health:
    """Liveness: the process answers. Restart it if this fails."""
    return Health(status="ok")


@app.get(
    "/ready", response_model=Readiness, responses={503: {"model": NotReady, "description": "the model is not loaded"}}
)
async def ready(request: Request) -> Readiness | JSONResponse:
    """Readiness: the model is loaded. Send traffic only when this says ready.

    `events` says whether EVENTS_FILE is being written. A failing file keeps this 200: the service
    still answers predictions, and the failure is counted in /metrics and logged.
    """
    predictor = request.app.state.predictor
    if predictor is None:
        return JSONResponse(status_code=503, content={"status": "not ready", "error": "the model is not loaded"})
    return Readiness(
        status="ready",
        model_dir=str(predictor.export_dir),
        variant=predictor.variant,
        labels=predictor.labels,
        model_version=str(predictor.config.get("model_version") or "unknown"),
        registered=request.app.state.registered,
        events=request.app.state.events.state(),
    )
