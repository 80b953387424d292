"""The Cognito side of a sign-in: SRP, USER_PASSWORD_AUTH and refresh calls, token checks, one-line errors.

``CognitoClient`` holds this process's one boto3 client and the pool's signing keys; its calls block and
burn CPU (SRP), so ``users.auth.cognito_auth`` runs them on its sign-in thread, never on the gevent loop.
boto3 finds the endpoint itself (``AWS_ENDPOINT_URL``, profiles), and the keys are fetched from the same
endpoint, so tokens are checked wherever they come from (Cognito, LocalStack, moto).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.cognito_tokens import (
    CognitoTokenVerifier,
    TokenRejected,
    aws_issuer,
    fetch_jwks,
    jwks_url,
    region_of,
)
from core.errors import InputError
from core.redaction import remember_token
from users.auth import srp_pow
from users.auth.providers import AuthFailed, Credentials, Token


@dataclass(frozen=True, slots=True)
class CognitoSettings:
    """A user pool and app client to sign in to; the secret never shows in a repr or a log line."""

    user_pool_id: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    region: str = ""

    @property
    def pool_region(self) -> str:
        """The region the pool id names (``eu-west-1_AbC``); AWS_REGION may point elsewhere, at the API."""
        return region_of(self.user_pool_id) or self.region


def cognito_settings(env: Mapping[str, str] = os.environ) -> CognitoSettings:
    """The pool of --auth cognito from COGNITO_* and AWS_REGION; InputError naming what is missing."""
    pool, client = env.get("COGNITO_USER_POOL_ID", "").strip(), env.get("COGNITO_CLIENT_ID", "").strip()
    if not pool or not client:
        raise InputError(
            "--auth cognito needs COGNITO_USER_POOL_ID and COGNITO_CLIENT_ID (in .env or the environment); "
            "aws_setup/setup_aws.sh finds and writes them"
        )
    if "_" not in pool:
        raise InputError(f"COGNITO_USER_POOL_ID: {pool!r} is not a user pool id like eu-west-1_AbC123")
    region = (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "").strip()
    return CognitoSettings(pool, client, env.get("COGNITO_CLIENT_SECRET", "").strip() or None, region)


@dataclass(frozen=True, slots=True)
class CognitoTokens:
    """One account's checked tokens, and when they stop being valid on the clock of the account that holds them."""

    id_token: str = field(repr=False)
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    username: str
    """The account's ``cognito:username`` (not an email alias): what a refresh's SECRET_HASH is made from."""
    obtained_at: float
    expires_at: float

    def __post_init__(self) -> None:
        remember_token(self.id_token, self.access_token, self.refresh_token)  # masked in every output

    def token(self, use: str) -> Token:
        """The ID or access token with its validity."""
        value = self.id_token if use == "id" else self.access_token
        return Token(value, self.obtained_at, self.expires_at)

    def needs_refresh(self, now: float, margin_s: float) -> bool:
        return self.token("access").needs_refresh(now, margin_s)


