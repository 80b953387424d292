"""What the aws_setup scripts share: the boto3 session, the common flags, and one-line errors.

The endpoint always comes from boto3's own chain (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_<SERVICE>``, a
profile's ``endpoint_url``), never from code, so the same scripts work against AWS, LocalStack or moto.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NoReturn

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

RETRIES = Config(retries={"mode": "standard", "max_attempts": 8})
"""Admin and list calls are throttled at a few tens per second; standard retries back off and try again."""

CREDENTIAL_ERRORS = (
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
)


class SetupError(Exception):
    """A problem the user can fix; the message is one line."""


def fail(message: str) -> NoReturn:
    """End with one line on stderr and exit code 2."""
    sys.stderr.write(f"aws_setup: error: {message}\n")
    sys.exit(2)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """--region, --profile and --json."""
    parser.add_argument("--region", default=None, help="AWS region (default: AWS_REGION or the profile's)")
    parser.add_argument("--profile", default=None, help="named AWS profile (default: AWS_PROFILE or default)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def session(args: argparse.Namespace) -> boto3.Session:
    """A boto3 session for the chosen profile and region; SetupError when the profile or region is missing."""
    try:
        aws = boto3.Session(profile_name=args.profile, region_name=args.region)
    except ProfileNotFound as error:
        raise SetupError(f"{error}; list yours with: aws configure list-profiles") from None
    if not aws.region_name:
        raise SetupError("no AWS region: give --region, or set AWS_REGION (or a region in your profile)")
    return aws


def client(aws: boto3.Session, service: str) -> Any:
    """A client with patient retries."""
    return aws.client(service, config=RETRIES)


def paginate(aws_client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every item under ``key`` across all pages of a paginated operation."""
    for page in aws_client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


def explain(error: Exception) -> str:
    """One line for an AWS error, saying what to do about the usual ones."""
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return "no AWS credentials: run 'aws configure' (or 'aws sso login'), or set AWS_PROFILE or AWS_ACCESS_KEY_ID"
    if isinstance(error, NoRegionError):
        return "no AWS region: give --region, or set AWS_REGION"
    if isinstance(error, EndpointConnectionError):
        return f"cannot reach AWS: {error}"
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "Error")
        message = error.response.get("Error", {}).get("Message", "")
        operation = error.operation_name
        if code in CREDENTIAL_ERRORS:
            return f"AWS refused the credentials ({code}): they are wrong or expired; renew them and try again"
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            return f"not allowed to call {operation} ({code}); docs/AWS_SETUP.md lists the IAM permissions needed"
        return f"{operation} failed: {code}: {message}"
    return str(error) or type(error).__name__


def run(main: Callable[[], int]) -> None:
    """Run a script's main: its exit code, or one line and exit 2 for an AWS or setup error."""
    try:
        code = main()
    except SetupError as error:
        fail(str(error))
    except (BotoCoreError, ClientError) as error:
        fail(explain(error))
    except KeyboardInterrupt:
        fail("interrupted")
    sys.exit(code)


def print_table(rows: Iterable[dict[str, Any]], columns: list[str]) -> None:
    """Rows as aligned text columns."""
    rows = list(rows)
    cells = [[str(row.get(column, "")) for column in columns] for row in rows]
    widths = [max([len(column)] + [len(line[i]) for line in cells]) for i, column in enumerate(columns)]
    print("  ".join(column.upper().ljust(width) for column, width in zip(columns, widths, strict=True)).rstrip())
    for line in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))
