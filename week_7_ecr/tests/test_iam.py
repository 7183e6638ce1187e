"""The IAM documents a learner creates, proven by an IAM policy evaluator against the calls the course makes.

While the week's S3 and ECR tests run, every AWS call of the course's code is recorded
(tests/helpers/aws_calls.py). The tests marked `after_recorded_aws_calls` run last: each recorded
call is mapped to the IAM action(s) it needs and evaluated, for the role that makes it in the
workflows, by @cloud-copilot/iam-simulate (tools/iam_check/) with AWS's Service Authorization
Reference data (tests/helpers/iam_check.py). Removing any one action from a policy must make a
call fail: the policies hold nothing a call does not need. Every S3 call is also evaluated for the
learner, whose own keys run the same commands at home with week 3's iam/dvc-s3-learner-policy.json.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from helpers import aws_calls
from helpers import iam_check as iam
from source import WEEK_DIR

IAM_DIR = WEEK_DIR / "iam"
DOCUMENTS = sorted(IAM_DIR.glob("*.json"))
WORKFLOWS_DIR = iam.REPO_ROOT / ".github" / "workflows"
after_the_calls = pytest.mark.after_recorded_aws_calls


@dataclass(frozen=True)
class Role:
    """One identity: the secret holding its role's ARN, its policies, its trust and who may assume it.

    The learner's own identity has no secret and no trust policy: it is an IAM user (or an SSO session).
    """

    secret: str | None
    policies: tuple[str, ...]
    trust: str | None
    events: tuple[str, ...]  # GitHub events whose jobs may assume it (iam.GITHUB_EVENTS)


# ----------------------------------------------------------------------------- this week's roles and steps

ROLES = {
    iam.LEARNER: Role(None, ("dvc-s3-learner-policy.json",), None, ()),
    "model-read": Role("AWS_ROLE_MODEL_READ", ("dvc-s3-read-policy.json",), "github-oidc-trust-policy-model-read.json",
                       ("push to main", "pull_request")),
    "ecr-push": Role("AWS_ROLE_ECR_PUSH", ("ecr-push-policy.json",), "github-oidc-trust-policy.json",
                     ("push to main",)),
}  # fmt: skip
# The workflows this week's roles run in, and the commands of theirs that call AWS.
WORKFLOWS = ("dvc.yml", "ecr.yml")
# push_image.py pushes to this repository (the learner's `python push_image.py`, week 7's README).
PUSH_IMAGE_REPOSITORY = iam.CONFIG["ECR_REPOSITORY"]
# What workflow steps need that no recorded call shows: the login action and `docker push` of ecr.yml.
STEP_NEEDS = {"ecr-push": iam.registry_push_needs(iam.CONFIG["ECR_REPOSITORY"], "ecr.yml")}
# The roles whose calls the tests record without a container engine (test_s3_remote.py).
RECORDED_WITHOUT_CONTAINERS = {iam.LEARNER, "model-read"}


def role_of(command: str) -> str | None:
    """The role that runs `command` in the workflows; None for what only a learner runs with their own keys."""
    words = command.split()
    program, action = words[0], (words[1] if len(words) > 1 else "")
    if (program, action) in {("remote.py", "push"), ("dvc", "push")}:
        return None  # `python remote.py push` uploads the model from your machine, with the learner's policy
    if program == "build_image.py" or (program, action) in {("remote.py", "check"), ("remote.py", "pull"),
                                                            ("dvc", "pull"), ("dvc", "fetch")}:  # fmt: skip
        return "model-read"
    if program == "push_image.py":
        return "ecr-push"
    if program == "deploy_lambda.py":
        return "lambda-deploy"
    pytest.fail(f"recorded an AWS call from {command!r}, which no role of the workflows runs: add it to role_of()")


def identities_of(call: dict) -> list[str]:
    """Who makes the recorded call: the workflow role of its command, and the learner for every S3 call
    (remote.py, dvc and build_image.py run on your machine too, with week 3's policy)."""
    role = role_of(call["command"])
    return ([role] if role is not None else []) + ([iam.LEARNER] if call["service"] == "s3" else [])


# ----------------------------------------------------------------------------- the shared checks


def policies_of(role: Role) -> dict[str, dict]:
    return {name: json.loads((IAM_DIR / name).read_text()) for name in role.policies}


def needs_by_role() -> dict[str, list[iam.Need]]:
    """Every IAM request each role makes: the recorded calls of its commands, then its steps' own needs."""
    found: dict[str, list[iam.Need]] = {name: list(STEP_NEEDS.get(name, [])) for name in ROLES}
    for call in aws_calls.recorded_calls():
        words = call["command"].split()
        command = " ".join(words[:2] if words[0] in ("remote.py", "dvc") else words[:1])  # no test arguments
        for identity in identities_of(call):
            needs = iam.needs_of_call(call, repository=PUSH_IMAGE_REPOSITORY)
            found[identity] += iam.with_source(needs, command)
    return found


def recorded_roles() -> set[str]:
    return {identity for call in aws_calls.recorded_calls() for identity in identities_of(call)}


@pytest.fixture(scope="module")
def needs() -> dict[str, list[iam.Need]]:
    """The needs of every role, once the other tests have made their calls; checks the recording is complete."""
    recorded = recorded_roles()
    if not recorded:
        reason = "no AWS call was recorded: run the week's whole suite (the S3/ECR tests make the calls)"
        if os.environ.get("MLOPS_REQUIRE_CONTAINERS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    expected = set(ROLES) if os.environ.get("MLOPS_REQUIRE_CONTAINERS") == "1" else RECORDED_WITHOUT_CONTAINERS
    assert expected <= recorded, f"no recorded calls for the roles {sorted(expected - recorded)}"
    return needs_by_role()


@after_the_calls
@pytest.mark.parametrize("role_name", sorted(ROLES))
def test_every_recorded_call_is_allowed_for_the_role_that_makes_it(needs: dict, role_name: str) -> None:
    role = ROLES[role_name]
    problems = iam.refused(needs[role_name], policies_of(role), role_name)
    assert not problems, f"{role_name} ({', '.join(role.policies)}) refuses:\n" + "\n".join(problems)


@after_the_calls
@pytest.mark.parametrize("role_name", sorted(ROLES))
def test_every_action_of_a_policy_is_needed_by_some_call(needs: dict, role_name: str) -> None:
    """Least privilege, proven: the policy without any one of its actions refuses a call the course makes."""
    if role_name not in recorded_roles():
        pytest.skip(f"the calls of {role_name} were not recorded here (they need a container engine)")
    role = ROLES[role_name]
    for name, policy in policies_of(role).items():
        for action in iam.actions_of(policy):
            weaker = {**policies_of(role), name: iam.without_action(policy, action)}
            assert iam.refused(needs[role_name], weaker, role_name), f"{name}: no call needs {action}; remove it"


@after_the_calls
def test_the_read_policy_with_a_prefix_condition_on_listbucket_refuses_the_bucket_check(needs: dict) -> None:
    """The mistake the course once made: HeadBucket sends no prefix, so s3:ListBucket must not require one."""
    (policy,) = policies_of(ROLES["model-read"]).values()
    for statement in policy["Statement"]:
        if statement["Action"] == "s3:ListBucket":
            statement["Condition"] = {"StringLike": {"s3:prefix": ["<PREFIX>/*"]}}
    problems = iam.refused(needs["model-read"], {"dvc-s3-read-policy.json": policy}, "model-read")
    assert any("s3:ListBucket" in line and "HeadBucket" in line for line in problems), problems


@after_the_calls
def test_the_readme_lists_which_call_needs_which_action(needs: dict) -> None:
    """The README's table is generated from the recorded calls; MLOPS_WRITE_IAM_TABLE=1 rewrites it."""
    if recorded_roles() != set(ROLES):
        pytest.skip(f"only {sorted(recorded_roles())} recorded here: the table needs every role's calls")
    table = "\n" + iam.needs_table(needs, {name: role.secret for name, role in ROLES.items()}) + "\n"
    readme = WEEK_DIR / "README.md"
    start, end = "<!-- iam-calls: generated by tests/test_iam.py -->", "<!-- /iam-calls -->"
    text = readme.read_text()
    assert start in text and end in text, f"README.md has no table between {start.strip()} and {end.strip()}"
    before, rest = text.split(start, 1)
    current, after = rest.split(end, 1)
    if current != table and os.environ.get("MLOPS_WRITE_IAM_TABLE") == "1":
        readme.write_text(before + start + table + end + after)
        current = table
    assert current == table, f"README.md's table is out of date (rerun with MLOPS_WRITE_IAM_TABLE=1); it is:\n{table}"


@pytest.mark.parametrize("role_name", sorted(name for name, role in ROLES.items() if role.trust))
def test_only_the_intended_github_jobs_may_assume_the_role(role_name: str) -> None:
    trust = json.loads((IAM_DIR / ROLES[role_name].trust).read_text())
    for event in iam.GITHUB_EVENTS:
        expected = "Allowed" if event in ROLES[role_name].events else "ImplicitlyDenied"
        assert iam.assume_role_decision(trust, event) == expected, f"{ROLES[role_name].trust}, {event}"


def aws_steps(workflow: Path) -> list[tuple[str | None, str]]:
    """(role secret in effect, run script) for every `run` step of the workflow, in order, per job."""
    found = []
    for job in yaml.safe_load(workflow.read_text())["jobs"].values():
        secret = None
        for step in job.get("steps", []):
            if "configure-aws-credentials" in step.get("uses", ""):
                match = re.search(r"secrets\.(\w+)", step["with"]["role-to-assume"])
                secret = match.group(1) if match else None
            if "run" in step:
                found.append((secret, step["run"]))
    return found


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_each_workflow_step_calls_aws_as_the_role_meant_for_it(workflow: str) -> None:
    secrets = {role.secret for role in ROLES.values() if role.secret}
    for secret, script in aws_steps(WORKFLOWS_DIR / workflow):
        # Packages install before any credentials exist: no install script runs with a role's rights.
        assert secret is None or "pip install" not in script, f"{workflow}: pip install runs as {secret}"
        for line in script.splitlines():
            match = re.search(r"(\w+\.py) (\S+)", line)
            if match and match.group(1) in ("remote.py", "build_image.py", "push_image.py", "deploy_lambda.py"):
                if match.group(1) == "remote.py" and match.group(2) == "use-s3":
                    continue  # writes DVC's local config, no AWS call
                role = role_of(f"{match.group(1)} {match.group(2)}")
                assert secret == ROLES[role].secret, f"{workflow}: `{line.strip()}` runs as {secret}, not {role}"
            if "docker push" in line:
                assert secret == ROLES["ecr-push"].secret, f"{workflow}: `{line.strip()}` runs as {secret}"
        assert secret is None or secret in secrets, f"{workflow}: unknown role secret {secret}"


def test_a_policy_missing_an_action_fails_the_check() -> None:
    """The check itself can fail: a fixture policy without s3:GetObject refuses a model download."""
    need = iam.Need(
        "s3:GetObject", f"arn:aws:s3:::{iam.CONFIG['BUCKET']}/{iam.CONFIG['PREFIX']}/files/md5/ab/cd", "test"
    )
    full = json.loads((IAM_DIR / "dvc-s3-read-policy.json").read_text())
    assert iam.refused([need], {"read": full}, "model-read") == []
    problems = iam.refused([need], {"read": iam.without_action(full, "s3:GetObject")}, "model-read")
    assert problems and "ImplicitlyDenied" in problems[0]


# ----------------------------------------------------------------------------- the documents themselves


@pytest.mark.parametrize("path", DOCUMENTS, ids=[p.name for p in DOCUMENTS])
def test_documents_are_policies_with_placeholders_not_real_accounts(path: Path) -> None:
    text = path.read_text()
    document = json.loads(text)
    assert document["Version"] == "2012-10-17"
    assert all(statement["Effect"] == "Allow" for statement in document["Statement"])
    assert not re.search(r"\b\d{12}\b", text), "an account id belongs in your copy, not in the course"
    assert "<ACCOUNT_ID>" in text or "<BUCKET>" in text
    assert not any(action.endswith("*") for action in iam.actions_of(document)), "no wildcard actions"