class CognitoClient:
    """This process's way to one pool: one boto3 client and the pool's keys, used from the sign-in thread only.

    Its calls block and burn CPU; CognitoAccount runs them off the gevent loop.
    """

    def __init__(
        self,
        settings: CognitoSettings,
        client: Any = None,
        verifier: CognitoTokenVerifier | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._client = client
        self._verifier = verifier
        self._clock = clock
        self.srp_allowed = True
        """Cleared when the app client refuses SRP; later sign-ins go straight to USER_PASSWORD_AUTH."""

    @property
    def client(self) -> Any:
        """The boto3 cognito-idp client, created on first use (that costs 10-50 ms of CPU)."""
        if self._client is None:
            import boto3  # heavy, and only needed under --auth cognito

            self._client = boto3.client("cognito-idp", region_name=self.settings.pool_region)
        return self._client

    @property
    def verifier(self) -> CognitoTokenVerifier:
        """The pool's token checker, its keys fetched once from the endpoint the client talks to."""
        if self._verifier is None:
            settings = self.settings
            endpoint = self.client.meta.endpoint_url
            url = jwks_url(endpoint, settings.user_pool_id)
            try:
                keys = fetch_jwks(url)
            except (OSError, ValueError) as error:
                raise AuthFailed(f"Cognito: cannot fetch the pool's signing keys from {url}: {error}") from None
            issuers = (aws_issuer(settings.user_pool_id, settings.pool_region), f"{endpoint}/{settings.user_pool_id}")
            self._verifier = CognitoTokenVerifier(keys, issuers, settings.client_id)
        return self._verifier

    def sign_in(self, credentials: Credentials) -> CognitoTokens:
        """SRP sign-in, or USER_PASSWORD_AUTH when the app client does not allow SRP."""
        if self.srp_allowed:
            try:
                return self._call(credentials.email, self._srp, credentials)
            except _FlowNotAllowed:
                self.srp_allowed = False
        try:
            return self._call(credentials.email, self._password_auth, credentials)
        except _FlowNotAllowed:
            raise AuthFailed(
                "Cognito: the app client allows neither USER_SRP_AUTH nor USER_PASSWORD_AUTH; enable one "
                "(python aws_setup/get_cognito_info.py shows a client's flows)"
            ) from None

    def refresh(self, tokens: CognitoTokens) -> CognitoTokens:
        """New ID and access tokens from the refresh token (no SRP); the refresh token itself is kept."""
        if not tokens.refresh_token:
            raise AuthFailed("Cognito: no refresh token to renew with")
        parameters = {"REFRESH_TOKEN": tokens.refresh_token}
        self._add_secret_hash(parameters, tokens.username)
        answer = self._call(
            tokens.username,
            self.client.initiate_auth,
            ClientId=self.settings.client_id,
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters=parameters,
        )
        return self._tokens(tokens.username, answer, tokens.refresh_token)

    def _srp(self, credentials: Credentials) -> CognitoTokens:
        from pycognito import aws_srp

        srp_pow.install(aws_srp)
        srp = aws_srp.AWSSRP(
            username=credentials.email,
            password=credentials.password,
            pool_id=self.settings.user_pool_id,
            client_id=self.settings.client_id,
            client=self.client,
            client_secret=self.settings.client_secret,
        )
        return self._tokens(credentials.email, srp.authenticate_user())

    def _password_auth(self, credentials: Credentials) -> CognitoTokens:
        parameters = {"USERNAME": credentials.email, "PASSWORD": credentials.password}
        self._add_secret_hash(parameters, credentials.email)
        answer = self.client.initiate_auth(
            ClientId=self.settings.client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters=parameters
        )
        return self._tokens(credentials.email, answer)

    def _add_secret_hash(self, parameters: dict[str, str], username: str) -> None:
        if self.settings.client_secret:
            from pycognito.aws_srp import AWSSRP

            parameters["SECRET_HASH"] = AWSSRP.get_secret_hash(
                username, self.settings.client_id, self.settings.client_secret
            )

    def _tokens(self, who: str, answer: Mapping[str, Any], refresh_token: str | None = None) -> CognitoTokens:
        result = answer.get("AuthenticationResult")
        if not result:
            raise AuthFailed(_challenge_message(who, str(answer.get("ChallengeName", "no tokens"))))
        try:
            id_claims = self.verifier.claims(result["IdToken"], "id")
            access_claims = self.verifier.claims(result["AccessToken"], "access")
        except TokenRejected as error:
            raise AuthFailed(f"Cognito: a token from the sign-in of {who} failed its check: {error}") from None
        except KeyError as missing:
            raise AuthFailed(f"Cognito: the sign-in of {who} returned no {missing.args[0]}") from None
        now = self._clock()
        lifetime = min(_lifetime(id_claims), _lifetime(access_claims))
        return CognitoTokens(
            id_token=result["IdToken"],
            access_token=result["AccessToken"],
            refresh_token=result.get("RefreshToken") or refresh_token,
            username=str(id_claims.get("cognito:username") or access_claims.get("username") or who),
            obtained_at=now,
            expires_at=now + lifetime,
        )

    def _call(self, who: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one Cognito exchange, turning whatever goes wrong into AuthFailed with one clear line."""
        from botocore.exceptions import BotoCoreError, ClientError
        from pycognito.exceptions import ForceChangePasswordException, MFAChallengeException

        try:
            return function(*args, **kwargs)
        except ClientError as error:
            raise _client_error(who, error.response.get("Error", {}), self.settings) from None
        except ForceChangePasswordException:
            raise AuthFailed(_challenge_message(who, "NEW_PASSWORD_REQUIRED")) from None
        except MFAChallengeException as error:
            challenge = (error.get_tokens() or {}).get("ChallengeName", "MFA")
            raise AuthFailed(_challenge_message(who, challenge)) from None
        except NotImplementedError as error:  # pycognito: a first challenge other than PASSWORD_VERIFIER
            raise AuthFailed(f"Cognito: the sign-in of {who} asked for something unsupported: {error}") from None
        except BotoCoreError as error:
            raise AuthFailed(f"Cognito: cannot reach Cognito ({error})") from None


class _FlowNotAllowed(AuthFailed):
    """The app client does not allow the auth flow that was tried."""


def _lifetime(claims: Mapping[str, Any]) -> float:
    issued = claims.get("iat") or claims.get("auth_time") or time.time()
    return max(0.0, float(claims["exp"]) - float(issued))


def _challenge_message(who: str, challenge: str) -> str:
    if challenge == "NEW_PASSWORD_REQUIRED":
        return (
            f"Cognito: {who} must set a new password first (NEW_PASSWORD_REQUIRED); "
            "aws_setup/create_test_users.py makes load-test users with permanent passwords"
        )
    if "MFA" in challenge or challenge in ("EMAIL_OTP", "SMS_OTP"):
        return f"Cognito: {who} needs multi-factor authentication ({challenge}), which simulated users cannot do"
    return f"Cognito: the sign-in of {who} ended in the unsupported challenge {challenge}"


def _client_error(who: str, error: Mapping[str, str], settings: CognitoSettings) -> AuthFailed:
    code, message = error.get("Code", "Error"), error.get("Message", "")
    lowered = message.lower()
    if code == "InvalidParameterException" and "not enabled" in lowered:
        # Real Cognito says "USER_SRP_AUTH is not enabled for the client." or "USER_PASSWORD_AUTH flow not
        # enabled for this client"; moto ignores a client's flows, so tests feed these through a Stubber.
        return _FlowNotAllowed(message)
    if code == "NotAuthorizedException":
        if "secret hash" in lowered or ("secret" in lowered and "client" in lowered):
            return AuthFailed(f"Cognito: the app client has a secret; set COGNITO_CLIENT_SECRET ({message})")
        if "attempts exceeded" in lowered:
            return AuthFailed(f"Cognito: too many failed sign-ins for {who}; Cognito locked it for a while")
        if "refresh token" in lowered:
            return AuthFailed(f"Cognito: the refresh token of {who} was refused ({message})")
        return AuthFailed(f"Cognito: incorrect username or password for {who}")
    if code == "UserNotFoundException":
        return AuthFailed(f"Cognito: no user {who} in pool {settings.user_pool_id}")
    if code == "UserNotConfirmedException":
        return AuthFailed(f"Cognito: {who} is not confirmed; confirm it or use aws_setup/create_test_users.py")
    if code == "PasswordResetRequiredException":
        return AuthFailed(f"Cognito: {who} must reset the password first")
    if code == "ResourceNotFoundException":
        return AuthFailed(
            f"Cognito: pool {settings.user_pool_id} or app client not found in {settings.pool_region}; "
            "check COGNITO_USER_POOL_ID, COGNITO_CLIENT_ID and AWS_REGION"
        )
    if code in ("TooManyRequestsException", "LimitExceededException", "ThrottlingException"):
        return AuthFailed(f"Cognito: throttled ({code}); start users more slowly (--spawn-rate)")
    return AuthFailed(f"Cognito: {code}: {message}".rstrip(": "))
