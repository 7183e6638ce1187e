"""The classifier as an AWS Lambda function: the ONNX model behind API Gateway, or invoked directly.

Events it accepts (see tests/fixtures/events/ for a full example of each):
  API Gateway REST API, Lambda proxy (payload 1.0)   {"httpMethod": "POST", "body": "{\"text\": ...}", ...}
  API Gateway HTTP API (payload 2.0)                 {"version": "2.0", "requestContext": {"http": ...}, "body": ...}
  a direct invocation (aws lambda invoke, a test)    {"sentence": "..."}

Every answer has the shape API Gateway expects: statusCode, headers, and a JSON body. Bad input
is a 400 whose body says what is wrong; nothing bad in an event raises an unhandled exception.

The model is loaded once per execution environment, when Lambda imports this module (the
"init" phase, before the first event), not in every call of `handler`.

Every prediction prints one JSON event line (monitoring/prediction_events.py) on stdout: Lambda sends it
to CloudWatch Logs, where a subscription can forward it to OpenSearch (monitoring/cloudwatch_to_opensearch.py).
"""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any

from pydantic import ValidationError

from inference_onnx import ColaOnnxPredictor
from monitoring.prediction_events import EventSink, build_event, new_request_id
from schemas import PredictRequest
from settings import Settings, read_registered, read_settings

log = logging.getLogger(__name__)
log.setLevel(logging.INFO)

HEADERS = {"Content-Type": "application/json"}
EXAMPLE_BODY = '{"text": "The dog sleeps."}'


def load_predictor(settings: Settings) -> ColaOnnxPredictor:
    """The model from MODEL_DIR (the image sets it); a missing or corrupt model fails the init, loudly."""
    return ColaOnnxPredictor(settings.model_dir, settings.variant, settings.threads)


# Outside the handler: Lambda runs this once per execution environment, and every event reuses it.
SETTINGS = read_settings()
PREDICTOR = load_predictor(SETTINGS)
EVENTS = EventSink()  # stdout only: in Lambda that is CloudWatch Logs
# The registry version the image baked (see the README: fetch before the build), for the cold-start log.
REGISTERED = read_registered(SETTINGS.model_dir)
log.info(
    "cold start: model %s from %s, registered %s",
    PREDICTOR.config.get("model_version"),
    SETTINGS.model_dir,
    f"{REGISTERED['name']} version {REGISTERED['version']}" if REGISTERED else "no (not fetched from the registry)",
)


class BadRequest(Exception):
    """The event or its body is not something this function can classify; the message says why."""


def response(status: int, body: dict) -> dict:
    """An API Gateway proxy response (valid for payload 1.0 and 2.0)."""
    return {"statusCode": status, "headers": HEADERS, "body": json.dumps(body), "isBase64Encoded": False}


def event_kind(event: Any) -> str:
    """'rest' (payload 1.0), 'http' (payload 2.0) or 'direct'; BadRequest for anything else."""
    if not isinstance(event, dict):
        raise BadRequest(f"the event must be a JSON object, not {type(event).__name__}")
    if event.get("version") == "2.0" and "requestContext" in event:
        return "http"
    if "httpMethod" in event and "requestContext" in event:
        return "rest"
    if "sentence" in event:
        return "direct"
    raise BadRequest(
        'unknown event: send {"sentence": "..."}, or call through API Gateway with a body like ' + EXAMPLE_BODY
    )


def method_of(event: dict, kind: str) -> str:
    if kind == "http":
        return str(event["requestContext"].get("http", {}).get("method", ""))
    return str(event.get("httpMethod", ""))


def text_of(event: dict, kind: str) -> str:
    """The sentence to classify, validated like the week 5 API validates {"text": ...}."""
    if kind == "direct":
        candidate: Any = {"text": event.get("sentence")}
    else:
        raw = event.get("body")
        if raw is None or raw == "":
            raise BadRequest(f"the request has no body: send e.g. {EXAMPLE_BODY}")
        if event.get("isBase64Encoded"):
            try:
                raw = base64.b64decode(raw, validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError) as error:
                raise BadRequest(f"the body is marked base64 but does not decode to UTF-8 text ({error})") from error
        try:
            candidate = json.loads(raw)
        except json.JSONDecodeError as error:
            raise BadRequest(f"the body is not valid JSON ({error.msg}): send e.g. {EXAMPLE_BODY}") from error
    try:
        return PredictRequest.model_validate(candidate).text
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors())
        if kind == "direct":
            problems = problems.replace("text:", "sentence:")
        raise BadRequest(problems) from error


def handler(event: Any, context: Any) -> dict:
    """Classify the sentence in `event`; always returns a proxy response, 400 for bad input."""
    try:
        kind = event_kind(event)
        if kind != "direct" and method_of(event, kind) != "POST":
            return response(405, {"error": f"use POST, not {method_of(event, kind) or 'no method'}"})
        text = text_of(event, kind)
    except BadRequest as error:
        log.info("bad request: %s", error)
        return response(400, {"error": str(error)})
    started = time.perf_counter()
    result = PREDICTOR.predict(text)
    latency_ms = (time.perf_counter() - started) * 1000
    request_id = getattr(context, "aws_request_id", None) or new_request_id()
    EVENTS.emit([
        build_event(
            result,
            text,
            request_id=request_id,
            index=0,
            source="lambda",
            model_config=PREDICTOR.config,
            latency_ms=latency_ms,
            log_text=SETTINGS.log_text,
        )
    ])
    return response(200, {"text": text, **{k: result[k] for k in ("label", "score", "probabilities")}})

