"""The ASGI layer around the service's routes: request guard, BentoML's timer fix, error bodies.

``ApiGuard`` sees every request before BentoML's metrics layer and the handlers: unknown
paths get 404 there, keys are checked per role (``KeyRing``: agent, admin, metrics), ``/v1/``
bodies are JSON and capped on the bytes read, and ``Admission`` bounds the requests a worker
holds (429 with Retry-After past it). ``CancellingTimeoutMiddleware`` replaces BentoML's
request timer (docs/design.md, BentoML 1.4.39): upstream leaves a timer alive per request for
the whole timeout, and the garbage collector's full passes over those objects made the
latency tail. ``error_response`` is the one way a refusal is answered, as an
``ErrorResponse`` body; ``error_code`` is how a database error is logged (codes, no values).
``QuietValidationErrors`` keeps BentoML's log of invalid requests to one line without their
input. Nothing here runs at import: ``serving.service`` installs the timer fix and the guard.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import hashlib
import hmac
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import bentoml
from bentoml._internal.server.http import instruments, traffic
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


class KnownPathsMetrics(instruments.RunnerTrafficMetricsMiddleware):
    """BentoML's traffic metrics, kept for the paths the service serves only.

    BentoML puts this middleware in front of the service's own (``ApiGuard``) and labels
    its series with the request path, so every distinct unknown path became a series: 3,000
    random paths grew a worker by 67 MB. Requests for other paths pass by uncounted (the
    guard answers them 404). Re-check on every BentoML upgrade.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not _known(scope["path"]):
            return await self.app(scope, receive, send)
        return await super().__call__(scope, receive, send)


def install_framework_fixes() -> None:
    """Make BentoML build its app with ``CancellingTimeoutMiddleware`` and
    ``KnownPathsMetrics`` (idempotent).

    BentoML looks both classes up in their modules when it builds the app, which happens in
    each worker after importing ``serving.service`` and before the service's ``__init__``
    runs: so that module calls this on import, the one exception to "nothing at import
    time" in the project, and it touches nothing but those two names.
    """
    if traffic.TimeoutMiddleware is not CancellingTimeoutMiddleware:
        if hasattr(traffic.TimeoutMiddleware, "_set_timer_out"):
            traffic.TimeoutMiddleware = CancellingTimeoutMiddleware
        else:  # BentoML changed: do not guess
            log.warning("BentoML's TimeoutMiddleware changed; its timer fix is not installed")
    instruments.RunnerTrafficMetricsMiddleware = KnownPathsMetrics


# -- auth, admission and request guard ----------------------------------------------------------


class Role(enum.Enum):
    """What a key may call: agents the /v1/ routes, admins those and /v1/admin/ and /metrics."""

    AGENT = "agent"
    ADMIN = "admin"
    METRICS = "metrics"


@dataclass(frozen=True)
class KeyRing:
    """SHA-256 digests of the accepted keys per role; keys themselves are never kept or logged."""

    digests: Mapping[Role, tuple[bytes, ...]]

    @classmethod
    def of(cls, keys: Mapping[Role, frozenset[str]]) -> KeyRing:
        return cls({role: key_digests(k) for role, k in keys.items()})

    def role(self, header: bytes | None) -> Role | None:
        """The strongest role whose key the ``Authorization`` header carries, or None."""
        for role in (Role.ADMIN, Role.AGENT, Role.METRICS):
            if authorized(header, self.digests.get(role, ())):
                return role
        return None


@dataclass
class Admission:
    """Per-worker admission: at most ``limit`` /v1/ requests in flight (running or queued
    for a thread); one more is refused at once with 429, so that admitted ones keep their
    latency and the probes stay fast."""

    limit: int
    in_flight: int = 0

    def admit(self) -> bool:
        if self.in_flight >= self.limit:
            return False
        self.in_flight += 1  # the event loop is one thread: no lock needed
        return True

    def leave(self) -> None:
        self.in_flight -= 1


OPEN_PATHS = frozenset({"/", "/docs.json", "/livez", "/readyz", "/healthz"})
METRICS_PATH = "/metrics"
ADMIN_PREFIX = "/v1/admin/"
RETRY_AFTER_S = 1


