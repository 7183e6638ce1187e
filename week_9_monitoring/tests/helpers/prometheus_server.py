"""A real Prometheus on loopback for the tests: Debian's /usr/bin/prometheus, scraping one target every second.

    with prometheus_server("127.0.0.1:8123", base_config=PROMETHEUS_YML) as prometheus:
        prometheus.query('sum by (label) (cola_predictions_total)')

The committed monitoring/prometheus.yml is the base: its jobs keep their names and metrics paths,
only the targets become the loopback API and the interval 1 s. Data lives in a temporary folder
and the server stops when the block ends. CI installs the binary (`apt-get install prometheus`).
"""

from __future__ import annotations

import contextlib
import copy
import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from support.local_server import free_port, stop, wait_ready

PROMETHEUS = "/usr/bin/prometheus"
SCRAPE_INTERVAL = "1s"
# Loopback only: a proxy from the environment must never see these requests.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class PrometheusError(RuntimeError):
    """Prometheus answered a query with an error (bad PromQL, for one); the message is its own."""


def missing_binary() -> str | None:
    """Why the tests cannot run Prometheus here, or None when they can."""
    if shutil.which(PROMETHEUS) is None:
        return f"{PROMETHEUS} is not installed: `apt-get install prometheus` (CI installs it)"
    return None


def loopback_config(target: str, base_config: dict | None = None) -> dict:
    """`base_config` (or one job named cola-api) with every job scraping `target` every second."""
    config = copy.deepcopy(base_config) if base_config else {"scrape_configs": [{"job_name": "cola-api"}]}
    config.setdefault("global", {})
    config["global"]["scrape_interval"] = SCRAPE_INTERVAL
    config["global"]["evaluation_interval"] = SCRAPE_INTERVAL
    for job in config["scrape_configs"]:
        job["scrape_interval"] = SCRAPE_INTERVAL
        job["static_configs"] = [{"targets": [target]}]
    return config


@dataclass(frozen=True)
class Prometheus:
    """A running Prometheus: its base URL and a PromQL client of its HTTP API."""

    url: str

    def api(self, path: str, **params: str) -> dict | list:
        """GET /api/v1/<path>; the `data` of a success, PrometheusError with Prometheus's message otherwise."""
        address = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with OPENER.open(address, timeout=10) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as error:  # 400 for bad PromQL, 422 for an evaluation error
            body = json.loads(error.read() or b"{}")
        if body.get("status") != "success":
            raise PrometheusError(f"{body.get('errorType', 'error')}: {body.get('error', body)}")
        return body["data"]

    def query(self, promql: str) -> list[dict]:
        """An instant query: the result vector, each item {"metric": {labels}, "value": [time, "text"]}."""
        data = self.api("query", query=promql)
        if data["resultType"] != "vector":
            raise PrometheusError(f"{promql!r} gave a {data['resultType']}, not an instant vector")
        return data["result"]

    def wait_for(self, promql: str, accept, timeout_s: float = 30) -> list[dict]:
        """Run `promql` until `accept(result)` is true; TimeoutError showing the last result if it never is."""
        deadline = time.monotonic() + timeout_s
        while True:
            result = self.query(promql)
            if accept(result):
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"after {timeout_s:g} s, {promql!r} still gives {result}")
            time.sleep(0.25)


@contextlib.contextmanager
def prometheus_server(target: str, base_config: dict | None = None, timeout_s: float = 30) -> Iterator[Prometheus]:
    """Run Prometheus on a free port of 127.0.0.1, scraping `target` (host:port) every second."""
    with tempfile.TemporaryDirectory(prefix="prometheus-") as folder:
        folder = Path(folder)
        config_file = folder / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(loopback_config(target, base_config), sort_keys=False))
        log = folder / "prometheus.log"
        address = f"127.0.0.1:{free_port()}"
        command = [
            PROMETHEUS,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address={address}",
        ]
        # A file, not a pipe: nobody reads Prometheus's log while it runs, and a full pipe would block it.
        with open(log, "w+") as output:
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
            try:
                wait_ready(f"http://{address}/-/ready", process, output, timeout_s)
                yield Prometheus(f"http://{address}")
            finally:
                stop(process)
