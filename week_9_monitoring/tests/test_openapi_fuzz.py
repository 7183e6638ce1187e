"""The API fuzzed from its own OpenAPI document with schemathesis, served as a learner serves it.

Schemathesis reads /openapi.json, sends valid and invalid requests made from it to every endpoint
(odd strings, wrong types, bodies that are not JSON or not UTF-8, other methods) and checks each
answer against the document: no 5xx, every status code and content type documented, every body
matching its schema, valid input accepted and invalid input refused. The command is the one in
the README, bounded (examples per endpoint, a fixed seed) so the test takes seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from support.local_server import local_server

MAX_EXAMPLES = 50  # per endpoint and phase: about 300 requests in all, a few seconds
SEED = 20261201  # a fixed seed: a failure here is reproduced by the same command


def schemathesis_run(schema: str, cwd: Path, *options: str) -> subprocess.CompletedProcess:
    """`schemathesis run SCHEMA --checks all ...` with every proxy variable removed (loopback only)."""
    proxy_free = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", schema, "--checks", "all",
        "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--workers", "1",
        "--generation-database", "none", "--request-timeout", "10", "--no-color", *options,
    ]  # fmt: skip
    # cwd: a scratch folder, so nothing schemathesis might write lands in the week folder.
    return subprocess.run(command, cwd=cwd, env=proxy_free, capture_output=True, text=True, timeout=300)


def test_the_api_answers_as_its_openapi_document_says(exported: dict, tmp_path: Path) -> None:
    with local_server(exported["export_dir"]) as url:
        document = httpx.get(f"{url}/openapi.json", trust_env=False).json()
        result = schemathesis_run(f"{url}/openapi.json", tmp_path)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert "No issues found" in report, report
    operations = sum(len(methods) for methods in document["paths"].values())
    assert operations >= 4
    assert f"Selected: {operations}/{operations}" in report, report  # every endpoint was fuzzed


def test_the_fuzzer_catches_an_answer_the_document_leaves_out(exported: dict, tmp_path: Path) -> None:
    """The same run against a copy of the document without /predict's 422 must fail: it is not a no-op."""
    with local_server(exported["export_dir"]) as url:
        document = httpx.get(f"{url}/openapi.json", trust_env=False).json()
        del document["paths"]["/predict"]["post"]["responses"]["422"]
        lying = tmp_path / "openapi-without-422.json"
        lying.write_text(json.dumps(document), encoding="utf-8")
        result = schemathesis_run(str(lying), tmp_path, "--url", url, "--include-path", "/predict")
    report = result.stdout + result.stderr
    assert result.returncode != 0, report
    assert "Undocumented status code" in report, report
    assert "Received: 422" in report, report
