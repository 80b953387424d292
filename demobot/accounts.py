"""demobot's user accounts and bearer tokens (in memory; passwords kept only as salted hashes)."""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass

MAX_TOKENS = 500_000
"""Issued tokens kept in memory; the oldest is forgotten beyond this (it then reads as invalid)."""

EXPIRED_TOKEN_MEMORY_S = 3600.0
"""How long an expired token is remembered, so that it is reported as "expired" rather than "invalid"."""


class TokenStatus(enum.Enum):
    """What checking a bearer token found."""

    VALID = "valid"
    INVALID = "invalid"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Account:
    """A registered user."""

    user_id: str
    email: str
    password_hash: bytes


class AccountStore:
    """Registers users, checks passwords, and issues and checks bearer tokens that expire after `token_ttl_s`."""

    def __init__(self, token_ttl_s: float) -> None:
        self.token_ttl_s = token_ttl_s
        self._salt = secrets.token_bytes(16)
        self._accounts: dict[str, Account] = {}
        # token -> (email, monotonic expiry); insertion order is expiry order because the TTL is fixed.
        self._tokens: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._accounts)

    def _hash(self, password: str) -> bytes:
        # A fast hash on purpose: under load tests a slow KDF would make demobot CPU-bound on logins.
        return hashlib.sha256(self._salt + password.encode("utf-8")).digest()

    def register(self, email: str, password: str) -> Account | None:
        """Create an account; None when the email is already registered."""
        if email in self._accounts:
            return None
        account = Account(user_id=uuid.uuid4().hex, email=email, password_hash=self._hash(password))
        self._accounts[email] = account
        return account

    def check_password(self, email: str, password: str) -> bool | None:
        """True/False for a known email's password; None when the email is unknown."""
        account = self._accounts.get(email)
        if account is None:
            return None
        return hmac.compare_digest(account.password_hash, self._hash(password))

    def issue_token(self, email: str) -> str:
        """A new random bearer token for `email`, valid for `token_ttl_s` seconds."""
        now = time.monotonic()
        self._forget_old_tokens(now)
        token = secrets.token_urlsafe(32)
        self._tokens[token] = (email, now + self.token_ttl_s)
        return token

    def check_token(self, token: str | None) -> TokenStatus:
        """Whether a bearer token is valid, unknown, or expired."""
        entry = self._tokens.get(token) if token else None
        if entry is None:
            return TokenStatus.INVALID
        if time.monotonic() >= entry[1]:
            return TokenStatus.EXPIRED
        return TokenStatus.VALID

    def _forget_old_tokens(self, now: float) -> None:
        while self._tokens:
            _, expires = next(iter(self._tokens.values()))
            if len(self._tokens) < MAX_TOKENS and now < expires + EXPIRED_TOKEN_MEMORY_S:
                return
            self._tokens.popitem(last=False)
