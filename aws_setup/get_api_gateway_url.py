"""Print the invoke URLs of your API Gateway APIs: REST (v1), HTTP and WebSocket, one line per stage.

    python aws_setup/get_api_gateway_url.py [--name chat] [--type http] [--region eu-west-1] [--json]

Custom domain names are not listed: use the domain itself as --host.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aws_setup.common import add_common_arguments, client, paginate, print_json, print_table, run, session  # noqa: E402

API_TYPES = ("rest", "http", "websocket")
COLUMNS = ["type", "name", "id", "stage", "url"]


def rest_apis(aws: Any) -> list[dict[str, str]]:
    """Every stage of every REST API: ``https://{id}.execute-api.{region}.amazonaws.com/{stage}``."""
    gateway = client(aws, "apigateway")
    region = gateway.meta.region_name
    found = []
    for api in paginate(gateway, "get_rest_apis", "items"):
        for stage in gateway.get_stages(restApiId=api["id"]).get("item", []):
            url = f"https://{api['id']}.execute-api.{region}.amazonaws.com/{stage['stageName']}"
            found.append(
                {"type": "rest", "name": api["name"], "id": api["id"], "stage": stage["stageName"], "url": url}
            )
    return found


def v2_apis(aws: Any) -> list[dict[str, str]]:
    """Every stage of every HTTP and WebSocket API; the ``$default`` stage has no path of its own."""
    gateway = client(aws, "apigatewayv2")
    found = []
    for api in paginate(gateway, "get_apis", "Items"):
        kind = "websocket" if api.get("ProtocolType") == "WEBSOCKET" else "http"
        endpoint = api.get("ApiEndpoint", "").rstrip("/")
        if kind == "websocket" and endpoint.startswith("https://"):
            endpoint = "wss://" + endpoint.removeprefix("https://")  # moto gives https; AWS gives wss
        for stage in paginate(gateway, "get_stages", "Items", ApiId=api["ApiId"]):
            name = stage["StageName"]
            url = f"{endpoint}/" if name == "$default" else f"{endpoint}/{name}"
            found.append({"type": kind, "name": api.get("Name", ""), "id": api["ApiId"], "stage": name, "url": url})
    return found


def api_urls(aws: Any, name: str = "", api_type: str = "") -> list[dict[str, str]]:
    """Invoke URLs of the APIs whose name contains ``name`` (any case), of one type or all."""
    found = []
    if api_type in ("", "rest"):
        found += rest_apis(aws)
    if api_type in ("", "http", "websocket"):
        found += [api for api in v2_apis(aws) if api_type in ("", api["type"])]
    return [api for api in found if name.lower() in api["name"].lower()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="", help="only APIs whose name contains this (any case)")
    parser.add_argument("--type", choices=API_TYPES, default="", help="only this kind of API")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    apis = api_urls(session(args), args.name, args.type)
    if args.json:
        print_json(apis)
    elif apis:
        print_table(apis, COLUMNS)
    else:
        print("no APIs found" + (f" whose name contains {args.name!r}" if args.name else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    run(main)
