"""Point Chatswarm at your AWS stack: check credentials, find the API and Cognito pool, write them into .env.

    bash aws_setup/setup_aws.sh [--api NAME] [--pool NAME] [--client NAME] [--region R] [--profile P] [--yes]

Steps: ``sts get-caller-identity`` (fails with one line when credentials are missing or expired), then the
API Gateway invoke URLs and the Cognito pools with their app clients. When more than one matches, it asks
(on a terminal, or with --ask) or, with --yes or no terminal, stops with the candidates and the flag that
picks one. Writes CHATBOT_URL (or CHATBOT_WS_URL for a WebSocket API), AWS_REGION, AWS_PROFILE when given,
COGNITO_USER_POOL_ID, COGNITO_CLIENT_ID, COGNITO_CLIENT_SECRET when the client has one, and
LOCUST_AUTH=cognito, with python-dotenv's set_key. Other lines of the file are kept; secrets are not printed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dotenv import set_key, unset_key  # noqa: E402

from aws_setup.common import SetupError, client, run, session  # noqa: E402
from aws_setup.get_api_gateway_url import API_TYPES, api_urls  # noqa: E402
from aws_setup.get_cognito_info import pools  # noqa: E402

SECRET_KEYS = ("COGNITO_CLIENT_SECRET",)


def default_env_file() -> Path:
    """The .env Chatswarm reads: CHATSWARM_ENV_FILE, else .env in the checkout."""
    return Path(os.environ.get("CHATSWARM_ENV_FILE") or ROOT / ".env")


def choose(
    candidates: list[dict[str, Any]], what: str, label: Callable[[dict[str, Any]], str], flag: str, ask: bool
) -> dict[str, Any]:
    """The one candidate, or the user's pick when asking; SetupError when several match and nobody is asked."""
    if len(candidates) == 1:
        return candidates[0]
    if not ask:
        shown = ", ".join(label(c) for c in candidates[:5]) + (" …" if len(candidates) > 5 else "")
        raise SetupError(f"{len(candidates)} {what}s match ({shown}); pick one with {flag}")
    print(f"Which {what}?")
    for number, candidate in enumerate(candidates, 1):
        print(f"  {number}) {label(candidate)}")
    while True:
        answer = input(f"{what} [1-{len(candidates)}]: ").strip()
        if answer.isdigit() and 1 <= int(answer) <= len(candidates):
            return candidates[int(answer) - 1]
        print(f"  type a number from 1 to {len(candidates)}")


def find_api(aws: Any, args: argparse.Namespace, ask: bool) -> dict[str, str] | None:
    apis = [a for a in api_urls(aws, args.api, args.api_type) if args.stage in ("", a["stage"])]
    if not apis:
        if args.api or args.stage:
            raise SetupError(f"no API Gateway API matches --api {args.api!r} --stage {args.stage!r}")
        print("no API Gateway APIs found: CHATBOT_URL left as it is")
        return None
    return choose(apis, "API", lambda a: f"{a['name']} ({a['type']}) {a['url']}", "--api NAME and --stage", ask)


def find_client(aws: Any, args: argparse.Namespace, ask: bool) -> dict[str, Any] | None:
    pairs = [
        {**app, "pool_id": pool["pool_id"], "pool_name": pool["pool_name"]}
        for pool in pools(aws, args.pool)
        for app in pool["clients"]
        if app["usable"] and args.client.lower() in (app["client_id"].lower() + " " + app["client_name"].lower())
    ]
    if not pairs:
        if args.pool or args.client:
            raise SetupError(f"no usable app client matches --pool {args.pool!r} --client {args.client!r}")
        print("no Cognito pool with an app client allowing SRP or password sign-in: COGNITO_* left as they are")
        return None
    label = lambda p: f"{p['pool_name']} / {p['client_name']} ({p['client_id']})"  # noqa: E731
    return choose(pairs, "app client", label, "--pool NAME and --client NAME", ask)


def settings_for(aws: Any, api: dict[str, str] | None, app: dict[str, Any] | None) -> dict[str, str | None]:
    """The .env values to write; None means remove the key."""
    values: dict[str, str | None] = {"AWS_REGION": aws.region_name}
    if aws.profile_name and aws.profile_name != "default":
        values["AWS_PROFILE"] = aws.profile_name
    if api is not None:
        values["CHATBOT_WS_URL" if api["type"] == "websocket" else "CHATBOT_URL"] = api["url"]
    if app is not None:
        values["COGNITO_USER_POOL_ID"] = app["pool_id"]
        values["COGNITO_CLIENT_ID"] = app["client_id"]
        values["COGNITO_CLIENT_SECRET"] = None
        if app["has_secret"]:
            described = client(aws, "cognito-idp").describe_user_pool_client(
                UserPoolId=app["pool_id"], ClientId=app["client_id"]
            )
            values["COGNITO_CLIENT_SECRET"] = described["UserPoolClient"]["ClientSecret"]
        values["LOCUST_AUTH"] = "cognito"
    return values


def write_env(path: Path, values: dict[str, str | None]) -> None:
    """Set (or remove) each key in the .env file, keeping its other lines; a new file is readable by its owner only."""
    if not path.exists():
        path.touch(mode=0o600)
    for key, value in values.items():
        if value is None:
            unset_key(path, key, quote_mode="never")
        else:
            set_key(path, key, value, quote_mode="never")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-file", default=str(default_env_file()), help="file to write (default .env)")
    parser.add_argument("--api", default="", help="API name (part of it) to use")
    parser.add_argument("--api-type", choices=API_TYPES, default="", help="only this kind of API")
    parser.add_argument("--stage", default="", help="stage to use (default: the only one)")
    parser.add_argument("--pool", default="", help="user pool name or id (part of it)")
    parser.add_argument("--client", default="", help="app client name or id (part of it)")
    parser.add_argument("--no-api", action="store_true", help="leave CHATBOT_URL alone")
    parser.add_argument("--no-cognito", action="store_true", help="leave the COGNITO_* settings alone")
    parser.add_argument("--yes", action="store_true", help="never ask: fail when a choice is ambiguous")
    parser.add_argument("--ask", action="store_true", help="ask even when not on a terminal")
    parser.add_argument("--region", default=None, help="AWS region (default: AWS_REGION or the profile's)")
    parser.add_argument("--profile", default=None, help="named AWS profile (default: AWS_PROFILE or default)")
    args = parser.parse_args(argv)
    ask = args.ask or (sys.stdin.isatty() and not args.yes)

    aws = session(args)
    identity = client(aws, "sts").get_caller_identity()
    print(f"AWS account {identity['Account']} as {identity['Arn']}, region {aws.region_name}")
    api = None if args.no_api else find_api(aws, args, ask)
    app = None if args.no_cognito else find_client(aws, args, ask)
    values = settings_for(aws, api, app)
    path = Path(args.env_file)
    write_env(path, values)
    print(f"wrote {path}:")
    for key, value in values.items():
        shown = "(removed)" if value is None else "********" if key in SECRET_KEYS else value
        print(f"  {key}={shown}")
    if app is not None:
        print("next: python aws_setup/create_test_users.py --count 20, then run with --accounts cognito-accounts.csv")
    return 0


if __name__ == "__main__":
    run(main)
