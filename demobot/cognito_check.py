"""demobot's ``--auth cognito``: accept only valid tokens of one Amazon Cognito user pool, as API Gateway would.

The pool's signing keys are fetched once at start from ``--cognito-endpoint`` (default: Cognito itself in
the pool's region; a moto server's URL in tests). Each request's token (``Bearer <jwt>`` or the bare JWT)
must carry a valid signature, the pool as issuer, an unexpired ``exp``, and, when ``--cognito-client-id``
is given, that app client as audience. /stats counts accepted and rejected tokens and distinct users.
"""

from __future__ import annotations

from core.cognito_tokens import (
    AWS_COGNITO_ENDPOINT,
    CognitoTokenVerifier,
    TokenRejected,
    aws_issuer,
    fetch_jwks,
    jwks_url,
    region_of,
)

TOKEN_CHOICES = ("any", "id", "access")
"""Which Cognito token demobot accepts (--cognito-token)."""


class CognitoKeysUnavailable(Exception):
    """The pool's signing keys could not be fetched at start; the message is one line."""


class CognitoCheck:
    """Checks the Authorization header of a request against one pool and counts what it saw."""

    def __init__(self, verifier: CognitoTokenVerifier, use: str = "any") -> None:
        self.verifier = verifier
        self.use = None if use == "any" else use
        self.accepted = 0
        self.rejected = 0
        self.users: set[str] = set()

    @classmethod
    def for_pool(cls, pool_id: str, endpoint: str = "", client_id: str = "", use: str = "any") -> CognitoCheck:
        """Fetch the pool's keys from ``endpoint`` (default: Cognito in the pool's region) and build the check."""
        endpoint = (endpoint or AWS_COGNITO_ENDPOINT.format(region=region_of(pool_id))).rstrip("/")
        url = jwks_url(endpoint, pool_id)
        try:
            keys = fetch_jwks(url)
            verifier = CognitoTokenVerifier(keys, (aws_issuer(pool_id), f"{endpoint}/{pool_id}"), client_id)
        except (OSError, ValueError) as error:
            raise CognitoKeysUnavailable(f"cannot fetch the signing keys of {pool_id} from {url}: {error}") from None
        return cls(verifier, use)

    def failure(self, authorization: str) -> str | None:
        """Why the header's token is refused, or None when it is accepted."""
        scheme, _, rest = authorization.strip().partition(" ")
        token = rest.strip() if scheme.lower() == "bearer" else authorization.strip()
        if not token:
            self.rejected += 1
            return "missing token"
        try:
            claims = self.verifier.claims(token, self.use)
        except TokenRejected as error:
            self.rejected += 1
            return str(error)
        self.accepted += 1
        self.users.add(str(claims.get("cognito:username") or claims.get("username") or claims.get("sub")))
        return None

    def counters(self) -> dict[str, int]:
        """The figures /stats shows."""
        return {
            "cognito_tokens_accepted": self.accepted,
            "cognito_tokens_rejected": self.rejected,
            "cognito_users": len(self.users),
        }