class ApiGuard:
    """ASGI middleware in front of every route (and of BentoML's metrics layer).

    - A path the service does not serve gets 404 here, so unknown paths never reach the
      metrics layer (which keeps a series per path).
    - ``/livez``, ``/readyz``, ``/healthz``, the OpenAPI document and its page are open.
    - ``/metrics`` needs a metrics or admin key; ``/v1/admin/`` an admin key (403 for an
      agent key); other ``/v1/`` routes any key (401 without one).
    - ``/v1/`` POSTs must be JSON (415) and at most ``MAX_BODY_BYTES``, counted on the bytes
      actually read, chunked uploads included (413); past the worker's admission limit,
      429 with Retry-After. The body is read here and handed on whole.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if path in OPEN_PATHS or path in _static_paths():
            return await self.app(scope, receive, send)
        service = _service()
        if service is None:
            return await error_response(503, "the service is starting", RETRY_LATER)(
                scope, receive, send
            )
        if path != METRICS_PATH and path not in service.routes:
            return await error_response(404, "no such route")(scope, receive, send)
        refusal = _refusal(scope, path, service)
        if refusal is not None:
            return await refusal(scope, receive, send)
        if not path.startswith(API_PREFIX) or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        if not service.admission.admit():
            message = "too many requests in flight: retry shortly"
            return await error_response(429, message, RETRY_LATER)(scope, receive, send)
        try:
            body = await _read_body(receive)
            if body is None:
                message = f"request body over {MAX_BODY_BYTES} bytes"
                # The server drops the rest of the body as it arrives (nothing is buffered).
                return await error_response(413, message)(scope, receive, send)
            await self.app(scope, _replay(body, receive), send)
        finally:
            service.admission.leave()


RETRY_LATER = ((b"retry-after", str(RETRY_AFTER_S).encode()),)


def error_code(err: BaseException) -> str:
    """A database error as codes only (driver error class, SQLSTATE or SQLite error name):
    its message could quote customer data, so it is never logged."""
    orig = getattr(err, "orig", None) or err
    code = getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", None)
    name = f"{type(orig).__module__}.{type(orig).__name__}"
    return f"{name} {code}" if code else name


def _service():
    """The running service instance, or None while it is starting."""
    try:
        return bentoml.get_current_service()
    except BentoMLException:
        return None


def _known(path: str, service=None) -> bool:
    """Whether the service serves ``path`` (its routes, the probes, metrics, documentation)."""
    if path in OPEN_PATHS or path == METRICS_PATH or path in _static_paths():
        return True
    service = service or _service()
    return service is not None and path in service.routes


def _refusal(scope: Scope, path: str, service) -> JSONResponse | None:
    """The error answer for a request the keys or headers refuse, or None to let it through."""
    headers = dict(scope.get("headers") or ())
    role = service.keys.role(headers.get(b"authorization"))
    if role is None or (role is Role.METRICS and path != METRICS_PATH):
        return error_response(
            401,
            "missing or invalid API key: send 'Authorization: Bearer <key>'",
            [(b"www-authenticate", b"Bearer")],
        )
    if (path.startswith(ADMIN_PREFIX) or path == METRICS_PATH) and role is Role.AGENT:
        return error_response(403, "this route needs an admin key (TIERWISE_ADMIN_KEYS)")
    if path == METRICS_PATH or scope.get("method") != "POST":
        return None
    media = headers.get(b"content-type", b"application/json").split(b";")[0]
    if media.strip().lower() != b"application/json":
        return error_response(415, "send the request body as application/json")
    length = headers.get(b"content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
        return error_response(413, f"request body over {MAX_BODY_BYTES} bytes")
    return None


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None as soon as more than ``MAX_BODY_BYTES`` arrived."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body already read, then the original's messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


@functools.cache
def _static_paths() -> frozenset[str]:
    """The files BentoML's documentation page loads (``/static_content/...``)."""
    folder = Path(bentoml.__file__).parent / "_internal" / "server" / "static_content"
    return frozenset(f"/static_content/{f.name}" for f in folder.iterdir() if f.is_file())


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
