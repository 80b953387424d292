"""aws_setup/ against a moto server on loopback (scripts run as subprocesses with only AWS_ENDPOINT_URL set),
CloudWatch figures under moto's in-process mock, and error answers moto cannot give through botocore's Stubber."""

from __future__ import annotations

import csv
import datetime as dt
import json
import stat
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from dotenv import dotenv_values
from moto import mock_aws

from aws_setup import cloudwatch_metrics
from aws_setup.common import explain
from tests.aws_moto import REGION, aws_env, fake_aws, moto_endpoint, run_script, seed_pool  # noqa: F401 - fixtures


def seed_apis() -> dict[str, str]:
    """A REST API (stage prod), an HTTP API ($default and dev) and a WebSocket API (live)."""
    rest = boto3.client("apigateway", region_name=REGION)
    rest_id = rest.create_rest_api(name="chat-rest")["id"]
    root = rest.get_resources(restApiId=rest_id)["items"][0]["id"]
    rest.put_method(restApiId=rest_id, resourceId=root, httpMethod="POST", authorizationType="NONE")
    rest.put_integration(restApiId=rest_id, resourceId=root, httpMethod="POST", type="MOCK")
    rest.create_deployment(restApiId=rest_id, stageName="prod")
    v2 = boto3.client("apigatewayv2", region_name=REGION)
    http_id = v2.create_api(Name="chat-http", ProtocolType="HTTP")["ApiId"]
    v2.create_stage(ApiId=http_id, StageName="$default")
    v2.create_stage(ApiId=http_id, StageName="dev")
    ws_id = v2.create_api(Name="voice-ws", ProtocolType="WEBSOCKET", RouteSelectionExpression="$request.body.action")
    v2.create_stage(ApiId=ws_id["ApiId"], StageName="live")
    return {"rest": rest_id, "http": http_id, "websocket": ws_id["ApiId"]}


def test_discovery_lists_every_api_and_stage(moto_endpoint: str) -> None:  # noqa: F811
    ids = seed_apis()
    env = aws_env(moto_endpoint)
    result = run_script("aws_setup/get_api_gateway_url.py", "--json", env=env)
    assert result.returncode == 0, result.stderr
    urls = {(api["type"], api["stage"]): api["url"] for api in json.loads(result.stdout)}
    base = "execute-api.us-east-1.amazonaws.com"
    assert urls == {
        ("rest", "prod"): f"https://{ids['rest']}.{base}/prod",
        ("http", "$default"): f"https://{ids['http']}.{base}/",
        ("http", "dev"): f"https://{ids['http']}.{base}/dev",
        ("websocket", "live"): f"wss://{ids['websocket']}.{base}/live",
    }
    table = run_script("aws_setup/get_api_gateway_url.py", "--name", "CHAT", "--type", "http", env=env)
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["TYPE", "NAME", "ID", "STAGE", "URL"] and len(lines) == 3
    assert all(" chat-http " in line for line in lines[1:])


def test_cognito_info_shows_clients_secrets_and_flows(moto_endpoint: str) -> None:  # noqa: F811
    public, secret = seed_pool(name="chat-users"), seed_pool(name="admin-users", secret=True)
    cognito = boto3.client("cognito-idp", region_name=REGION)
    cognito.create_user_pool_client(
        UserPoolId=secret.pool_id, ClientName="password-only", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )
    cognito.create_user_pool_client(
        UserPoolId=secret.pool_id, ClientName="hosted-ui", ExplicitAuthFlows=["ALLOW_CUSTOM_AUTH"]
    )
    env = aws_env(moto_endpoint)
    result = run_script("aws_setup/get_cognito_info.py", "--json", env=env)
    assert result.returncode == 0, result.stderr
    found = {pool["pool_id"]: pool for pool in json.loads(result.stdout)}
    assert set(found) == {public.pool_id, secret.pool_id}
    clients = {app["client_name"]: app for app in found[secret.pool_id]["clients"]}
    assert clients["chat-web"]["has_secret"] and not found[public.pool_id]["clients"][0]["has_secret"]
    assert clients["chat-web"]["allows"] == ["srp", "password", "refresh"]
    assert clients["password-only"]["allows"] == ["password"] and clients["password-only"]["usable"]
    assert not clients["hosted-ui"]["usable"]
    assert secret.client_secret not in result.stdout
    table = run_script("aws_setup/get_cognito_info.py", "--name", "admin", env=env).stdout
    assert "chat-users" not in table and "password-only" in table


