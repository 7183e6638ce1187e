"""/metrics counts what the API really predicted, a real Prometheus scrapes exactly those counts, and every
query of the Grafana dashboard parses in Prometheus and reads only metrics the API exposes.

The live tests run the API as a learner does (`uvicorn app:app` on a free loopback port, the session's
ONNX export) and Debian's /usr/bin/prometheus with the committed monitoring/prometheus.yml pointed at it
(tests/helpers/prometheus_server.py). Without that binary they are skipped with the reason; CI installs it.
"""

from __future__ import annotations

import csv
import json
import math
import re
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app import app
from helpers.prometheus_server import Prometheus, PrometheusError, missing_binary, prometheus_server
from source import OFFLINE_DATA_DIR, WEEK_DIR
from support.local_server import local_server

PROMETHEUS_YML = WEEK_DIR / "monitoring" / "prometheus.yml"
DASHBOARD = WEEK_DIR / "monitoring" / "grafana" / "dashboards" / "cola.json"
LABELS = {"unacceptable", "acceptable"}
# What Grafana puts in place of its interval variable; one minute always holds several 1 s scrapes.
GRAFANA_VARIABLES = {"$__rate_interval": "1m"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless"}


# ----------------------------------------------------------------------------- reading /metrics


def samples(exposition: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of a Prometheus text exposition as (name, labels, value)."""
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    ]


def values_of(exposition: str, name: str, by: str | None = None) -> dict[str | None, float]:
    """The samples called `name`, keyed by their label `by` (None: the one unlabelled sample)."""
    return {labels.get(by) if by else None: value for sample, labels, value in samples(exposition) if sample == name}


def requests_by_handler_and_status(exposition: str) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for name, labels, value in samples(exposition):
        if name == "http_requests_total":
            counts[labels["handler"], labels["status"]] += value
    return counts


def validation_sentences(per_label: int) -> list[str]:
    """Sentences of both true labels, alternating, so the model predicts both labels."""
    with open(OFFLINE_DATA_DIR / "validation.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    good = [row["sentence"] for row in rows if row["label"] == "1"][:per_label]
    bad = [row["sentence"] for row in rows if row["label"] == "0"][:per_label]
    return [sentence for pair in zip(good, bad, strict=True) for sentence in pair]


# ----------------------------------------------------------------------------- the dashboard's queries


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query of the committed dashboard, Grafana's variables filled in."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"panel {panel['title']!r} uses a variable this test cannot fill: {expr}"
            queries.append((f"{panel['title']} / {target['refId']}", expr))
    return queries


def metric_names(promql: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers that are not functions, keywords or labels."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', promql)  # label values can hold anything
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)  # matchers and range windows
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        is_call = text[match.end() :].lstrip().startswith("(")
        if not is_call and match.group() not in PROMQL_WORDS:
            names.add(match.group())
    return names


def label_names(promql: str) -> set[str]:
    """Label names a PromQL expression groups, joins or matches on."""
    names = set()
    for group in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", promql):
        names |= {name.strip() for name in group.split(",") if name.strip()}
    for matchers in re.findall(r"\{([^}]*)\}", promql):
        names |= set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
    return names


def test_metric_names_reads_names_not_functions_or_labels() -> None:
    """The parser the dashboard test relies on, on the dashboard's hardest shapes."""
    expr = (
        'sum by (label) (rate(cola_predictions_total{label="a b"}[1m])) / ignoring (label) group_left '
        'sum(rate(http_requests_total{status=~"4xx|5xx"}[1m])) or vector(0)'
    )
    assert metric_names(expr) == {"cola_predictions_total", "http_requests_total"}
    assert label_names(expr) == {"label", "status"}


# ----------------------------------------------------------------------------- in process


@pytest.fixture(scope="module")
def client(exported: dict) -> Iterator[TestClient]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODEL_DIR", str(exported["export_dir"]))
        patch.delenv("MODEL_VARIANT", raising=False)
        patch.delenv("EVENTS_FILE", raising=False)
        with TestClient(app) as test_client:
            yield test_client


def test_metrics_count_each_prediction_by_its_label(client: TestClient) -> None:
    # The registry is global to the process (other tests predict too): compare before and after.
    before = client.get("/metrics").text
    assert set(values_of(before, "cola_predictions_total", by="label")) == LABELS
    sentences = validation_sentences(4)
    returned: list[dict] = [client.post("/predict", json={"text": text}).json() for text in sentences[:3]]
    batch = client.post("/predict/batch", json={"texts": sentences[3:]})
    assert batch.status_code == 200, batch.text
    returned += batch.json()["predictions"]
    assert client.post("/predict", json={"text": ""}).status_code == 422

    after = client.get("/metrics").text
    counts_before = values_of(before, "cola_predictions_total", by="label")
    counts_after = values_of(after, "cola_predictions_total", by="label")
    expected = Counter(prediction["label"] for prediction in returned)
    assert {label: counts_after[label] - counts_before[label] for label in LABELS} == {
        label: float(expected[label]) for label in LABELS
    }
    score_count = (
        values_of(after, "cola_prediction_score_count")[None] - values_of(before, "cola_prediction_score_count")[None]
    )
    assert score_count == len(sentences)
    score_sum = (
        values_of(after, "cola_prediction_score_sum")[None] - values_of(before, "cola_prediction_score_sum")[None]
    )
    assert score_sum == pytest.approx(sum(p["score"] for p in returned), abs=1e-6)
    requests = requests_by_handler_and_status(after) - requests_by_handler_and_status(before)
    assert requests == Counter({("/predict", "2xx"): 3, ("/predict/batch", "2xx"): 1, ("/predict", "4xx"): 1})


def test_dashboard_reads_only_metrics_and_labels_the_api_exposes(client: TestClient) -> None:
    # One request of each kind, so every series the dashboard reads exists in this process.
    client.post("/predict", json={"text": "The dog sleeps."})
    client.post("/predict/batch", json={"texts": ["The dog sleeps.", "Dog the sleeps."]})
    client.post("/predict", json={"text": ""})
    exposed: dict[str, set[str]] = {}
    for name, labels, _ in samples(client.get("/metrics").text):
        exposed.setdefault(name, set()).update(labels)

    read = set()
    for title, expr in dashboard_queries():
        names = metric_names(expr)
        assert names, f"{title}: no metric found in {expr}"
        assert names <= set(exposed), f"{title} reads {sorted(names - set(exposed))}, which /metrics does not expose"
        labels = set().union(*(exposed[name] for name in names))
        assert label_names(expr) <= labels, f"{title} uses labels {sorted(label_names(expr) - labels)} not on {names}"
        read |= names
    # The panels the week promises: request rate, latency, predictions per label, scores, errors.
    assert {
        "http_requests_total",
        "http_request_duration_highr_seconds_bucket",
        "cola_predictions_total",
        "cola_prediction_score_bucket",
    } <= read


# ----------------------------------------------------------------------------- a real server and a real Prometheus


@dataclass
class LiveApi:
    url: str
    metrics_at_start: str


@dataclass
class Traffic:
    """What the test sent, and what the API answered."""

    labels: Counter[str] = field(default_factory=Counter)
    scores: list[float] = field(default_factory=list)
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)  # (handler, status class) -> count


@pytest.fixture(scope="module")
def api(exported: dict) -> Iterator[LiveApi]:
    """`uvicorn app:app` on a free loopback port, and its /metrics before any request."""
    with local_server(exported["export_dir"], env={"EVENTS_FILE": ""}) as url:
        with httpx.Client(trust_env=False) as http:
            yield LiveApi(url=url, metrics_at_start=http.get(url + "/metrics").text)


@pytest.fixture(scope="module")
def prometheus(api: LiveApi) -> Iterator[Prometheus]:
    """Prometheus scraping the API with the committed job, after its first successful scrape."""
    why = missing_binary()
    if why:
        pytest.skip(why)
    target = urllib.parse.urlsplit(api.url).netloc
    with prometheus_server(target, base_config=yaml.safe_load(PROMETHEUS_YML.read_text())) as server:
        # Before any prediction: so rates see the counters rise, as they would in production.
        server.wait_for('up{job="cola-api"} == 1', lambda result: len(result) == 1)
        yield server


@pytest.fixture(scope="module")
def traffic(api: LiveApi, prometheus: Prometheus) -> Traffic:
    """Single and batch predictions plus a few bad requests, sent once for the module."""
    sent = Traffic()
    sentences = validation_sentences(15)  # 30 sentences

    def record(handler: str, response: httpx.Response) -> None:
        sent.requests[handler, f"{response.status_code // 100}xx"] += 1
        if response.status_code != 200:
            return
        body = response.json()
        for prediction in body.get("predictions", [body]):
            sent.labels[prediction["label"]] += 1
            sent.scores.append(prediction["score"])

    with httpx.Client(base_url=api.url, trust_env=False, timeout=30) as http:
        for text in sentences[:10]:
            record("/predict", http.post("/predict", json={"text": text}))
        for start, stop in [(10, 11), (11, 18), (18, 30)]:
            record("/predict/batch", http.post("/predict/batch", json={"texts": sentences[start:stop]}))
        record("/predict", http.post("/predict", json={"text": "   "}))
        record("/predict", http.post("/predict", json={"txt": "The dog sleeps."}))
        record("/predict/batch", http.post("/predict/batch", json={"texts": ["x"] * 65}))
    assert sum(sent.labels.values()) == len(sentences)
    assert set(sent.labels) == LABELS, f"the sample should exercise both labels, the model predicted {sent.labels}"
    return sent


def test_a_fresh_api_exposes_both_labels_at_zero(api: LiveApi) -> None:
    assert values_of(api.metrics_at_start, "cola_predictions_total", by="label") == {label: 0.0 for label in LABELS}
    assert values_of(api.metrics_at_start, "cola_prediction_score_count") == {None: 0.0}


def by_labels(result: list[dict], *names: str) -> dict:
    """A query result as {label value (or tuple of values): number}."""
    return {
        (row["metric"].get(names[0]) if len(names) == 1 else tuple(row["metric"].get(n) for n in names)): float(
            row["value"][1]
        )
        for row in result
    }


def wait_for_values(prometheus: Prometheus, promql: str, expected: dict, *names: str) -> None:
    try:
        prometheus.wait_for(promql, lambda result: by_labels(result, *names) == expected)
    except TimeoutError as error:
        pytest.fail(f"Prometheus never scraped the counts the API answered with: expected {expected}; {error}")


def test_prometheus_scrapes_exactly_the_predictions_sent(prometheus: Prometheus, traffic: Traffic) -> None:
    expected = {label: float(count) for label, count in traffic.labels.items()}
    wait_for_values(prometheus, "sum by (label) (cola_predictions_total)", expected, "label")
    # Scraped at the same moment as the counter: no need to wait again.
    assert by_labels(prometheus.query("cola_prediction_score_count"), "job") == {"cola-api": len(traffic.scores)}
    (score_sum,) = by_labels(prometheus.query("cola_prediction_score_sum"), "job").values()
    assert score_sum == pytest.approx(sum(traffic.scores), abs=1e-6)


def test_prometheus_counts_requests_per_endpoint_and_status(prometheus: Prometheus, traffic: Traffic) -> None:
    expected = {key: float(count) for key, count in traffic.requests.items()}
    assert expected == {
        ("/predict", "2xx"): 10.0,
        ("/predict", "4xx"): 2.0,
        ("/predict/batch", "2xx"): 3.0,
        ("/predict/batch", "4xx"): 1.0,
    }
    promql = 'sum by (handler, status) (http_requests_total{handler=~"/predict.*"})'
    wait_for_values(prometheus, promql, expected, "handler", "status")
    latencies = by_labels(prometheus.query("sum by (handler) (http_request_duration_seconds_count)"), "handler")
    assert latencies["/predict"] == 12 and latencies["/predict/batch"] == 4


def test_every_dashboard_query_runs_in_prometheus_and_returns_data(prometheus: Prometheus, traffic: Traffic) -> None:
    for title, expr in dashboard_queries():
        try:
            result = prometheus.wait_for(expr, lambda result: len(result) > 0)
        except PrometheusError as error:
            pytest.fail(f"panel {title}: Prometheus rejects {expr}: {error}")
        except TimeoutError as error:
            pytest.fail(f"panel {title} would show no data: {error}")
        for row in result:
            value = float(row["value"][1])
            assert math.isnan(value) or value >= 0, f"{title}: {expr} gave {value}"
    # The label counters exist at 0 from start-up, so a rate sees all of their rise: the label shares
    # over the minute that holds the traffic are exactly the shares of the answers the API gave.
    (share,) = [expr for title, expr in dashboard_queries() if title.startswith("Share of predictions")]
    total = sum(traffic.labels.values())
    expected = {label: count / total for label, count in traffic.labels.items()}
    result = prometheus.wait_for(share, lambda result: by_labels(result, "label").keys() == LABELS)
    assert by_labels(result, "label") == pytest.approx(expected, abs=1e-9)
    for title, expr in dashboard_queries():
        if title.startswith("Score (confidence) quantiles"):
            (row,) = prometheus.query(expr)
            assert 0.5 <= float(row["value"][1]) <= 1, f"{title}: {expr} gave {row['value'][1]}"
