"""The API's request and response bodies (pydantic v2): what the service accepts and answers.

The limits are part of the API contract, so they are constants that show up in the OpenAPI
docs at /docs, not settings that change between deployments.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr

# A CoLA sentence is a few dozen characters; the model reads at most max_length tokens anyway.
MAX_TEXT_CHARS = 1000
MAX_BATCH_ITEMS = 64

# What str.strip() removes (str.isspace() is true for no character above U+3000), spelt out for the
# OpenAPI `pattern` below, so the published schema and not_blank() agree on every character: a
# fuzzer (tests/test_openapi_fuzz.py) sends whatever the schema allows and expects it accepted.
WHITESPACE = "".join(chr(code) for code in range(0x3001) if chr(code).isspace())
# "At least one character that is not whitespace" (a JSON Schema pattern matches anywhere in the text).
NOT_ONLY_WHITESPACE = f"[^{WHITESPACE}]"


def not_blank(text: str) -> str:
    """Reject text that is only whitespace (empty text is caught by min_length)."""
    if not text.strip():  # strip() removes exactly the characters in WHITESPACE
        raise ValueError("text is only whitespace: send a sentence to classify")
    return text


# StrictStr: a number or a list is an error, not silently turned into "123".
Text = Annotated[
    StrictStr,
    Field(
        min_length=1,
        max_length=MAX_TEXT_CHARS,
        examples=["The dogs are chasing a cat."],
        json_schema_extra={"pattern": NOT_ONLY_WHITESPACE},  # documents not_blank(), which checks it
    ),
    AfterValidator(not_blank),
]


class PredictRequest(BaseModel):
    """One sentence to classify."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field ("txt") is an error, not ignored

    text: Text


class BatchRequest(BaseModel):
    """Up to MAX_BATCH_ITEMS sentences, classified in one model call."""

    model_config = ConfigDict(extra="forbid")

    texts: list[Text] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)


class Prediction(BaseModel):
    """The model's answer for one sentence."""

    text: str
    label: str = Field(examples=["acceptable"])
    score: float = Field(ge=0.0, le=1.0, description="probability of the predicted label")
    probabilities: dict[str, float] = Field(examples=[{"unacceptable": 0.03, "acceptable": 0.97}])


class BatchPrediction(BaseModel):
    """One prediction per sentence, in the order they were sent."""

    predictions: list[Prediction]


class Health(BaseModel):
    status: str


class EventsState(BaseModel):
    """Where the prediction events go, and whether EVENTS_FILE is being written."""

    file: str | None = Field(description="EVENTS_FILE, or null when events go to stdout only")
    status: Literal["ok", "failing", "stdout only"] = Field(
        description="failing: the last write to the file failed; predictions are still answered"
    )
    write_errors: int = Field(ge=0, description="failed writes since start-up")
    last_error: str | None = Field(description="why the file cannot be written, while it cannot")


class RegisteredModel(BaseModel):
    """Which version of the MLflow Model Registry the service loaded (monitoring/registry.py)."""

    name: str = Field(examples=["cola-onnx"])
    version: int = Field(examples=[3])


class Readiness(BaseModel):
    status: str
    model_dir: str
    variant: str
    labels: list[str]
    model_version: str = Field(description="data version + checkpoint hash; every prediction event carries it")
    registered: RegisteredModel | None = Field(
        description="the registered model and version MODEL_DIR is a copy of (its registered_model.json); "
        "null when MODEL_DIR was not fetched from the registry"
    )
    events: EventsState = Field(description="the events file's state: /ready stays 200 while it fails")


class NotReady(BaseModel):
    """/ready's answer while the model is not loaded (503)."""

    status: str = Field(examples=["not ready"])
    error: str


class ErrorBody(BaseModel):
    """Every answer that is not a success carries one line that says what is wrong and what to do."""

    error: str = Field(description="what is wrong and how to fix it, in one line")


class BadInput(ErrorBody):
    """422: the request was refused; `detail` lists each problem as FastAPI reports it."""

    detail: list[dict[str, Any]] = Field(description="one entry per problem: type, loc (where), msg")
