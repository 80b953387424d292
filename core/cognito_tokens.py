"""Checking Amazon Cognito JWTs the way an API Gateway JWT authorizer does: signature, issuer, audience, use.

Plain logic on PyJWT with no AWS or network imports, shared by the Cognito token provider (which checks
every token it receives) and by demobot (which can be told to accept only valid Cognito tokens).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import jwt
import requests

TOKEN_USES = ("id", "access")
"""The two tokens of a Cognito sign-in that can authorize a request."""

AWS_COGNITO_ENDPOINT = "https://cognito-idp.{region}.amazonaws.com"
"""Cognito's own endpoint; tokens name the pool under it as their issuer, whatever endpoint issued them."""

LEEWAY_S = 5.0
"""Clock difference tolerated when checking expiry."""


class TokenRejected(Exception):
    """A token that failed a check; the message is one line and never holds the token."""


def region_of(user_pool_id: str) -> str:
    """The region a pool id names: ``eu-west-1_AbCd`` → ``eu-west-1``."""
    return user_pool_id.partition("_")[0]


def aws_issuer(user_pool_id: str, region: str = "") -> str:
    """The issuer Cognito writes into a pool's tokens."""
    return f"{AWS_COGNITO_ENDPOINT.format(region=region or region_of(user_pool_id))}/{user_pool_id}"


def jwks_url(endpoint_url: str, user_pool_id: str) -> str:
    """Where an endpoint serves a pool's signing keys (Cognito, moto and LocalStack all use this path)."""
    return f"{endpoint_url.rstrip('/')}/{user_pool_id}/.well-known/jwks.json"


def fetch_jwks(url: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """Download a JSON Web Key Set; raises OSError or ValueError when it cannot be had.

    Through requests, so that moto's in-process mock (``mock_aws``) serves the keys in tests.
    """
    response = requests.get(url, timeout=timeout_s)
    if response.status_code != 200:
        raise ValueError(f"{url} answered HTTP {response.status_code}")
    keys = response.json()
    if not isinstance(keys, dict) or not isinstance(keys.get("keys"), list):
        raise ValueError(f"{url} is not a JSON Web Key Set")
    return keys


def unverified_claims(token: str) -> dict[str, Any]:
    """A JWT's claims without any check (to read ``exp`` or ``cognito:username``)."""
    try:
        return jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as error:
        raise TokenRejected(f"not a JWT ({error})") from None


class CognitoTokenVerifier:
    """Checks a pool's tokens against its signing keys, its issuer and (when given) the app client."""

    def __init__(self, jwks: Mapping[str, Any], issuers: Iterable[str], client_id: str = "") -> None:
        try:
            key_set = jwt.PyJWKSet.from_dict(dict(jwks))
        except jwt.PyJWTError as error:
            raise ValueError(f"unusable signing keys: {error}") from None
        self._keys = {key.key_id: key for key in key_set.keys}
        self.issuers = tuple(issuers)
        self.client_id = client_id

    def claims(self, token: str, use: str | None = None) -> dict[str, Any]:
        """The verified claims of ``token`` (an ``id`` or ``access`` token, or either when use is None)."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as error:
            raise TokenRejected(f"not a JWT ({error})") from None
        key = self._keys.get(kid)
        if key is None:
            raise TokenRejected(f"signed with an unknown key ({kid!r})")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                issuer=self.issuers,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iss", "token_use"], "verify_aud": False, "verify_iat": False},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejected("token expired") from None
        except jwt.PyJWTError as error:
            raise TokenRejected(f"invalid token ({error})") from None
        token_use = claims.get("token_use")
        if token_use not in TOKEN_USES or (use is not None and token_use != use):
            raise TokenRejected(f"an {token_use!r} token where {use or 'an id or access'} token was expected")
        if self.client_id:
            audience = claims.get("aud") if token_use == "id" else claims.get("client_id")
            if audience != self.client_id:
                raise TokenRejected("token issued to another app client")
        return claims
