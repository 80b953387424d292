"""Cognito's sign-in client (users/auth/cognito_client.py): flows, challenges, errors and token checks, answered by
botocore's Stubber where moto cannot (wrong password, a flow the app client does not allow, MFA, throttling)."""

from __future__ import annotations

import base64
import json
import random
import time
from typing import Any

import boto3
import jwt
import pytest
from botocore.stub import Stubber
from cryptography.hazmat.primitives.asymmetric import rsa

from core.cognito_tokens import CognitoTokenVerifier, aws_issuer
from demobot.cognito_check import CognitoCheck
from tests.aws_moto import CLIENT_ID, POOL_ID, REGION, aws_env, fake_aws, moto_endpoint, run_script, seed_pool  # noqa: F401 - fixtures
from users.auth.cognito_client import CognitoClient, CognitoSettings, CognitoTokens
from users.auth.providers import AuthFailed, Credentials


class LocalPool:
    """Tokens signed with a key made here, and a Stubber on a real boto3 client."""

    def __init__(self, secret: str | None = None) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = {"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]}
        self.verifier = CognitoTokenVerifier(self.jwks, [aws_issuer(POOL_ID)], CLIENT_ID)
        self.client = boto3.client("cognito-idp", region_name=REGION)
        self.stubber = Stubber(self.client)
        settings = CognitoSettings(POOL_ID, CLIENT_ID, secret, REGION)
        self.cognito = CognitoClient(settings, client=self.client, verifier=self.verifier)

    def token(self, use: str, lifetime_s: float = 3600, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": aws_issuer(POOL_ID), "token_use": use, "iat": now, "exp": now + lifetime_s}
        body.update({"aud": CLIENT_ID, "cognito:username": "u-1"} if use == "id" else {"client_id": CLIENT_ID})
        body.update(claims)
        return jwt.encode(body, self.key, algorithm="RS256", headers={"kid": "k1"})

    def tokens_answer(self) -> dict[str, Any]:
        result = {
            "IdToken": self.token("id"),
            "AccessToken": self.token("access"),
            "RefreshToken": "r",
            "TokenType": "Bearer",
        }
        return {"AuthenticationResult": result}

    def srp_challenge(self) -> None:
        parameters = {
            "SALT": "a1b2c3d4e5f6",
            "SRP_B": f"{random.getrandbits(3000):x}",
            "SECRET_BLOCK": base64.b64encode(b"secret block").decode(),
            "USER_ID_FOR_SRP": "u-1",
            "USERNAME": "u-1",
        }
        self.stubber.add_response(
            "initiate_auth", {"ChallengeName": "PASSWORD_VERIFIER", "ChallengeParameters": parameters}
        )

    def sign_in(self) -> CognitoTokens:
        with self.stubber:
            tokens = self.cognito.sign_in(Credentials("a@example.com", "pw"))
        self.stubber.assert_no_pending_responses()
        return tokens


@pytest.fixture
def local(fake_aws: None) -> LocalPool:  # noqa: F811 - the fixture imported above
    return LocalPool()


def test_wrong_password_is_one_clear_error(local: LocalPool) -> None:
    local.srp_challenge()
    local.stubber.add_client_error(
        "respond_to_auth_challenge", "NotAuthorizedException", "Incorrect username or password."
    )
    with pytest.raises(AuthFailed) as failure:
        local.sign_in()
    assert str(failure.value) == "Cognito: incorrect username or password for a@example.com"


@pytest.mark.parametrize(
    ("challenge", "expected"),
    [
        ("SOFTWARE_TOKEN_MFA", r"a@example.com needs multi-factor authentication \(SOFTWARE_TOKEN_MFA\)"),
        ("SMS_MFA", r"needs multi-factor authentication \(SMS_MFA\)"),
        ("MFA_SETUP", r"needs multi-factor authentication \(MFA_SETUP\)"),
        ("NEW_PASSWORD_REQUIRED", r"must set a new password first"),
    ],
)
def test_challenges_simulated_users_cannot_answer(local: LocalPool, challenge: str, expected: str) -> None:
    local.srp_challenge()
    local.stubber.add_response("respond_to_auth_challenge", {"ChallengeName": challenge, "Session": "s" * 20})
    with pytest.raises(AuthFailed, match=expected):
        local.sign_in()


def test_falls_back_to_user_password_auth_when_srp_is_not_allowed(local: LocalPool) -> None:
    local.stubber.add_client_error(
        "initiate_auth", "InvalidParameterException", "USER_SRP_AUTH is not enabled for the client."
    )
    local.stubber.add_response(
        "initiate_auth",
        local.tokens_answer(),
        {
            "ClientId": CLIENT_ID,
            "AuthFlow": "USER_PASSWORD_AUTH",
            "AuthParameters": {"USERNAME": "a@example.com", "PASSWORD": "pw"},
        },
    )
    tokens = local.sign_in()
    assert tokens.username == "u-1" and tokens.refresh_token == "r"
    assert not local.cognito.srp_allowed  # the next sign-in goes straight to USER_PASSWORD_AUTH
    local.stubber.add_response("initiate_auth", local.tokens_answer())
    local.sign_in()


def test_neither_flow_allowed_says_what_to_enable(local: LocalPool) -> None:
    local.stubber.add_client_error(
        "initiate_auth", "InvalidParameterException", "USER_SRP_AUTH is not enabled for the client."
    )
    local.stubber.add_client_error(
        "initiate_auth", "InvalidParameterException", "USER_PASSWORD_AUTH flow not enabled for this client"
    )
    with pytest.raises(AuthFailed, match="allows neither USER_SRP_AUTH nor USER_PASSWORD_AUTH; enable one"):
        local.sign_in()


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        ("TooManyRequestsException", "Too many requests", r"throttled \(TooManyRequestsException\)"),
        ("NotAuthorizedException", "Unable to verify secret hash for client testclient", "set COGNITO_CLIENT_SECRET"),
        ("NotAuthorizedException", "Password attempts exceeded", "too many failed sign-ins"),
        ("UserNotFoundException", "User does not exist.", f"no user a@example.com in pool {POOL_ID}"),
        ("ResourceNotFoundException", "User pool client testclient does not exist.", "check COGNITO_USER_POOL_ID"),
    ],
)
def test_cognito_errors_become_one_line(local: LocalPool, code: str, message: str, expected: str) -> None:
    local.stubber.add_client_error("initiate_auth", code, message)
    with pytest.raises(AuthFailed, match=expected) as failure:
        local.sign_in()
    assert "\n" not in str(failure.value)


