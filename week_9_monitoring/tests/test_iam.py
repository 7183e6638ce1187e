"""The IAM documents a learner creates: valid JSON, placeholders only, and enough rights for what the week does."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from source import WEEK_DIR

IAM_DIR = WEEK_DIR / "iam"
DOCUMENTS = sorted(IAM_DIR.glob("*.json"))


def actions_of(document: dict) -> set[str]:
    actions: set[str] = set()
    for statement in document["Statement"]:
        value = statement["Action"]
        actions |= {value} if isinstance(value, str) else set(value)
    return actions


@pytest.mark.parametrize("path", DOCUMENTS, ids=[p.name for p in DOCUMENTS])
def test_documents_are_policies_with_placeholders_not_real_accounts(path: Path) -> None:
    text = path.read_text()
    document = json.loads(text)
    assert document["Version"] == "2012-10-17"
    assert all(statement["Effect"] == "Allow" for statement in document["Statement"])
    assert not re.search(r"\b\d{12}\b", text), "an account id belongs in your copy, not in the course"
    assert "<ACCOUNT_ID>" in text or "<BUCKET>" in text


def test_trust_policy_admits_only_this_repository_on_main_through_oidc() -> None:
    document = json.loads((IAM_DIR / "github-oidc-trust-policy.json").read_text())
    (statement,) = document["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"].endswith(":oidc-provider/token.actions.githubusercontent.com")
    condition = statement["Condition"]["StringEquals"]
    assert condition["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    assert condition["token.actions.githubusercontent.com:sub"] == "repo:<OWNER>/<REPO>:ref:refs/heads/main"


def test_push_policy_allows_what_push_image_and_docker_push_call() -> None:
    document = json.loads((IAM_DIR / "ecr-push-policy.json").read_text())
    needed = {
        "ecr:GetAuthorizationToken", "ecr:DescribeRepositories", "ecr:CreateRepository",  # push_image.py
        "ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",  # docker push
        "ecr:CompleteLayerUpload", "ecr:PutImage",
    }  # fmt: skip
    assert needed <= actions_of(document)
    assert not any(action.endswith("*") for action in actions_of(document)), "no wildcard actions"


def test_s3_policy_only_reads() -> None:
    document = json.loads((IAM_DIR / "dvc-s3-read-policy.json").read_text())
    assert actions_of(document) == {"s3:ListBucket", "s3:GetObject"}


def test_deploy_policy_allows_what_deploy_lambda_calls() -> None:
    document = json.loads((IAM_DIR / "lambda-deploy-policy.json").read_text())
    needed = {
        "lambda:GetFunction", "lambda:CreateFunction", "lambda:UpdateFunctionCode", "lambda:PublishVersion",
        "lambda:CreateAlias", "lambda:UpdateAlias", "lambda:AddPermission", "iam:PassRole",
        "apigateway:GET", "apigateway:POST", "apigateway:PATCH",
    }  # fmt: skip
    assert needed <= actions_of(document)
    assert not any(action.endswith("*") for action in actions_of(document)), "no wildcard actions"


def test_execution_role_is_for_lambda_in_this_account_only() -> None:
    (statement,) = json.loads((IAM_DIR / "lambda-execution-trust-policy.json").read_text())["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == "<ACCOUNT_ID>"
