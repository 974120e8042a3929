"""The Tierwise BentoML service: next best actions, scores and feedback over HTTP.

Serve with ``tierwise serve`` (checks first, then runs ``bentoml serve`` on this class) or
``bentoml serve serving.service:Tierwise``. Configuration comes from ``Settings()`` (the
environment) in ``__init__``; at start-up the service loads the ``champion`` version of
every model from MLflow once and pins it, opens the online store and the decision log, and
runs a warm-up decision; ``/readyz`` answers 200 only after all of that succeeded, and a
missing model or store stops the start-up with a message saying what to run.

Routes (POST, JSON, bearer API key): ``/v1/suggestions``, ``/v1/scores``, ``/v1/feedback``,
``/v1/admin/reload`` (picks up a newly promoted champion). The handlers only parse, call
``serving.suggest`` and the stores, and answer; ``/livez``, ``/readyz``, ``/docs.json``
(OpenAPI) and ``/metrics`` are BentoML's.

Two framework fixes (PERF_NOTES, BentoML 1.4.39): BentoML's timeout middleware leaves a
timer alive per request for the whole timeout, and the garbage collector's full passes
over those objects made the latency tail; ``CancellingTimeoutMiddleware`` cancels the timer
once the response starts, and ``gc.freeze()`` after loading keeps the long-lived model and
library objects out of every later collection.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import gc
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import bentoml
from bentoml._internal.server.http import traffic
from bentoml.exceptions import BentoMLException
from pydantic import BaseModel, ValidationError
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.api import (
    FeedbackRequest,
    FeedbackResponse,
    ReloadRequest,
    ReloadResponse,
    ScoresRequest,
    ScoresResponse,
    SuggestionRequest,
    SuggestionResponse,
    scores_response,
    suggestion_response,
)
from serving.policy import (
    PRESSURES,
    Context,
    PolicyConfig,
    PolicyError,
    decline_window,
    read_policy,
)
from tierwise.settings import Settings

if TYPE_CHECKING:
    from serving.decisions import DecisionLog
    from serving.store import OnlineStore, StoreInfo
    from serving.suggest import Scorer

log = logging.getLogger("tierwise.service")

API_PREFIX = "/v1/"
MAX_BODY_BYTES = 64 * 1024  # a request is a few hundred bytes
REQUEST_TIMEOUT_S = 10.0  # BentoML answers 504 past this; a decision takes milliseconds
WARM_UP_CALLS = 20


class StartupError(RuntimeError):
    """The service cannot start: the message says what is missing and what to run."""


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
                response = JSONResponse(
                    {"error": f"Not able to process the request in {self.timeout} seconds"},
                    status_code=504,
                )
                await response(scope, receive, send)
        else:
            await fut
        finally:
            timer.cancel()


def install_timeout_fix() -> None:
    """Make BentoML build its app with ``CancellingTimeoutMiddleware`` (idempotent).

    BentoML looks the class up in ``bentoml._internal.server.http.traffic`` when it builds
    the app, which happens in each worker after importing this module and before the
    service's ``__init__`` runs: so this is called on import, the one exception to
    "nothing at import time" in the project, and it touches nothing but that name.
    """
    upstream = traffic.TimeoutMiddleware
    if upstream is CancellingTimeoutMiddleware:
        return
    if not hasattr(upstream, "_set_timer_out"):  # BentoML changed: do not guess
        log.warning("BentoML's TimeoutMiddleware changed; its timer fix is not installed")
        return
    traffic.TimeoutMiddleware = CancellingTimeoutMiddleware


install_timeout_fix()


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
        headers = dict(scope.get("headers") or ())
        try:
            service = bentoml.get_current_service()
        except BentoMLException:
            return await _reply(scope, receive, send, 503, "the service is starting")
        if not service.authorized(headers.get(b"authorization")):
            return await _reply(
                scope,
                receive,
                send,
                401,
                "missing or invalid API key: send 'Authorization: Bearer <key>'",
                [(b"www-authenticate", b"Bearer")],
            )
        if scope.get("method") == "POST":
            media = headers.get(b"content-type", b"application/json").split(b";")[0]
            if media.strip().lower() != b"application/json":
                return await _reply(
                    scope, receive, send, 415, "send the request body as application/json"
                )
            length = headers.get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
                return await _reply(
                    scope, receive, send, 413, f"request body over {MAX_BODY_BYTES} bytes"
                )
        await self.app(scope, receive, send)


async def _reply(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    error: str,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    response = JSONResponse({"error": error}, status_code=status)
    response.raw_headers.extend(headers)
    await response(scope, receive, send)


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


class _QuietValidationErrors(logging.Filter):
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


# -- start-up ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """Everything a request needs, loaded at start-up and replaced whole on reload."""

    scorer: Scorer
    store: OnlineStore
    store_info: StoreInfo
    decisions: DecisionLog
    policy: PolicyConfig


def load_policy(settings: Settings) -> PolicyConfig:
    """The policy settings from ``settings.policy_file`` (``policy.read_policy``).

    Raises:
        StartupError: the file is missing or not a valid policy.
    """
    try:
        return read_policy(settings.policy_file)
    except PolicyError as err:
        raise StartupError(str(err)) from None


def check_settings(settings: Settings) -> PolicyConfig:
    """What needs no model or store: API keys present, policy valid.

    Raises:
        StartupError: no API key, or an invalid policy file.
    """
    if not settings.keys():
        raise StartupError(
            "no API key configured: set TIERWISE_API_KEYS (comma-separated bearer keys)"
        )
    return load_policy(settings)


def check_startup(settings: Settings) -> StoreInfo:
    """Cheap checks before serving: keys, policy, champions registered, store built.

    ``tierwise serve`` runs this before starting BentoML, so that a missing piece is one
    clear message instead of a worker failing to start.

    Raises:
        StartupError: what is missing and what to run.
    """
    check_settings(settings)  # first: it needs no heavy import
    from serving.store import OnlineStore, StoreMissingError

    try:
        info = OnlineStore(settings.online_url(), create=False).info()
    except StoreMissingError as err:
        raise StartupError(str(err)) from None
    from models.registry import CHAMPION, client, tierwise_models, version_by_alias

    uri = settings.tracking_uri()
    mlflow_client = client(uri)
    names = tierwise_models(mlflow_client)
    if not names:
        raise StartupError(f"no Tierwise models are registered at {uri}: run `tierwise train`")
    if not any(version_by_alias(mlflow_client, n, CHAMPION) for n in names):
        raise StartupError(f"no model has a champion version at {uri}: run `tierwise promote`")
    return info


def load_state(settings: Settings, decisions: DecisionLog | None = None) -> State:
    """Load the champions (LightGBM with one thread each), open the stores and check them.

    Raises:
        StartupError: no champion, no online store, or a store built for other features.
    """
    from models.registry import CHAMPION, load_aliased
    from models.scoring import ModelSet
    from serving.decisions import DecisionLog
    from serving.store import OnlineStore, StoreMissingError
    from serving.suggest import Scorer

    policy = check_settings(settings)
    try:
        store = OnlineStore(settings.online_url(), create=False)
        info = store.info()
    except StoreMissingError as err:
        raise StartupError(str(err)) from None
    try:
        models = ModelSet(load_aliased(settings.tracking_uri(), CHAMPION, threads=1))
    except LookupError as err:
        raise StartupError(str(err)) from None
    scorer = Scorer.from_models(models)
    stored = {json.dumps(s, sort_keys=True) for s in info.specs}
    if any(json.dumps(s, sort_keys=True) not in stored for s in scorer.specs):
        raise StartupError(
            "the online store was built for other features than the champion models "
            f"({info.model_versions} vs {dict(scorer.versions)}): run `tierwise materialize`"
        )
    decisions = decisions or DecisionLog(settings.decisions_url())
    return State(scorer, store, info, decisions, policy)


def warm_up(state: State) -> None:
    """Run the inference path on stored customers without logging anything.

    Raises:
        StartupError: the store is empty or a prediction fails.
    """
    from serving.suggest import assess, card_of, suggest

    ids = state.store.customer_ids(limit=WARM_UP_CALLS)
    if not ids:
        raise StartupError("the online store holds no customer: run `tierwise materialize`")
    now = dt.datetime.now(dt.UTC)
    for customer_id in ids:
        customer = state.store.get(customer_id)
        if customer is None:
            raise StartupError("the online store changed during the warm-up: retry")
        for pressure in PRESSURES:
            context = Context("phone", None, pressure, "warm-up")
            suggestion_response(
                suggest(customer, state.scorer, state.policy, context, {}, now, None, "warm-up")
            )
        scores_response(
            assess(customer, state.scorer, state.policy), card_of(customer, state.scorer)
        )
    state.decisions.declines(ids[0], now)


def _freeze_heap() -> None:
    """Move every object alive now out of the collector's view (models, libraries)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