def test_create_test_users_makes_confirmed_users_and_deletes_them(moto_endpoint: str, tmp_path: Path) -> None:  # noqa: F811
    pool = seed_pool(users=0)
    accounts = tmp_path / "accounts.csv"
    env = aws_env(moto_endpoint, COGNITO_USER_POOL_ID=pool.pool_id)
    result = run_script("aws_setup/create_test_users.py", "--count", "5", "--output", str(accounts), env=env)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(accounts.open()))
    assert [row["email"] for row in rows] == [f"loadtest-000{n}@example.com" for n in range(1, 6)]
    assert stat.S_IMODE(accounts.stat().st_mode) == 0o600
    cognito = boto3.client("cognito-idp", region_name=REGION)
    user = cognito.admin_get_user(UserPoolId=pool.pool_id, Username=rows[0]["email"])
    assert user["UserStatus"] == "CONFIRMED"
    again = run_script("aws_setup/create_test_users.py", "--count", "5", "--output", str(accounts), env=env)
    assert again.returncode == 0 and next(csv.DictReader(accounts.open()))["password"] != rows[0]["password"]
    cognito.admin_create_user(UserPoolId=pool.pool_id, Username="someone-else@example.com", MessageAction="SUPPRESS")
    deleted = run_script("aws_setup/create_test_users.py", "--delete", env=env)
    assert deleted.returncode == 0 and "deleted 5 users" in deleted.stdout
    left = [u["Username"] for u in cognito.list_users(UserPoolId=pool.pool_id)["Users"]]
    assert left == ["someone-else@example.com"]


def test_setup_aws_sh_writes_a_dotenv(moto_endpoint: str, tmp_path: Path) -> None:  # noqa: F811
    ids = seed_apis()
    pool = seed_pool(secret=True)
    env_file = tmp_path / ".env"
    env_file.write_text("# mine\nLOGIN_EMAIL=me@example.com\nCOGNITO_CLIENT_ID=stale\n")
    env = aws_env(moto_endpoint)
    flags = ("--env-file", str(env_file), "--yes")
    ambiguous = run_script("aws_setup/setup_aws.sh", *flags, env=env)
    assert ambiguous.returncode == 2
    assert ambiguous.stderr.startswith("aws_setup: error: 4 APIs match") and ambiguous.stderr.count("\n") == 1

    result = run_script("aws_setup/setup_aws.sh", *flags, "--api", "chat-http", "--stage", "dev", env=env)
    assert result.returncode == 0, result.stderr
    assert "AWS account 123456789012" in result.stdout and pool.client_secret not in result.stdout
    values = dotenv_values(env_file)
    assert values == {
        "LOGIN_EMAIL": "me@example.com",
        "COGNITO_CLIENT_ID": pool.client_id,
        "AWS_REGION": REGION,
        "CHATBOT_URL": f"https://{ids['http']}.execute-api.us-east-1.amazonaws.com/dev",
        "COGNITO_USER_POOL_ID": pool.pool_id,
        "COGNITO_CLIENT_SECRET": pool.client_secret,
        "LOCUST_AUTH": "cognito",
    }
    assert env_file.read_text().startswith("# mine\n")

    # Asked instead: the fourth API of the list is the WebSocket one.
    asked = run_script(
        "aws_setup/setup_aws.sh", "--env-file", str(env_file), "--ask", "--no-cognito", env=env, stdin="9\n4\n"
    )
    assert asked.returncode == 0, asked.stderr
    assert "type a number from 1 to 4" in asked.stdout
    assert (
        dotenv_values(env_file)["CHATBOT_WS_URL"]
        == f"wss://{ids['websocket']}.execute-api.us-east-1.amazonaws.com/live"
    )


def test_scripts_fail_with_one_line_without_credentials(moto_endpoint: str) -> None:  # noqa: F811
    env = aws_env(moto_endpoint)
    del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    for script in ("aws_setup/get_api_gateway_url.py", "aws_setup/get_cognito_info.py", "aws_setup/setup_aws.sh"):
        result = run_script(script, env=env)
        assert result.returncode == 2, (script, result.stdout, result.stderr)
        assert result.stderr.startswith("aws_setup: error: no AWS credentials: run 'aws configure'"), result.stderr
        assert result.stderr.count("\n") == 1
    no_region = {k: v for k, v in env.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    result = run_script("aws_setup/get_cognito_info.py", env=no_region)
    assert (result.returncode, result.stderr) == (
        2,
        "aws_setup: error: no AWS region: give --region, or set AWS_REGION (or a region in your profile)\n",
    )


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("ExpiredToken", "AWS refused the credentials (ExpiredToken): they are wrong or expired"),
        ("AccessDenied", "not allowed to call GetCallerIdentity (AccessDenied); docs/AWS_SETUP.md lists the IAM"),
    ],
)
def test_credential_and_permission_errors_say_what_to_do(fake_aws: None, code: str, expected: str) -> None:  # noqa: F811
    sts = boto3.client("sts", region_name=REGION)
    with Stubber(sts) as stubber:
        stubber.add_client_error("get_caller_identity", code, "refused", http_status_code=403)
        with pytest.raises(Exception) as error:
            sts.get_caller_identity()
    assert explain(error.value).startswith(expected)


# --- CloudWatch ----------------------------------------------------------------------------------------------


def put_metrics(namespace: str, dimensions: dict[str, str], values: dict[str, list[float]], at: dt.datetime) -> None:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    dims = [{"Name": k, "Value": v} for k, v in dimensions.items()]
    for metric, points in values.items():
        data = [{"MetricName": metric, "Dimensions": dims, "Value": v, "Timestamp": at} for v in points]
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=data)