def test_tokens_that_fail_their_check_are_refused(local: LocalPool) -> None:
    answer = local.tokens_answer()
    answer["AuthenticationResult"]["IdToken"] = local.token("id", aud="another-client")
    local.stubber.add_response("initiate_auth", answer)
    local.cognito.srp_allowed = False
    with pytest.raises(AuthFailed, match="failed its check: token issued to another app client"):
        local.sign_in()


def test_demobot_accepts_only_valid_tokens_of_its_pool(local: LocalPool) -> None:
    check = CognitoCheck(CognitoTokenVerifier(local.jwks, [aws_issuer(POOL_ID)], CLIENT_ID))
    assert check.failure(f"Bearer {local.token('id')}") is None
    assert check.failure(local.token("access", username="u-2")) is None  # bare tokens pass too
    assert check.failure(f"Bearer {local.token('id', lifetime_s=-60)}") == "token expired"
    assert check.failure(f"Bearer {local.token('id', iss='https://elsewhere')}").startswith("invalid token")
    assert check.failure(f"Bearer {local.token('access', client_id='other')}") == "token issued to another app client"
    assert check.failure("Bearer not-a-jwt").startswith("not a JWT")
    assert check.failure("") == "missing token"
    assert check.counters() == {"cognito_tokens_accepted": 2, "cognito_tokens_rejected": 5, "cognito_users": 2}


def test_refresh_uses_the_cognito_username_for_the_secret_hash(fake_aws: None) -> None:  # noqa: F811
    local = LocalPool(secret="shh")
    tokens = CognitoTokens("i", "a", "refresh-1", "u-1", 0.0, 10.0)
    from pycognito.aws_srp import AWSSRP

    expected = {
        "ClientId": CLIENT_ID,
        "AuthFlow": "REFRESH_TOKEN_AUTH",
        "AuthParameters": {
            "REFRESH_TOKEN": "refresh-1",
            "SECRET_HASH": AWSSRP.get_secret_hash("u-1", CLIENT_ID, "shh"),
        },
    }
    answer = local.tokens_answer()
    del answer["AuthenticationResult"]["RefreshToken"]
    local.stubber.add_response("initiate_auth", answer, expected)
    with local.stubber:
        renewed = local.cognito.refresh(tokens)
    assert renewed.refresh_token == "refresh-1"
