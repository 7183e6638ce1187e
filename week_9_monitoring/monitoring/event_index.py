"""Where prediction events live in OpenSearch: one index per day, typed by one index template.

    from monitoring.event_index import ensure_template, index_name
    ensure_template(client)                          # once before shipping; monitoring/shipper.py does it for you
    index_name("2026-11-23T15:04:05.123Z")           # -> "predictions-2026.11.23"

Every index whose name matches `predictions-*` is created with MAPPING, so each field of a
PredictionEvent (monitoring/prediction_events.py) has an explicit type: `label` is a keyword you can count
with a terms aggregation, `score` a float you can put in a histogram, `timestamp` a date that
Dashboards puts on its time axis. Without a template OpenSearch would guess (and make `label`
a full-text field that cannot be aggregated).

One index per day keeps deleting old events cheap (drop an index instead of deleting documents)
and lets a retention policy (ISM) act on whole days.
"""

from __future__ import annotations

from datetime import UTC, datetime

from opensearchpy import NotFoundError, OpenSearch

from errors import CourseError

INDEX_PREFIX = "predictions-"
INDEX_PATTERN = INDEX_PREFIX + "*"
TEMPLATE_NAME = "predictions"
# Bump it whenever MAPPING or SETTINGS change: ensure_template rewrites a template whose version differs.
# A new template applies to indices created from then on (tomorrow's), never to existing ones.
TEMPLATE_VERSION = 1

KEYWORD = {"type": "keyword"}
FLOAT = {"type": "float"}
INTEGER = {"type": "integer"}

MAPPING = {
    # strict: a field the template does not know is refused (and the event reported), never guessed.
    "dynamic": "strict",
    "properties": {
        "timestamp": {"type": "date"},  # ISO 8601 with milliseconds, the default date format reads it
        "event_id": KEYWORD,
        "request_id": KEYWORD,
        "source": KEYWORD,
        "model_version": KEYWORD,
        "data_version": KEYWORD,
        "label": KEYWORD,
        "score": FLOAT,
        "probabilities": {"properties": {"unacceptable": FLOAT, "acceptable": FLOAT}},
        "latency_ms": FLOAT,
        "text_length": INTEGER,
        "word_count": INTEGER,
        "text_sha256": KEYWORD,
        # Full-text search on the sentence, plus an exact copy to count identical sentences.
        # ignore_above: the API accepts up to 1000 characters, so every sentence fits.
        "text": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 1024}}},
    },
}

SETTINGS = {
    "number_of_shards": 1,  # a day of events is small; more shards would only cost memory
    "number_of_replicas": 0,  # a single-node cluster cannot place replicas; use 1 on a cluster of 2+ nodes
}

TEMPLATE = {
    "index_patterns": [INDEX_PATTERN],
    "priority": 100,  # wins over a catch-all template that also matches predictions-*
    "version": TEMPLATE_VERSION,
    "_meta": {"description": "prediction events of the CoLA classifier (week 9, monitoring/event_index.py)"},
    "template": {"settings": SETTINGS, "mappings": MAPPING},
}


def index_name(timestamp: str) -> str:
    """The daily index of an event made at `timestamp` (ISO 8601; UTC day), e.g. `predictions-2026.11.23`."""
    try:
        moment = datetime.fromisoformat(timestamp)
    except (TypeError, ValueError) as error:
        raise CourseError(
            f"timestamp {timestamp!r} is not ISO 8601: events need one like 2026-11-23T15:04:05.123Z"
        ) from error
    if moment.tzinfo is None:  # OpenSearch reads a timestamp without a zone as UTC; so do we
        moment = moment.replace(tzinfo=UTC)
    return INDEX_PREFIX + moment.astimezone(UTC).strftime("%Y.%m.%d")


def ensure_template(client: OpenSearch) -> bool:
    """Install the index template unless this version is already there; True when it was written."""
    try:
        found = client.indices.get_index_template(name=TEMPLATE_NAME)["index_templates"]
    except NotFoundError:
        found = []
    if found and found[0]["index_template"].get("version") == TEMPLATE_VERSION:
        return False
    client.indices.put_index_template(name=TEMPLATE_NAME, body=TEMPLATE)
    return True
