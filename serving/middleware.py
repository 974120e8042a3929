"""The ASGI layer around the service's routes: request guard, BentoML's timer fix, error bodies.

``ApiGuard`` checks every ``/v1/`` request before a handler sees it: a bearer API key
(401), a JSON body (415) and a size cap (413). ``CancellingTimeoutMiddleware`` replaces
BentoML's request timer (docs/design.md, BentoML 1.4.39): upstream leaves a timer alive per
request for the whole timeout, and the garbage collector's full passes over those objects
made the latency tail. ``error_response`` is the one way a refusal is answered, as an
``ErrorResponse`` body. ``QuietValidationErrors`` keeps BentoML's log of invalid requests
to one line without their input. Nothing here runs at import: ``serving.service`` installs
the timer fix and the guard.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Sequence

import bentoml
from bentoml._internal.server.http import traffic
from bentoml.exceptions import BentoMLException
from pydantic import ValidationError
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.api import ErrorResponse

log = logging.getLogger("tierwise.service")

API_PREFIX = "/v1/"
MAX_BODY_BYTES = 64 * 1024  # a request is a few hundred bytes


def error_response(
    status: int, message: str, headers: Sequence[tuple[bytes, bytes]] = ()
) -> JSONResponse:
    """An ``ErrorResponse`` body (``{"error": message}``) with ``status`` and extra headers."""
    body = ErrorResponse(error=message).model_dump(mode="json", exclude_none=True)
    response = JSONResponse(body, status_code=status)
    response.raw_headers.extend(headers)
    return response


# -- BentoML's request timer (see the module docstring) ----------------------------------------


class CancellingTimeoutMiddleware(traffic.TimeoutMiddleware):
    """BentoML's TimeoutMiddleware, with its timer cancelled once the response starts.

    Upstream schedules ``loop.call_later(timeout, ...)`` per request and never cancels it,
    so every request leaves a timer, a future and a copied context (with its tracing span)
    alive for the whole timeout. Behaviour is otherwise the same (a 504 when no response
    has started within ``timeout``), except that an app failing before it responds is not
    left waiting for the timeout. Re-check on every BentoML upgrade.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        timer = loop.call_later(self.timeout, self._set_timer_out, waiter)

        async def _send(message: Message) -> None:
            if not waiter.done():
                waiter.set_result(None)
                timer.cancel()
            await send(message)

        fut = asyncio.ensure_future(self.app(scope, receive, _send), loop=loop)
        # An app that fails before responding must not hang until the timeout (upstream
        # does): its error then surfaces below, where Starlette turns it into a 500.
        fut.add_done_callback(lambda _: waiter.done() or waiter.set_result(None))
        try:
            await waiter
        except TimeoutError:
            if fut.cancel():
                message = f"Not able to process the request in {self.timeout} seconds"
                await error_response(504, message)(scope, receive, send)
        else:
            await fut
        finally:
            timer.cancel()


def install_timeout_fix() -> None:
    """Make BentoML build its app with ``CancellingTimeoutMiddleware`` (idempotent).

    BentoML looks the class up in ``bentoml._internal.server.http.traffic`` when it builds
    the app, which happens in each worker after importing ``serving.service`` and before the
    service's ``__init__`` runs: so that module calls this on import, the one exception to
    "nothing at import time" in the project, and it touches nothing but that name.
    """
    upstream = traffic.TimeoutMiddleware
    if upstream is CancellingTimeoutMiddleware:
        return
    if not hasattr(upstream, "_set_timer_out"):  # BentoML changed: do not guess
        log.warning("BentoML's TimeoutMiddleware changed; its timer fix is not installed")
        return
    traffic.TimeoutMiddleware = CancellingTimeoutMiddleware


# -- auth and request guard ---------------------------------------------------------------------


class ApiGuard:
    """ASGI middleware for ``/v1/``: bearer API key (401), JSON only (415), size cap (413).

    The keys live in the service instance (from settings at start-up); they are compared
    as SHA-256 digests in constant time and never logged. Other paths pass untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            return await self.app(scope, receive, send)
        refusal = _refusal(scope)
        if refusal is not None:
            return await refusal(scope, receive, send)
        await self.app(scope, receive, send)


def _refusal(scope: Scope) -> JSONResponse | None:
    """The error answer for a ``/v1/`` request the guard refuses, or None to let it through."""
    headers = dict(scope.get("headers") or ())
    try:
        service = bentoml.get_current_service()
    except BentoMLException:
        return error_response(503, "the service is starting")
    if not service.authorized(headers.get(b"authorization")):
        return error_response(
            401,
            "missing or invalid API key: send 'Authorization: Bearer <key>'",
            [(b"www-authenticate", b"Bearer")],
        )
    if scope.get("method") != "POST":
        return None
    media = headers.get(b"content-type", b"application/json").split(b";")[0]
    if media.strip().lower() != b"application/json":
        return error_response(415, "send the request body as application/json")
    length = headers.get(b"content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
        return error_response(413, f"request body over {MAX_BODY_BYTES} bytes")
    return None


def key_digests(keys: frozenset[str]) -> tuple[bytes, ...]:
    """SHA-256 digests of the accepted keys (what the service keeps)."""
    return tuple(hashlib.sha256(k.encode()).digest() for k in sorted(keys))


def authorized(header: bytes | None, digests: tuple[bytes, ...]) -> bool:
    """Whether an ``Authorization`` header carries one of the keys (constant-time compare)."""
    if not header or not digests:
        return False
    scheme, _, token = header.decode("latin-1").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    digest = hashlib.sha256(token.strip().encode()).digest()
    return any(hmac.compare_digest(digest, d) for d in digests)


# -- BentoML's log of invalid requests ----------------------------------------------------------


class QuietValidationErrors(logging.Filter):
    """BentoML logs a traceback for each invalid request; keep one line and no input."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], ValidationError):
            record.msg = "invalid request on %s: %d validation error(s)"
            record.args = (_path(record), record.exc_info[1].error_count())
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def _path(record: logging.LogRecord) -> str:
    args = record.args if isinstance(record.args, tuple) else ()
    return str(args[0]) if args else "?"
