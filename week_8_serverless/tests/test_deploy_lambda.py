"""deploy_lambda.py against moto's server on loopback: create, update, version, alias, HTTP API route."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from deploy_lambda import ALIAS, ARCHITECTURES, ROUTE, deploy, settings
from errors import CourseError

REGION = "eu-west-1"
FUNCTION = "cola-classifier"
IMAGE_V1 = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlops-basics/cola-api:v1"
IMAGE_V2 = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlops-basics/cola-api:v2"
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                 "Action": "sts:AssumeRole"}]}


@pytest.fixture(scope="module")
def aws() -> Iterator[dict]:
    """moto on loopback, an execution role in its IAM, and the environment deploy_lambda.py reads."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_EC2_METADATA_DISABLED": "true"}.items():
            patch.setenv(name, value)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        iam = boto3.client("iam", region_name=REGION, endpoint_url=endpoint)
        role = iam.create_role(RoleName="cola-lambda", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
        yield {"AWS_REGION": REGION, "LAMBDA_FUNCTION": FUNCTION, "LAMBDA_ROLE_ARN": role, "AWS_ENDPOINT_URL": endpoint}
        server.stop()


def client(service: str, aws: dict):  # noqa: ANN201
    return boto3.client(service, region_name=REGION, endpoint_url=aws["AWS_ENDPOINT_URL"])


def test_first_deploy_creates_the_function_from_the_image_and_wires_the_route(aws: dict) -> None:
    done = deploy(IMAGE_V1, environ=aws)
    function = client("lambda", aws).get_function(FunctionName=FUNCTION)
    assert function["Configuration"]["PackageType"] == "Image"
    assert function["Code"]["ImageUri"] == IMAGE_V1
    assert function["Configuration"]["Architectures"] == ARCHITECTURES == ["x86_64"]  # the image's platform
    assert done.alias_arn.endswith(f":function:{FUNCTION}:{ALIAS}")
    gateway = client("apigatewayv2", aws)
    routes = gateway.get_routes(ApiId=done.api_id)["Items"]
    assert [route["RouteKey"] for route in routes] == [ROUTE]
    (integration,) = gateway.get_integrations(ApiId=done.api_id)["Items"]
    assert integration["IntegrationUri"] == done.alias_arn and integration["PayloadFormatVersion"] == "2.0"
    assert routes[0]["Target"] == "integrations/" + integration["IntegrationId"]
    policy = json.loads(client("lambda", aws).get_policy(FunctionName=FUNCTION, Qualifier=ALIAS)["Policy"])
    assert policy["Statement"][0]["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert done.endpoint.endswith("/predict")


def test_second_deploy_updates_the_code_and_moves_the_alias(aws: dict) -> None:
    first = deploy(IMAGE_V1, environ=aws)
    second = deploy(IMAGE_V2, environ=aws)
    lam = client("lambda", aws)
    assert lam.get_function(FunctionName=FUNCTION)["Code"]["ImageUri"] == IMAGE_V2
    assert int(second.version) == int(first.version) + 1
    assert lam.get_alias(FunctionName=FUNCTION, Name=ALIAS)["FunctionVersion"] == second.version
    assert second.api_id == first.api_id  # the same API, not a new one per deploy
    assert len(client("apigatewayv2", aws).get_routes(ApiId=second.api_id)["Items"]) == 1


def test_deploy_under_another_alias_moves_the_route_to_it(aws: dict) -> None:
    live = deploy(IMAGE_V1, environ=aws)
    staging = deploy(IMAGE_V2, alias="staging", environ=aws)
    assert staging.alias_arn.endswith(f":function:{FUNCTION}:staging") and staging.api_id == live.api_id
    gateway = client("apigatewayv2", aws)
    (route,) = gateway.get_routes(ApiId=staging.api_id)["Items"]
    found = gateway.get_integrations(ApiId=staging.api_id)["Items"]
    integrations = {integration["IntegrationId"]: integration["IntegrationUri"] for integration in found}
    assert integrations[route["Target"].removeprefix("integrations/")] == staging.alias_arn
    deploy(IMAGE_V1, environ=aws)  # and back: the next tests expect the route on the live alias


def test_missing_settings_and_role_are_named(aws: dict) -> None:
    with pytest.raises(CourseError, match="set AWS_REGION and LAMBDA_FUNCTION"):
        settings({})
    without_role = {**aws, "LAMBDA_FUNCTION": "not-created-yet", "LAMBDA_ROLE_ARN": ""}
    with pytest.raises(CourseError, match="does not exist yet: set LAMBDA_ROLE_ARN"):
        deploy(IMAGE_V1, environ=without_role)
