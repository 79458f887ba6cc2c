"""What every route needs, declared once: the service, the current user, role and CSRF."""

from __future__ import annotations

from fastapi import Depends, Request

from active_labeling.labeling.auth import (
    AuthError,
    ForbiddenError,
    User,
    same_secret,
    session_user,
    token_user,
)
from active_labeling.labeling.service import LabelingService

SESSION_COOKIE = "al_session"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def get_service(request: Request) -> LabelingService:
    return request.app.state.service


def current_user(request: Request, service: LabelingService = Depends(get_service)) -> User:
    """The caller: a Bearer token (API clients) or a session cookie (the browser).

    Cookie-authenticated state changes must carry the session's CSRF token in a header.
    """
    authorization = request.headers.get("Authorization", "")
    # The thread's own cursor: checking a caller never waits for a handout or a label.
    if authorization.startswith("Bearer "):
        user = token_user(service.cursor(), authorization[len("Bearer ") :].strip())
        if user is None:
            raise AuthError("unknown or revoked API token")
        return user
    session_id = request.cookies.get(SESSION_COOKIE)
    user = session_user(service.cursor(), session_id) if session_id else None
    if user is None:
        raise AuthError("log in first")
    if request.method not in _SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not same_secret(sent, user.csrf_token or ""):
            raise ForbiddenError(f"missing or wrong {CSRF_HEADER} header")
    return user


def require_role(*roles: str):
    def check(user: User = Depends(current_user)) -> User:
        if user.role not in roles:
            raise ForbiddenError(f"this needs the role {' or '.join(roles)}")
        return user

    return check


#: Role checks, declared once.
ADMIN = require_role("admin")
REVIEWER = require_role("admin", "reviewer")
