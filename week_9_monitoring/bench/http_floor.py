"""The API without the model: what one uvicorn worker's HTTP path costs on its own.

bench/bench_api.py serves these apps exactly as it serves app.py (`uvicorn MODULE:APP`, one worker)
and sends them the same /predict requests. Neither loads a model; both answer a fixed prediction.

    bare_app                     plain ASGI: reads the body, sends fixed JSON. No framework.
    fastapi_app  POST /predict        FastAPI with app.py's schemas and a plain `def` endpoint,
                                      as app.py has (FastAPI runs it in a worker thread).
                 POST /predict-async  the same as `async def`: no hop to a thread.

app.py's /predict does everything fastapi_app's /predict does and runs the model as well, so
fastapi_app's throughput is a ceiling for /predict on one worker. The other two show what is
left without the hop to a thread, and without any framework at all.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI

from schemas import Health, Prediction, PredictRequest

FIXED = {"label": "acceptable", "score": 0.9, "probabilities": {"unacceptable": 0.1, "acceptable": 0.9}}
FIXED_JSON = json.dumps({"text": "", **FIXED}).encode()

Message = MutableMapping[str, Any]


async def bare_app(
    scope: Message, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
) -> None:
    """Answer every HTTP request, whatever its path, with FIXED_JSON once its body has arrived."""
    if scope["type"] == "lifespan":  # nothing to load or unload: acknowledge start-up and shutdown
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    more_body = True
    while more_body:
        message = await receive()
        more_body = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": FIXED_JSON})


fastapi_app = FastAPI(title="CoLA API without the model (benchmark floor)")


@fastapi_app.post("/predict", response_model=Prediction)
def predict(body: PredictRequest) -> Prediction:
    """app.py's /predict, less the model call."""
    return Prediction(text=body.text, **FIXED)


@fastapi_app.post("/predict-async", response_model=Prediction)
async def predict_async(body: PredictRequest) -> Prediction:
    """The same, run on the event loop (fine here: there is no CPU work to keep off it)."""
    return Prediction(text=body.text, **FIXED)


@fastapi_app.get("/ready", response_model=Health)
async def ready() -> Health:
    """support/local_server.py waits for this before the load starts."""
    return Health(status="ok")