def a_time_the_run_will_cover() -> dt.datetime:
    """Now, once the next 15 s stay inside this minute: the plugin widens the test window to whole minutes,
    so a point stamped now is inside it as long as Locust starts within the same minute."""
    now = time.time()
    if now % 60 > 45:
        time.sleep(60 - now % 60 + 0.1)
    return dt.datetime.now(dt.UTC)


@pytest.fixture
def aws(fake_aws: None) -> Any:  # noqa: F811
    with mock_aws():
        yield


def test_cloudwatch_figures_for_http_and_rest_apis_and_lambda(aws: None) -> None:
    ids = seed_apis()
    now = dt.datetime.now(dt.UTC)
    put_metrics(
        "AWS/ApiGateway",
        {"ApiId": ids["http"], "Stage": "$default"},
        {"Count": [1] * 40, "5xx": [1, 1], "Latency": [100, 300]},
        now,
    )
    put_metrics("AWS/ApiGateway", {"ApiName": "chat-rest", "Stage": "prod"}, {"Count": [1] * 7, "4XXError": [1]}, now)
    put_metrics(
        "AWS/Lambda",
        {"FunctionName": "chat-fn"},
        {"Invocations": [1] * 9, "Duration": [20, 40], "ConcurrentExecutions": [3, 5]},
        now,
    )
    aws_session = boto3.Session(region_name=REGION)
    started, stopped = time.time() - 5, time.time() + 5
    http = cloudwatch_metrics.find_api(aws_session, "chat-http")  # two stages: $default is the one without a path
    target = cloudwatch_metrics.Target(http, ["chat-fn"])
    figures = cloudwatch_metrics.fetch(
        aws_session.client("cloudwatch"), cloudwatch_metrics.queries(target, []), started, stopped
    )
    gateway, function = figures["api_gateway"], figures["lambda"]["chat-fn"]
    assert (gateway["requests"], gateway["4xx"], gateway["5xx"]) == (40, None, 2)
    assert gateway["latency_ms"] == {"average": 200, "maximum": 300}
    assert function == {
        "invocations": 9, "errors": None, "throttles": None, "max_concurrent": 5,
        "duration_ms": {"average": 30, "maximum": 40},
    }  # fmt: skip
    assert figures["window"]["period_s"] % 60 == 0

    rest = cloudwatch_metrics.find_api(aws_session, ids["rest"])
    rest_figures = cloudwatch_metrics.fetch(
        aws_session.client("cloudwatch"),
        cloudwatch_metrics.queries(cloudwatch_metrics.Target(rest), []),
        started,
        stopped,
    )
    assert (rest_figures["api_gateway"]["requests"], rest_figures["api_gateway"]["4xx"]) == (7, 1)
    with pytest.raises(LookupError, match="has no stage 'beta'"):
        cloudwatch_metrics.find_api(aws_session, "chat-http", "beta")


def test_cloudwatch_percentiles_are_asked_for_the_whole_window(fake_aws: None) -> None:  # noqa: F811
    # moto cannot compute percentiles, so the query and the answer are checked with a Stubber.
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    target = cloudwatch_metrics.Target(None, ["fn"])
    wanted = cloudwatch_metrics.queries(target, ["p95", "p99"])
    p99 = next(n for n, q in enumerate(wanted) if q.stat == "p99")
    started = 1_700_000_030.0
    with Stubber(cloudwatch) as stubber:
        stubber.add_response(
            "get_metric_data",
            {"MetricDataResults": [{"Id": f"q{p99}", "Values": [812.5], "StatusCode": "Complete"}]},
        )
        figures = cloudwatch_metrics.fetch(cloudwatch, wanted, started, started + 125)
    assert figures["lambda"]["fn"]["duration_ms"]["p99"] == 812.5
    assert figures["window"]["period_s"] == 180  # 00:30 → 02:35 widened to whole minutes


def test_cloudwatch_section_in_a_real_run(moto_endpoint: str, demobot, run_locust) -> None:  # noqa: F811
    ids = seed_apis()
    put_metrics(
        "AWS/ApiGateway",
        {"ApiId": ids["http"], "Stage": "$default"},
        {"Count": [1] * 25, "Latency": [50, 70]},
        a_time_the_run_will_cover(),
    )
    bot = demobot("--ttft-ms", "5", "--token-ms", "1")
    run = run_locust(
        "--host", bot.url, "--user-mix", "RestChatUser", "-u", "2", "-t", "3s", "--think-time", "0.2",
        "--cloudwatch", "--cloudwatch-api", "chat-http", "--cloudwatch-wait", "0", "--cloudwatch-percentiles", "",
        env=aws_env(moto_endpoint),
    )  # fmt: skip
    assert run.returncode == 0, run.output
    section = run.summary["cloudwatch"]
    assert section["api_gateway"]["requests"] == 25 and section["api_gateway"]["latency_ms"]["average"] == 60
    assert section["api_gateway"]["id"] == ids["http"] and section["region"] == REGION
    assert section["client"]["count"] == run.summary["totals"]["count"] > 0
    missing = run_locust("--host", bot.url, "-t", "1s", "--cloudwatch", env=aws_env(moto_endpoint))
    assert missing.returncode == 2 and "--cloudwatch needs --cloudwatch-api" in missing.output
