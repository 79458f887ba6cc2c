"""Users, passwords, API tokens, browser sessions and login throttling.

Passwords are stored as salted scrypt hashes; tokens and session ids only as SHA-256
hashes, so a copy of the store gives no way in. Nothing here ever logs a secret.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import duckdb

from active_labeling.errors import ActiveLabelingError, InputError
from active_labeling.store.connection import transaction

log = logging.getLogger(__name__)

ROLES = ("labeler", "reviewer", "admin")
SESSION_HOURS = 12
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
# scrypt cost: about 50 ms per check on this class of machine, 16 MiB of memory.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class AuthError(ActiveLabelingError):
    """Not logged in, or the credentials are wrong."""


class ForbiddenError(ActiveLabelingError):
    """Logged in, but not allowed to do this."""


class RateLimitedError(ActiveLabelingError):
    """Too many failed logins; wait before trying again."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    csrf_token: str | None = None  # set for browser sessions, None for API tokens


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    encode = base64.b64encode
    return f"scrypt${_SCRYPT['n']}${encode(salt).decode()}${encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            dklen=len(expected),
            n=int(n),
            r=_SCRYPT["r"],
            p=_SCRYPT["p"],
        )
    except (ValueError, TypeError):
        return False
    return scheme == "scrypt" and hmac.compare_digest(actual, expected)


def same_secret(sent: str, expected: str) -> bool:
    """Whether a secret sent (a header, any text) is the one expected, in constant time.

    Compared as UTF-8 bytes: ``hmac.compare_digest`` refuses non-ASCII text with a TypeError.
    """
    encode = lambda text: text.encode("utf-8", "surrogateescape")  # noqa: E731
    return hmac.compare_digest(encode(sent), encode(expected))


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def add_user(con, name: str, role: str) -> str:
    """Create (or reset) user ``name`` with ``role``; returns the generated password.

    Resetting a user logs them out of every browser; their API tokens stay valid."""
    if not _NAME.match(name or ""):
        raise InputError(f"user name {name!r} is not valid: letters, digits, '_', '.', '@' or '-'")
    if role not in ROLES:
        raise InputError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    password = secrets.token_urlsafe(12)
    with transaction(con):
        con.execute(
            "INSERT OR REPLACE INTO users (name, role, password_hash) VALUES (?, ?, ?)",
            [name, role, hash_password(password)],
        )
        # A reset ends the user's browser sessions (the expired ones are left to the
        # cleanup, so the two hardly ever touch the same rows). API tokens stay.
        con.execute(
            "DELETE FROM web_sessions WHERE name = ? AND expires_at >= ?",
            [name, datetime.now(timezone.utc)],
        )
    return password


def create_token(con, name: str) -> str:
    """A new API token for user ``name``, shown once; only its hash is kept."""
    if not con.execute("SELECT 1 FROM users WHERE name = ?", [name]).fetchone():
        raise InputError(f"no user {name!r}: add it first with `active-labeling user add`")
    token = "al_" + secrets.token_urlsafe(32)
    with transaction(con):
        con.execute(
            "INSERT INTO api_tokens (token_hash, name) VALUES (?, ?)", [_sha256(token), name]
        )
    return token


def check_password(con, name: str, password: str) -> User:
    row = con.execute("SELECT role, password_hash FROM users WHERE name = ?", [name]).fetchone()
    # Same work whether the user exists or not: no timing oracle on user names.
    stored = row[1] if row else "scrypt$16384$AAAAAAAAAAAAAAAAAAAAAA==$AAAA"
    if not verify_password(password, stored) or row is None:
        raise AuthError("wrong user name or password")
    return User(name, row[0])


def open_session(con, user: User) -> tuple[str, User]:
    """A new browser session: (session id for the cookie, the user with its CSRF token)."""
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    now = datetime.now(timezone.utc)
    with transaction(con):
        con.execute(
            "INSERT INTO web_sessions VALUES (?, ?, ?, ?, ?)",
            [_sha256(session_id), user.name, csrf, now, now + timedelta(hours=SESSION_HOURS)],
        )
    _forget_expired_sessions(con, now)
    return session_id, User(user.name, user.role, csrf)


def _forget_expired_sessions(con, now: datetime) -> None:
    """Delete expired sessions, best effort, in a statement of its own after the login's.

    Two logins that overlap would delete the same rows: DuckDB fails the second with a
    conflict. Expired sessions let no one in, so they wait for the next login.
    """
    try:
        con.execute("DELETE FROM web_sessions WHERE expires_at < ?", [now])
    except duckdb.Error as exc:
        log.info("expired sessions left for the next login: %s", exc)


def session_user(con, session_id: str) -> User | None:
    row = con.execute(
        "SELECT s.name, u.role, s.csrf_token FROM web_sessions s JOIN users u ON u.name = s.name "
        "WHERE s.session_hash = ? AND s.expires_at > ?",
        [_sha256(session_id), datetime.now(timezone.utc)],
    ).fetchone()
    return User(*row) if row else None


def close_session(con, session_id: str) -> None:
    with transaction(con):
        con.execute("DELETE FROM web_sessions WHERE session_hash = ?", [_sha256(session_id)])


def token_user(con, token: str) -> User | None:
    row = con.execute(
        "SELECT t.name, u.role FROM api_tokens t JOIN users u ON u.name = t.name "
        "WHERE t.token_hash = ?",
        [_sha256(token)],
    ).fetchone()
    return User(*row) if row else None


class LoginThrottle:
    """At most ``attempts`` logins per user name and per client in ``window`` seconds, but
    for those that succeeded.

    A login reserves its attempt before checking the password, atomically: parallel guesses
    cannot all pass a check made before any of them failed. A login that succeeds gives its
    attempt back. Keys whose attempts are all older than the window are dropped (a sweep at
    most once a window), so the table holds only the names tried in the last window.
    """

    def __init__(self, attempts: int = 5, window: float = 60.0, clock=time.monotonic):
        self.attempts = attempts
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque] = {}  # attempts not known to have succeeded
        self._next_sweep = 0.0
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> int:
        """How many attempts ``key`` has in the window; a key with none is dropped."""
        attempts = self._failures.get(key)
        if attempts is None:
            return 0
        while attempts and now - attempts[0] > self.window:
            attempts.popleft()
        if not attempts:
            del self._failures[key]
        return len(attempts)

    def reserve(self, *keys: str) -> float:
        """Count one attempt on every key, or refuse if one of them has no attempt left.

        Returns the attempt's stamp, for :meth:`release`."""
        with self._lock:
            now = self._clock()
            if now >= self._next_sweep:
                self._next_sweep = now + self.window
                for key in list(self._failures):
                    self._recent(key, now)
            if any(self._recent(key, now) >= self.attempts for key in keys):
                raise RateLimitedError(
                    f"too many failed logins: wait {int(self.window)} seconds and try again"
                )
            for key in keys:
                self._failures.setdefault(key, deque()).append(now)
            return now

    def release(self, stamp: float, *keys: str) -> None:
        """Give back the attempt reserved at ``stamp``: that login succeeded."""
        with self._lock:
            for key in keys:
                attempts = self._failures.get(key)
                if attempts is None:
                    continue
                with contextlib.suppress(ValueError):
                    attempts.remove(stamp)
                if not attempts:
                    del self._failures[key]
