"""Deploy the Lambda image: create or update the function, publish a version, point the alias at it,
and wire an HTTP API route POST /predict to the alias.

    python deploy_lambda.py --image-uri 123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlops-basics/cola-api@sha256:...

Configuration from the environment (see .env.example), none in this file:
    AWS_REGION         the region of the function and the API
    LAMBDA_FUNCTION    the function name, e.g. cola-classifier
    LAMBDA_ROLE_ARN    the execution role (needed only to create the function; logs to CloudWatch)
    AWS_ENDPOINT_URL   only for an AWS stand-in such as moto (the tests)
Run it again with a new image: the code is updated, a new version published and the alias moved,
so callers switch in one step (and `--alias` lets you keep, say, a "staging" alias apart).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Any

from errors import CourseError, run_cli

ALIAS = "live"
ROUTE = "POST /predict"
MEMORY_MB = 1024  # Lambda gives CPU in proportion to memory: 1 GB is ~0.6 vCPU, plenty for BERT-tiny
TIMEOUT_S = 15
# The image is built for linux/amd64 (build_image.py); the function must run it on the same CPU, or it
# fails at start ("exec format error") — an Apple-silicon laptop would otherwise build arm64.
ARCHITECTURES = ["x86_64"]


@dataclass(frozen=True)
class Deployment:
    function_arn: str
    version: str
    alias_arn: str
    api_id: str
    endpoint: str  # https://<api>.execute-api.<region>.amazonaws.com/predict


def settings(environ: dict[str, str] | None = None) -> tuple[str, str, str | None, str | None]:
    """(region, function name, role ARN or None, endpoint URL or None) from the environment."""
    environ = os.environ if environ is None else environ
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or ""
    function = environ.get("LAMBDA_FUNCTION") or ""
    missing = [name for name, value in (("AWS_REGION", region), ("LAMBDA_FUNCTION", function)) if not value]
    if missing:
        raise CourseError(f"set {' and '.join(missing)} (see .env.example)")
    return region, function, environ.get("LAMBDA_ROLE_ARN") or None, environ.get("AWS_ENDPOINT_URL") or None


def clients(region: str, endpoint_url: str | None) -> tuple[Any, Any]:
    import boto3

    session = boto3.session.Session(region_name=region)
    return (
        session.client("lambda", endpoint_url=endpoint_url),
        session.client("apigatewayv2", endpoint_url=endpoint_url),
    )


def create_or_update_function(lam: Any, name: str, image_uri: str, role_arn: str | None) -> str:
    """The function's ARN, after creating it from `image_uri` or pointing its code at `image_uri`."""
    try:
        lam.get_function(FunctionName=name)
    except lam.exceptions.ResourceNotFoundException:
        if not role_arn:
            raise CourseError(f"function {name!r} does not exist yet: set LAMBDA_ROLE_ARN to create it") from None
        created = lam.create_function(
            FunctionName=name,
            PackageType="Image",
            Code={"ImageUri": image_uri},
            Role=role_arn,
            MemorySize=MEMORY_MB,
            Timeout=TIMEOUT_S,
            Architectures=ARCHITECTURES,
            Description="CoLA acceptability classifier (MLOps-Basics, done right)",
        )
        lam.get_waiter("function_active_v2").wait(FunctionName=name)
        return created["FunctionArn"]
    updated = lam.update_function_code(FunctionName=name, ImageUri=image_uri)
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    return updated["FunctionArn"]


def publish_and_alias(lam: Any, name: str, alias: str) -> tuple[str, str]:
    """(version, alias ARN): a new immutable version, and the alias moved to it."""
    version = lam.publish_version(FunctionName=name)["Version"]
    try:
        found = lam.update_alias(FunctionName=name, Name=alias, FunctionVersion=version)
    except lam.exceptions.ResourceNotFoundException:
        found = lam.create_alias(FunctionName=name, Name=alias, FunctionVersion=version)
    return version, found["AliasArn"]


def wire_http_api(gateway: Any, lam: Any, name: str, alias: str, alias_arn: str, region: str) -> tuple[str, str]:
    """(API id, endpoint): an HTTP API named after the function, POST /predict -> the alias (payload 2.0)."""
    apis = [api for api in gateway.get_apis()["Items"] if api["Name"] == name]
    api = apis[0] if apis else gateway.create_api(Name=name, ProtocolType="HTTP")
    api_id = api["ApiId"]
    integrations = [i for i in gateway.get_integrations(ApiId=api_id)["Items"] if i.get("IntegrationUri") == alias_arn]
    integration = integrations[0] if integrations else gateway.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=alias_arn, PayloadFormatVersion="2.0"
    )  # fmt: skip
    target = "integrations/" + integration["IntegrationId"]
    routes = {route["RouteKey"]: route for route in gateway.get_routes(ApiId=api_id)["Items"]}
    if ROUTE not in routes:
        gateway.create_route(ApiId=api_id, RouteKey=ROUTE, Target=target)
    elif routes[ROUTE].get("Target") != target:
        gateway.update_route(ApiId=api_id, RouteId=routes[ROUTE]["RouteId"], Target=target)
    if "$default" not in {stage["StageName"] for stage in gateway.get_stages(ApiId=api_id)["Items"]}:
        gateway.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    account = alias_arn.split(":")[4]
    try:
        lam.add_permission(
            FunctionName=name,
            Qualifier=alias,
            StatementId=f"http-api-{api_id}",
            Action="lambda:InvokeFunction",
            Principal="apigateway.amazonaws.com",
            SourceArn=f"arn:aws:execute-api:{region}:{account}:{api_id}/*/*/predict",
        )
    except lam.exceptions.ResourceConflictException:
        pass  # the statement is there from an earlier deployment
    return api_id, api["ApiEndpoint"] + "/predict"


def deploy(image_uri: str, alias: str = ALIAS, environ: dict[str, str] | None = None) -> Deployment:
    """The whole deployment; AWS errors become one CourseError line."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    region, name, role_arn, endpoint_url = settings(environ)
    lam, gateway = clients(region, endpoint_url)
    try:
        function_arn = create_or_update_function(lam, name, image_uri, role_arn)
        version, alias_arn = publish_and_alias(lam, name, alias)
        api_id, endpoint = wire_http_api(gateway, lam, name, alias, alias_arn, region)
    except NoCredentialsError as error:
        raise CourseError("no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY") from error
    except (BotoCoreError, ClientError) as error:
        raise CourseError(f"AWS refused the deployment: {error}") from error
    return Deployment(function_arn, version, alias_arn, api_id, endpoint)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--image-uri", required=True, help="the pushed image, best by digest (repo@sha256:...)")
    parser.add_argument("--alias", default=ALIAS, help=f"the alias to move (default {ALIAS})")
    args = parser.parse_args()
    done = deploy(args.image_uri, args.alias)
    print(f"function {done.function_arn} version {done.version}, alias {done.alias_arn}")
    print(f"POST {done.endpoint}")


if __name__ == "__main__":
    run_cli(main)
