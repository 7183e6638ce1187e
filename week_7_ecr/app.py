"""The classifier as a web service: FastAPI in front of the ONNX model (no torch on this path).

    uvicorn app:app --port 8000          # then open http://127.0.0.1:8000/docs

    POST /predict        {"text": "The dogs are chasing a cat."}  -> label, score, probabilities
    POST /predict/batch  {"texts": ["...", "..."]}                  -> one prediction per text
    POST /predict/dynamic  as /predict, through the dynamic batcher (batcher.py): one model call
                           for every sentence waiting at the time, faster under concurrent load
    GET  /health         the process is alive
    GET  /ready          the model is loaded and the service can answer

The model is loaded once, at start-up, from MODEL_DIR (see settings.py). If it is missing or
corrupt the service does not start: it logs what is wrong and how to fix it, and exits.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from batcher import Batcher
from errors import CourseError
from inference_onnx import ColaOnnxPredictor
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
from settings import read_settings

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
    except CourseError as error:
        # One line, the one to read in `docker logs`; DropStartupTraceback keeps the traceback out.
        log.error("cannot start the service: %s", error)
        raise
    log.info("model loaded from %s (%s)", settings.model_dir, settings.variant)
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
    version="5.0.0",
    lifespan=lifespan,
)
app.state.predictor = None
app.state.batcher = None


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


# The prediction endpoints are plain `def`: FastAPI runs them in a worker thread, so the model's
# CPU work never blocks the event loop that answers /health and accepts connections.
@app.post("/predict", response_model=Prediction, responses=REFUSALS)
def predict(body: PredictRequest, request: Request) -> Prediction:
    """Classify one sentence."""
    result = predictor_of(request).predict(body.text)
    return Prediction(text=body.text, **{k: result[k] for k in ("label", "score", "probabilities")})


# The same request and answer as /predict, on the event loop: the request waits (without a thread)
# for the batcher, which runs the model on its own thread for every sentence waiting at the time.
@app.post("/predict/dynamic", response_model=Prediction, responses=REFUSALS)
async def predict_dynamic(body: PredictRequest, request: Request) -> Prediction:
    """Classify one sentence, in one model call with the others waiting (BATCH_MAX_SIZE, BATCH_MAX_WAIT_MS)."""
    result = await batcher_of(request).submit(body.text)
    return Prediction(text=body.text, **{k: result[k] for k in ("label", "score", "probabilities")})


@app.post("/predict/batch", response_model=BatchPrediction, responses=REFUSALS)
def predict_batch(body: BatchRequest, request: Request) -> BatchPrediction:
    """Classify up to 64 sentences in one model call."""
    results = predictor_of(request).predict_batch(body.texts)
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
    """Readiness: the model is loaded. Send traffic only when this says ready."""
    predictor = request.app.state.predictor
    if predictor is None:
        return JSONResponse(status_code=503, content={"status": "not ready", "error": "the model is not loaded"})
    return Readiness(
        status="ready", model_dir=str(predictor.export_dir), variant=predictor.variant, labels=predictor.labels
    )
