"""Who may do what on the daemon's API: bearer tokens mapped to operators with roles.

Tokens come from environment variables or token files named in the
configuration, never from the command line.  The daemon keeps only their
SHA-256 digests and compares digests in constant time, so a timing side channel
does not tell how much of a guessed token was right.

Roles: ``operator`` may command and watch; ``viewer`` may only watch.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

ROLES = ("operator", "viewer")
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class Operator:
    name: str
    role: str

    @property
    def may_command(self) -> bool:
        return self.role == "operator"


class AuthError(Exception):
    """Refused: ``status`` is the HTTP status to answer (401 unknown, 403 not allowed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _digest(token: str) -> bytes:
    # Header bytes that are not UTF-8 arrive as surrogates (aiohttp decodes with surrogateescape):
    # hash the octets as sent, so such a token is simply unknown.
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def new_token() -> str:
    """A fresh random token (for `groundstation demo` when none is configured)."""
    return secrets.token_urlsafe(24)


def read_token(*, env: str | None = None, file: str | None = None) -> str:
    """A token from an environment variable or a file (first line), with errors that say which."""
    if env:
        value = os.environ.get(env, "").strip()
        if not value:
            raise ValueError(f"environment variable {env} (API token) is not set or empty")
    elif file:
        try:
            value = Path(file).read_text().splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise ValueError(f"token file {file}: cannot read a token ({exc})") from None
    else:
        raise ValueError("a token needs an environment variable or a file")
    if len(value) < MIN_TOKEN_LENGTH:
        raise ValueError(f"API token from {env or file} is shorter than {MIN_TOKEN_LENGTH} characters")
    return value


class Authenticator:
    def __init__(self) -> None:
        self._operators: list[tuple[bytes, Operator]] = []

    def add(self, token: str, operator: Operator) -> None:
        if operator.role not in ROLES:
            raise ValueError(f"operator {operator.name}: role must be one of {', '.join(ROLES)}, not {operator.role!r}")
        digest = _digest(token)
        if any(hmac.compare_digest(digest, known) for known, _ in self._operators):
            raise ValueError(f"operator {operator.name}: token already belongs to another operator")
        self._operators.append((digest, operator))

    def __len__(self) -> int:
        return len(self._operators)

    def identify(self, authorization: str | None, *, peer: str = "?") -> Operator:
        """The operator behind an ``Authorization: Bearer <token>`` header, or AuthError(401).

        Refusals are not logged here: the HTTP layer logs each refused request once, rate-limited.
        ``peer`` is kept for callers outside HTTP.
        """
        if not authorization or not authorization.startswith("Bearer "):
            raise AuthError(401, "authentication required: send 'Authorization: Bearer <token>'")
        digest = _digest(authorization[len("Bearer "):].strip())
        found = None
        for known, operator in self._operators:  # no early exit: constant work whoever matches
            if hmac.compare_digest(digest, known):
                found = operator
        if found is None:
            raise AuthError(401, "unknown token")
        return found

    def require_commander(self, authorization: str | None, *, peer: str = "?") -> Operator:
        operator = self.identify(authorization, peer=peer)
        if not operator.may_command:
            raise AuthError(403, f"operator {operator.name} has role {operator.role} and may not send commands")
        return operator
