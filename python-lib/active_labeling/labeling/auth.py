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
import math
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
    """Too many failed logins; wait ``retry_after`` seconds before trying again."""

    def __init__(self, message: str, *, retry_after: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after


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


def _require_user(con, name: str) -> str:
    """The user's role; InputError naming the users when there is no such user."""
    row = con.execute("SELECT role FROM users WHERE name = ?", [name]).fetchone()
    if row is None:
        names = [r[0] for r in con.execute("SELECT name FROM users ORDER BY name").fetchall()]
        raise InputError(f"no user {name!r} (users: {', '.join(names) or 'none yet'})")
    return row[0]


def user_exists(con, name: str) -> bool:
    return con.execute("SELECT 1 FROM users WHERE name = ?", [name]).fetchone() is not None


def list_users(con) -> list[dict]:
    """Every user: name, role, created_at, open browser sessions, API tokens. No secret."""
    rows = con.execute(
        "SELECT u.name, u.role, u.created_at, "
        "(SELECT count(*) FROM web_sessions s WHERE s.name = u.name AND s.expires_at > ?), "
        "(SELECT count(*) FROM api_tokens t WHERE t.name = u.name) "
        "FROM users u ORDER BY u.name",
        [datetime.now(timezone.utc)],
    ).fetchall()
    keys = ("name", "role", "created_at", "sessions", "tokens")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def set_password(con, name: str) -> str:
    """A new generated password for ``name`` (role kept), returned once; ends the user's
    browser sessions. API tokens stay valid: revoke them with :func:`revoke_tokens`."""
    return add_user(con, name, _require_user(con, name))


def set_role(con, name: str, role: str) -> None:
    """Change the user's role; it applies at once, to their open sessions and tokens too
    (the role is read on every request)."""
    _require_user(con, name)
    if role not in ROLES:
        raise InputError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    with transaction(con):
        con.execute("UPDATE users SET role = ? WHERE name = ?", [role, name])


def remove_user(con, name: str) -> tuple[int, int]:
    """Remove the user, their browser sessions and API tokens, in one transaction; returns
    (sessions ended, tokens revoked). Their label events stay, under their name."""
    _require_user(con, name)
    with transaction(con):
        sessions = con.execute(
            "DELETE FROM web_sessions WHERE name = ? RETURNING 1", [name]
        ).fetchall()
        tokens = con.execute("DELETE FROM api_tokens WHERE name = ? RETURNING 1", [name]).fetchall()
        con.execute("DELETE FROM users WHERE name = ?", [name])
    return len(sessions), len(tokens)


#: A token is known by the first characters of its stored hash: enough to tell tokens apart,
#: nothing to log in with.
TOKEN_ID_LENGTH = 12


def token_id(token: str) -> str:
    """The id ``token list`` shows for a token (a prefix of its SHA-256 hash)."""
    return _sha256(token)[:TOKEN_ID_LENGTH]


def list_tokens(con, name: str | None = None) -> list[dict]:
    """The API tokens (of ``name``, or of everyone): id, user, created_at. No secret."""
    if name is not None:
        _require_user(con, name)
    rows = con.execute(
        "SELECT left(token_hash, ?), name, created_at FROM api_tokens "
        "WHERE ? IS NULL OR name = ? ORDER BY created_at, token_hash",
        [TOKEN_ID_LENGTH, name, name],
    ).fetchall()
    return [dict(zip(("id", "name", "created_at"), row, strict=True)) for row in rows]


def revoke_tokens(con, *, token: str | None = None, name: str | None = None) -> int:
    """Revoke one token (the token itself, or its id from :func:`list_tokens`), or every
    token of user ``name``; returns how many. At once: tokens are checked on every request."""
    if (token is None) == (name is None):
        raise InputError("revoke one token (its id or the token) or every token of a user")
    if name is not None:
        _require_user(con, name)
        where, args = "name = ?", [name]
    elif token.startswith("al_"):
        where, args = "token_hash = ?", [_sha256(token)]
    else:
        if not re.fullmatch(r"[0-9a-f]{6,64}", token):
            raise InputError(
                f"{token!r} is neither a token (al_...) nor a token id from "
                "`active-labeling token list`"
            )
        matches = con.execute(
            "SELECT count(*) FROM api_tokens WHERE starts_with(token_hash, ?)", [token]
        ).fetchone()[0]
        if matches > 1:
            raise InputError(f"token id {token!r} names {matches} tokens: give more of it")
        where, args = "starts_with(token_hash, ?)", [token]
    with transaction(con):
        revoked = con.execute(f"DELETE FROM api_tokens WHERE {where} RETURNING 1", args).fetchall()
    if not revoked and name is None:
        raise InputError(f"no API token {token!r}: `active-labeling token list` shows them")
    return len(revoked)


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


#: A browser that logged in carries this cookie: its later logins as that user count as its
#: own, not as its address's (see LoginThrottle).
DEVICE_COOKIE = "al_device"
DEVICE_DAYS = 30


@dataclass(frozen=True)
class LoginAttempt:
    """A login counted before its password is checked (see :meth:`LoginThrottle.reserve`)."""

    user: str
    client: str
    address: str | None  # the address whose budget it uses; None for a known browser
    stamp: float


@dataclass
class _Failures:
    count: int
    last: float


class LoginThrottle:
    """Failed logins slow down whoever made them; they never lock a user out.

    The client of a login is the browser when it carries a device cookie issued to it at a
    successful login as that user, else the address the request came from.

    - A client and a user name share a back-off: their first ``free_failures`` failures cost
      nothing, then each failure doubles the wait before their next attempt, from
      ``base_delay`` to at most ``max_delay`` seconds. A success forgets their failures.
      Another client is not slowed at all: whoever knows the password gets in from a
      browser or an address that has no failures.
    - An address has at most ``address_failures`` failures in ``address_window`` seconds,
      whatever the names tried, so that one address cannot spray names; browsers that carry
      a device cookie are not counted against their address, so the users behind one proxy
      who logged in before are not kept out by another user of that proxy.

    A login reserves its attempt (counted as failed) before its password is checked, under a
    lock, so parallel guesses get no more than serial ones; a success or a server error gives
    it back. Failures are forgotten ``forget_after`` seconds after the last one, and at most
    ``max_entries`` clients and addresses are kept (the least recently failing go first):
    the memory is bounded whoever knocks.
    """

    def __init__(
        self,
        *,
        free_failures: int = 5,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
        address_failures: int = 50,
        address_window: float = 600.0,
        forget_after: float = 3600.0,
        max_entries: int = 10_000,
        clock=time.monotonic,
    ):
        self.free_failures = free_failures
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.address_failures = address_failures
        self.address_window = address_window
        self.forget_after = max(forget_after, max_delay)
        self.max_entries = max_entries
        self._clock = clock
        self._key = secrets.token_bytes(32)  # signs device cookies; a restart voids them
        self._pairs: dict[tuple[str, str], _Failures] = {}  # oldest failure first
        self._addresses: dict[str, deque] = {}  # failure stamps in the window, oldest first
        self._next_sweep = 0.0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many clients and addresses have failures on record."""
        return len(self._pairs) + len(self._addresses)

    # --- device cookies ---

    def device_cookie(self, user: str) -> str:
        """A new device cookie for a browser that just logged in as ``user``."""
        nonce = secrets.token_urlsafe(12)
        return f"{nonce}.{self._sign(user, nonce)}"

    def client(self, user: str, address: str, device_cookie: str | None) -> tuple[str, bool]:
        """(the client of a login as ``user``, whether it is a known browser)."""
        nonce, _, mac = (device_cookie or "").partition(".")
        if nonce and len(nonce) <= 32 and same_secret(mac, self._sign(user, nonce)):
            return f"device:{nonce}", True
        return f"address:{address}", False

    def _sign(self, user: str, nonce: str) -> str:
        message = f"{user}\0{nonce}".encode("utf-8", "surrogateescape")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    # --- attempts ---

    def delay(self, failures: int) -> float:
        """The wait after ``failures`` failures of one client and user name."""
        if failures < self.free_failures:
            return 0.0
        return min(self.base_delay * 2.0 ** (failures - self.free_failures), self.max_delay)

    def reserve(self, user: str, address: str, device_cookie: str | None = None) -> LoginAttempt:
        """Count a login as failed before its password is checked, or refuse it
        (:class:`RateLimitedError`, with the seconds to wait) if its client must wait."""
        client, known = self.client(user, address, device_cookie)
        with self._lock:
            now = self._clock()
            self._sweep(now)
            pair = self._pairs.get((client, user))
            wait = pair.last + self.delay(pair.count) - now if pair else 0.0
            stamps = None if known else self._addresses.get(address)
            while stamps and now - stamps[0] > self.address_window:
                stamps.popleft()
            if stamps is not None and len(stamps) >= self.address_failures:
                wait = max(wait, stamps[0] + self.address_window - now)
            if wait > 0:
                seconds = math.ceil(wait)
                raise RateLimitedError(
                    f"too many failed logins: try again in {seconds} seconds", retry_after=seconds
                )
            pair = self._pairs.pop((client, user), None) or _Failures(0, now)
            pair.count, pair.last = pair.count + 1, now
            self._keep(self._pairs, (client, user), pair)
            if not known:
                stamps = self._addresses.pop(address, None) or deque()
                stamps.append(now)
                self._keep(self._addresses, address, stamps)
            return LoginAttempt(user, client, None if known else address, now)

    def succeeded(self, attempt: LoginAttempt) -> None:
        """The password was right: the client's failures for that name are forgotten."""
        with self._lock:
            self._pairs.pop((attempt.client, attempt.user), None)
            self._give_back(attempt)

    def cancel(self, attempt: LoginAttempt) -> None:
        """The server failed, not the password: the attempt does not count."""
        with self._lock:
            pair = self._pairs.get((attempt.client, attempt.user))
            if pair is not None:
                pair.count -= 1
                if pair.count <= 0:
                    del self._pairs[(attempt.client, attempt.user)]
            self._give_back(attempt)

    def _give_back(self, attempt: LoginAttempt) -> None:
        stamps = self._addresses.get(attempt.address) if attempt.address else None
        if stamps is not None:
            with contextlib.suppress(ValueError):
                stamps.remove(attempt.stamp)
            if not stamps:
                del self._addresses[attempt.address]

    def _keep(self, table: dict, key, value) -> None:
        """Put ``key`` last (the most recent failure), dropping the oldest if full."""
        while len(table) >= self.max_entries:
            del table[next(iter(table))]
        table[key] = value

    def _sweep(self, now: float) -> None:
        """Forget old failures, at most once a minute: the tables hold recent ones only."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + 60.0
        for key, pair in list(self._pairs.items()):
            if now - pair.last > self.forget_after:
                del self._pairs[key]
        for address, stamps in list(self._addresses.items()):
            while stamps and now - stamps[0] > self.address_window:
                stamps.popleft()
            if not stamps:
                del self._addresses[address]
