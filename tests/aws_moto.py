"""AWS test helpers: fake credentials, a moto server on loopback, and a seeded Cognito pool.

No test may reach real AWS. In-process tests run under moto's ``mock_aws`` (which answers every AWS call in
the process); anything run as a subprocess gets ``AWS_ENDPOINT_URL`` pointing at a moto server on
127.0.0.1 and fake credentials, with the developer's own AWS profile and config files hidden.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

import boto3
import pytest
import requests

from tests.conftest import ROOT, clean_env

REGION = "us-east-1"
POOL_ID = f"{REGION}_TestPool"
CLIENT_ID = "testclient"
"""A user pool and app client of the Cognito tests."""
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
"""Credentials and settings no real account accepts; the developer's ~/.aws files are hidden."""


def aws_env(endpoint: str | None, **extra: str) -> dict[str, str]:
    """A subprocess environment: clean_env() without any AWS_* or COGNITO_* variable, plus fake credentials."""
    env = {k: v for k, v in clean_env().items() if not k.startswith(("AWS_", "COGNITO_"))}
    env.update(FAKE_AWS)
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    env.update(extra)
    return env


@pytest.fixture
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process's environment with fake credentials and no AWS profile, endpoint or COGNITO_* setting."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "COGNITO_")):
            monkeypatch.delenv(name)
    for name, value in FAKE_AWS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def moto_endpoint(fake_aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto server on a free loopback port, also set as this process's AWS_ENDPOINT_URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    yield endpoint
    requests.post(f"{endpoint}/moto-api/reset", timeout=10)  # moto's state lives in this process: start clean
    server.stop()


@dataclass
class SeededPool:
    """A user pool with one app client and some confirmed users."""

    pool_id: str
    client_id: str
    client_secret: str | None = None
    users: list[tuple[str, str]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """The COGNITO_* settings that point --auth cognito at this pool."""
        env = {"COGNITO_USER_POOL_ID": self.pool_id, "COGNITO_CLIENT_ID": self.client_id}
        if self.client_secret:
            env["COGNITO_CLIENT_SECRET"] = self.client_secret
        return env


def seed_pool(
    users: int = 1, secret: bool = False, name: str = "chat-users", permanent: bool = True, client: object = None
) -> SeededPool:
    """Create a pool, an app client allowing SRP, password and refresh sign-in, and ``users`` confirmed users."""
    cognito = client or boto3.client("cognito-idp", region_name=REGION)
    pool_id = cognito.create_user_pool(PoolName=name)["UserPool"]["Id"]
    app = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="chat-web",
        GenerateSecret=secret,
        ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]
    seeded = SeededPool(pool_id, app["ClientId"], app.get("ClientSecret"))
    for number in range(users):
        email, password = f"user{number}@example.com", f"Passw0rd!{number}"
        cognito.admin_create_user(UserPoolId=pool_id, Username=email, MessageAction="SUPPRESS")
        if permanent:
            cognito.admin_set_user_password(UserPoolId=pool_id, Username=email, Password=password, Permanent=True)
        seeded.users.append((email, password))
    return seeded


def run_script(script: str, *args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run an aws_setup script (python or bash) from the checkout, to completion."""
    command = ["bash", script] if script.endswith(".sh") else [sys.executable, script]
    return subprocess.run([*command, *args], cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=60)