# -- the service -------------------------------------------------------------------------------


def as_io(model: type[BaseModel]) -> type[bentoml.IODescriptor]:
    """``model`` as a BentoML IO type of the same name and config.

    BentoML wraps plain pydantic models in a subclass named ``<Model>IODescriptor``, a name
    that would reach the OpenAPI document and error messages; this keeps the model's own.
    """
    return type(model.__name__, (bentoml.IODescriptor, model), {"__module__": model.__module__})


SuggestionInput = as_io(SuggestionRequest)
ScoresInput = as_io(ScoresRequest)
FeedbackInput = as_io(FeedbackRequest)
ReloadInput = as_io(ReloadRequest)
SuggestionOutput = as_io(SuggestionResponse)
ScoresOutput = as_io(ScoresResponse)
FeedbackOutput = as_io(FeedbackResponse)
ReloadOutput = as_io(ReloadResponse)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


@bentoml.service(
    name="tierwise",
    workers=1,  # PERF_NOTES: 2 workers did not share load reliably; BENTOML_CONFIG_OPTIONS
    traffic={"timeout": REQUEST_TIMEOUT_S},
    http={"host": "127.0.0.1", "port": 3000},
)
class Tierwise:
    """Next best actions, scores and feedback for the agent desktop.

    Every /v1/ route needs `Authorization: Bearer <API key>` (401 otherwise) and a JSON
    body (415 otherwise). Errors are JSON `{"error": "..."}`: 400 for a request that does
    not validate (with `detail` naming the fields), 404 for an unknown customer or
    decision, 409 for conflicting feedback, 413 for a body over 64 KiB, 422 for feedback on
    a suggestion the decision did not show. Every answer reports the model versions used.
    """

    def __init__(self) -> None:
        logging.getLogger("tierwise").setLevel(logging.INFO)
        logging.getLogger("bentoml._internal.server.http_app").addFilter(_QuietValidationErrors())
        self._ready = False
        settings = Settings()
        self._settings = settings
        self._digests = key_digests(settings.keys())
        self._state = load_state(settings)
        warm_up(self._state)
        _freeze_heap()
        info = self._state.store_info
        log.info(
            "serving models %s; online store as of %s (%d customers); %d API key(s)",
            dict(self._state.scorer.versions),
            info.as_of,
            info.rows,
            len(self._digests),
        )
        self._ready = True

    def __is_ready__(self) -> bool:
        return self._ready

    def authorized(self, header: bytes | None) -> bool:
        """Whether an ``Authorization`` header value carries an accepted key."""
        return authorized(header, self._digests)

    @bentoml.api(route="/v1/suggestions")
    async def suggestions(self, request: SuggestionInput, /) -> SuggestionOutput:
        """Next best actions for a customer in a contact, ranked, with reasons and talking
        points; the decision is logged and its decision_id is what /v1/feedback refers to.
        Unknown customer: 404."""
        from serving.decisions import record_of
        from serving.suggest import suggest

        state = self._state
        customer = state.store.get(request.customer_id)
        if customer is None:
            return _error(404, "unknown customer_id: not in the online store")
        c = request.context
        context = Context(c.channel, c.call_reason, c.queue_pressure, c.agent_id)
        now = dt.datetime.now(dt.UTC)
        since, _ = decline_window(now, state.policy)  # the batch counts the same window
        declines = state.decisions.declines(request.customer_id, since)
        decision = suggest(
            customer,
            state.scorer,
            state.policy,
            context,
            declines,
            now,
            request.max_suggestions,
            uuid.uuid4().hex,
        )
        state.decisions.record(record_of(decision, context, now))
        return suggestion_response(decision)

    @bentoml.api(route="/v1/scores")
    async def scores(self, request: ScoresInput, /) -> ScoresOutput:
        """The customer card (basics, traits, performance, last transactions, satisfaction,
        holdings) with every calibrated probability, tier, churn reasons and talking points;
        logs no decision. A customer who closed recently gets the card with status closed.
        Unknown customer: 404."""
        from serving.suggest import assess, card_of

        state = self._state
        customer = state.store.get(request.customer_id)
        if customer is None:
            return _error(404, "unknown customer_id: not in the online store")
        card = card_of(customer, state.scorer)
        return scores_response(assess(customer, state.scorer, state.policy), card)

    @bentoml.api(route="/v1/feedback")
    async def feedback(self, request: FeedbackInput, /) -> FeedbackOutput:
        """Record what happened to one suggestion; answered only once durably stored.
        Idempotent per (decision_id, suggestion_id): a retry returns the stored row with
        created=false; a different response for it is 409. Unknown decision: 404; a
        suggestion the decision did not show: 422."""
        from serving.decisions import (
            FeedbackConflictError,
            UnknownDecisionError,
            UnknownSuggestionError,
        )

        store = self._state.decisions
        add = functools.partial(
            store.add_feedback,
            request.decision_id,
            request.suggestion_id,
            request.response,
            request.agent_id,
            request.note,
        )
        try:  # in a thread: a durable commit waits for the disk, the event loop must not
            result = await anyio.to_thread.run_sync(add)
        except UnknownDecisionError:
            return _error(404, "unknown decision_id")
        except UnknownSuggestionError:
            return _error(422, "suggestion_id is not part of this decision")
        except FeedbackConflictError as err:
            return _error(409, str(err))
        f = result.feedback
        return FeedbackResponse(
            decision_id=f.decision_id,
            suggestion_id=f.suggestion_id,
            response=f.response,
            recorded_at=f.created_at,
            created=result.created,
        )

    @bentoml.api(route="/v1/admin/reload")
    async def reload(self, request: ReloadInput, /) -> ReloadOutput:
        """Load the current champion versions and the online store's metadata again, warm
        up, then switch; requests in flight finish on the previous models. With several
        workers each must be reloaded (or restart the service). 409 when the new models
        cannot be served (e.g. the online store needs a rebuild); the old ones stay."""
        previous = self._state
        try:
            state = await anyio.to_thread.run_sync(self._load_again)
        except StartupError as err:
            return _error(409, str(err))
        self._state = state
        if state.store is not previous.store:
            previous.store.close()
        _freeze_heap()
        before, after = dict(previous.scorer.versions), dict(state.scorer.versions)
        log.info("reloaded: models %s (before %s)", after, before)
        return ReloadResponse(
            model_versions=after,
            previous_model_versions=before,
            changed=before != after,
            store_as_of=state.store_info.as_of,
        )

    def _load_again(self) -> State:
        state = load_state(self._settings, decisions=self._state.decisions)
        warm_up(state)
        return state


Tierwise.add_asgi_middleware(ApiGuard)
