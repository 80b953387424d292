"""Create N confirmed load-test users in a Cognito user pool and write them to an accounts CSV (or delete them).

    python aws_setup/create_test_users.py --count 50 [--pool-id ID] [--output cognito-accounts.csv]
    python aws_setup/create_test_users.py --delete [--pool-id ID] [--prefix loadtest]

Users are named ``PREFIX-NNNN@DOMAIN`` (an email, so pools that sign in by email accept them), get a random
permanent password (so they never meet NEW_PASSWORD_REQUIRED) and a verified email, and no invitation is sent.
Running it again resets their passwords. The CSV (``email,password``, readable by you only) is what
``--accounts`` takes. --delete removes every user whose name starts with ``PREFIX-``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import secrets
import string
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aws_setup.common import SetupError, add_common_arguments, client, paginate, run, session  # noqa: E402

DEFAULT_OUTPUT = "cognito-accounts.csv"


def new_password(length: int = 20) -> str:
    """A random password meeting Cognito's strictest default policy: upper, lower, digit and symbol."""
    alphabet = string.ascii_letters + string.digits
    body = [secrets.choice(alphabet) for _ in range(length - 4)]
    body += [secrets.choice(string.ascii_uppercase), secrets.choice(string.ascii_lowercase)]
    body += [secrets.choice(string.digits), secrets.choice("!#%+-=_")]
    secrets.SystemRandom().shuffle(body)
    return "".join(body)


def user_name(prefix: str, number: int, domain: str) -> str:
    return f"{prefix}-{number:04d}@{domain}"


def create_users(cognito: Any, pool_id: str, count: int, prefix: str, domain: str) -> list[tuple[str, str]]:
    """Create (or reset) ``count`` confirmed users; returns their (email, password) pairs."""
    accounts = []
    for number in range(1, count + 1):
        email, password = user_name(prefix, number, domain), new_password()
        with contextlib.suppress(cognito.exceptions.UsernameExistsException):  # an earlier run's: reset below
            cognito.admin_create_user(
                UserPoolId=pool_id,
                Username=email,
                MessageAction="SUPPRESS",
                UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
            )
        cognito.admin_set_user_password(UserPoolId=pool_id, Username=email, Password=password, Permanent=True)
        accounts.append((email, password))
    return accounts


def delete_users(cognito: Any, pool_id: str, prefix: str) -> int:
    """Delete every user whose username or email starts with ``PREFIX-``; returns how many."""
    start = f"{prefix}-"
    doomed = [
        user["Username"]
        for user in paginate(cognito, "list_users", "Users", UserPoolId=pool_id)
        if user["Username"].startswith(start)
        or any(a["Name"] == "email" and a["Value"].startswith(start) for a in user.get("Attributes", []))
    ]
    for username in doomed:
        cognito.admin_delete_user(UserPoolId=pool_id, Username=username)
    return len(doomed)


def write_accounts(path: Path, accounts: list[tuple[str, str]]) -> None:
    """The accounts CSV, created readable and writable by its owner only (it holds passwords)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["email", "password"])
        writer.writerows(accounts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pool-id", default=os.environ.get("COGNITO_USER_POOL_ID", ""), help="default: COGNITO_USER_POOL_ID"
    )
    parser.add_argument("--count", type=int, default=10, help="how many users (default 10)")
    parser.add_argument("--prefix", default="loadtest", help="user names start with PREFIX- (default loadtest)")
    parser.add_argument("--domain", default="example.com", help="email domain of the users (default example.com)")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help=f"accounts CSV to write (default {DEFAULT_OUTPUT})")
    parser.add_argument("--delete", action="store_true", help="delete the PREFIX- users instead of creating them")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    if not args.pool_id:
        raise SetupError("no user pool: give --pool-id or set COGNITO_USER_POOL_ID (get_cognito_info.py lists pools)")
    if not args.delete and not 1 <= args.count <= 10_000:
        raise SetupError(f"--count must be from 1 to 10000, got {args.count}")
    if not args.prefix or not args.prefix.replace("-", "").replace("_", "").isalnum():
        raise SetupError(f"--prefix {args.prefix!r}: use letters, digits, - and _")
    cognito = client(session(args), "cognito-idp")
    if args.delete:
        deleted = delete_users(cognito, args.pool_id, args.prefix)
        print(f"deleted {deleted} users named {args.prefix}-* from {args.pool_id}")
        return 0
    accounts = create_users(cognito, args.pool_id, args.count, args.prefix, args.domain)
    output = Path(args.output)
    write_accounts(output, accounts)
    print(f"created {len(accounts)} confirmed users in {args.pool_id}; accounts in {output} (use --accounts {output})")
    return 0


if __name__ == "__main__":
    run(main)
