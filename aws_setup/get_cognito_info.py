"""Print your Cognito user pools with their app clients: whether a client has a secret, which sign-in flows it allows.

    python aws_setup/get_cognito_info.py [--name chat] [--region eu-west-1] [--json]

--auth cognito signs in with USER_SRP_AUTH, or USER_PASSWORD_AUTH when SRP is not allowed, and renews tokens
with REFRESH_TOKEN_AUTH. Client secrets are never printed.
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

FLOW_NAMES = {
    "srp": ("ALLOW_USER_SRP_AUTH", "USER_SRP_AUTH"),
    "password": ("ALLOW_USER_PASSWORD_AUTH", "USER_PASSWORD_AUTH"),
    "refresh": ("ALLOW_REFRESH_TOKEN_AUTH", "REFRESH_TOKEN_AUTH"),
}
"""Our short names for the flows that matter here, with the values an app client may list for each."""

COLUMNS = ["pool_id", "pool_name", "client_id", "client_name", "secret", "flows", "usable"]


def allowed(flows: list[str], name: str) -> bool:
    """Whether a client's ExplicitAuthFlows allow a flow (no list: Cognito's default, SRP and refresh)."""
    if not flows:
        return name in ("srp", "refresh")
    return any(value in flows for value in FLOW_NAMES[name])


def describe_client(cognito: Any, pool_id: str, client_id: str) -> dict[str, Any]:
    """One app client: secret or not, its flows, and whether --auth cognito can use it."""
    app = cognito.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]
    flows = list(app.get("ExplicitAuthFlows", []))
    allows = [name for name in FLOW_NAMES if allowed(flows, name)]
    return {
        "client_id": client_id,
        "client_name": app.get("ClientName", ""),
        "has_secret": bool(app.get("ClientSecret")),
        "auth_flows": flows,
        "allows": allows,
        "usable": "srp" in allows or "password" in allows,
    }


def pools(aws: Any, name: str = "") -> list[dict[str, Any]]:
    """The user pools whose name or id contains ``name`` (any case), each with its app clients."""
    cognito = client(aws, "cognito-idp")
    found = []
    for pool in paginate(cognito, "list_user_pools", "UserPools", MaxResults=60):
        if name.lower() not in pool["Name"].lower() and name.lower() not in pool["Id"].lower():
            continue
        clients = [
            describe_client(cognito, pool["Id"], app["ClientId"])
            for app in paginate(
                cognito, "list_user_pool_clients", "UserPoolClients", UserPoolId=pool["Id"], MaxResults=60
            )
        ]
        found.append(
            {"pool_id": pool["Id"], "pool_name": pool["Name"], "region": cognito.meta.region_name, "clients": clients}
        )
    return found


def rows(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One table row per app client (a pool without clients gets one row too)."""
    table = []
    for pool in found:
        for app in pool["clients"] or [{}]:
            table.append(
                {
                    "pool_id": pool["pool_id"],
                    "pool_name": pool["pool_name"],
                    "client_id": app.get("client_id", "-"),
                    "client_name": app.get("client_name", ""),
                    "secret": {True: "yes", False: "no"}.get(app.get("has_secret"), ""),
                    "flows": ",".join(app.get("allows", [])),
                    "usable": {True: "yes", False: "no"}.get(app.get("usable"), ""),
                }
            )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="", help="only pools whose name or id contains this (any case)")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    found = pools(session(args), args.name)
    if args.json:
        print_json(found)
    elif found:
        print_table(rows(found), COLUMNS)
    else:
        print("no user pools found" + (f" matching {args.name!r}" if args.name else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    run(main)
