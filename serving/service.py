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

Around them: ``serving.middleware`` (the API key and body guard, BentoML's request-timer
fix, the error bodies) and ``serving.startup`` (checks, loading, warm-up, heap freeze);
their public names used by the CLI, the bench and the tests are re-exported here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import bentoml
import psutil
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import JSONResponse

import serving.lean  # noqa: F401  first of ours: LightGBM without scikit-learn in a worker
from serving.adaptive import EMPTY, AdaptiveState
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
from serving.middleware import (
    RETRY_LATER,
    Admission,
    ApiGuard,
    CancellingTimeoutMiddleware,
    KeyRing,
    QuietValidationErrors,
    Role,
    authorized,
    error_code,
    error_response,
    install_framework_fixes,
    key_digests,
)
from serving.openapi import OpenApiDocument
from serving.policy import Context, decline_window
from serving.startup import (
    StartupError,
    State,
    check_startup,
    freeze_heap,
    load_state,
    warm_up,
)
from serving.workers import WorkerBoard, ping
from tierwise.settings import Settings

__all__ = [
    "CancellingTimeoutMiddleware",
    "StartupError",
    "Tierwise",
    "authorized",
    "check_startup",
    "key_digests",
]

log = logging.getLogger("tierwise.service")

REQUEST_TIMEOUT_S = 10.0  # BentoML answers 504 past this; a decision takes milliseconds
ROUTES = ("/v1/suggestions", "/v1/scores", "/v1/feedback", "/v1/admin/reload")
ONLINE_STORE, DECISION_LOG = "online store", "decision log"
WATCH_S = 1.0  # how often each worker probes the stores, reads what answers taught (the
# adaptive counts) and looks for a reload elsewhere
RELOAD_LEASE_S = 120.0  # a reload that takes longer (a crashed one) frees the lease


class StoreUnavailableError(RuntimeError):
    """A store did not answer (its name is the message): the request gets 503."""


def unavailable(err: StoreUnavailableError) -> JSONResponse:
    return error_response(503, f"the {err} is unavailable: retry shortly", RETRY_LATER)


# BentoML builds its app (and looks its timeout middleware up) in each worker after importing
# this module and before the service's __init__: the one thing the project does at import.
install_framework_fixes()


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


@bentoml.service(
    name="tierwise",
    workers=2,  # `tierwise serve --workers`; docs/design.md ("Workers")
    traffic={"timeout": REQUEST_TIMEOUT_S},
    http={"host": "127.0.0.1", "port": 3000},
)
class Tierwise:
    """Next best actions, scores and feedback for the agent desktop.

    Every /v1/ route needs `Authorization: Bearer <API key>` (401 otherwise; /v1/admin/
    an admin key, 403 for an agent key) and a JSON body (415 otherwise). Errors are JSON
    `{"error": "..."}`: 400 for a request that does not validate (with `detail` naming the
    fields), 404 for an unknown customer or decision, 409 for conflicting feedback or a
    reload already running, 413 for a body over 64 KiB, 422 for feedback on a suggestion the
    decision did not show, 429 (Retry-After) when the worker is full, 503 (Retry-After)
    while a store it needs is unavailable. Every answer reports the model versions used.
    """

    routes = frozenset(ROUTES)  # what the guard lets through (serving.middleware.ApiGuard)

    def __init__(self) -> None:
        logging.getLogger("tierwise").setLevel(logging.INFO)
        logging.getLogger("bentoml._internal.server.http_app").addFilter(QuietValidationErrors())
        self._ready = False
        settings = Settings()
        self._settings = settings
        self.keys = KeyRing.of(
            {
                Role.AGENT: settings.keys(),
                Role.ADMIN: settings.admin_key_set(),
                Role.METRICS: settings.metrics_key_set(),
            }
        )
        self.admission = Admission(settings.service_threads + settings.service_queue)
        self._pool = ThreadPoolExecutor(settings.service_threads, "tierwise-request")
        self._down: dict[str, str] = {}  # store -> error code, while it is unavailable
        self._reloading = threading.Lock()
        self._board = WorkerBoard(settings.decisions_url())
        self._generation = self._board.generation()
        self._state = load_state(settings, generation=self._generation)
        self._adaptive: AdaptiveState = EMPTY  # replaced whole by the watch thread
        self._learn()
        warm_up(self._state)
        freeze_heap()
        info = self._state.store_info
        log.info(
            "worker %d serving models %s; online store as of %s (%d customers); "
            "%d agent key(s), %d admin key(s); %d threads, %d requests admitted; "
            "ready %.1f s after its start",
            os.getpid(),
            dict(self._state.scorer.versions),
            info.as_of,
            info.rows,
            len(settings.keys()),
            len(settings.admin_key_set()),
            settings.service_threads,
            self.admission.limit,
            time.time() - psutil.Process().create_time(),
        )
        threading.Thread(target=self._watch, name="tierwise-watch", daemon=True).start()
        self._ready = True

    async def __is_ready__(self) -> bool:
        return self._ready and not self._down

    @bentoml.api(route="/v1/suggestions")
    async def suggestions(self, request: SuggestionInput, /) -> SuggestionOutput:
        """Next best actions for a customer in a contact, ranked, with reasons and talking
        points; the decision is logged and its decision_id is what /v1/feedback refers to.
        Unknown customer: 404. Decision log unavailable: 503 (the decision could not be
        logged, so none is shown)."""
        return await self._run(self._suggest, request)

    @bentoml.api(route="/v1/scores")
    async def scores(self, request: ScoresInput, /) -> ScoresOutput:
        """The customer card (basics, traits, performance, last transactions, satisfaction,
        holdings) with every calibrated probability, tier, churn reasons and talking points;
        logs no decision. A customer who closed recently gets the card with status closed.
        Unknown customer: 404."""
        return await self._run(self._score, request)

    @bentoml.api(route="/v1/feedback")
    async def feedback(self, request: FeedbackInput, /) -> FeedbackOutput:
        """Record what happened to one suggestion; answered only once durably stored.
        Idempotent per (decision_id, suggestion_id): a retry returns the stored row with
        created=false; a different response for it is 409. Unknown decision: 404; a
        suggestion the decision did not show: 422; the store unavailable: 503, and a retry
        later lands exactly once."""
        return await self._run(self._record_feedback, request)

    @bentoml.api(route="/v1/admin/reload")
    async def reload(self, request: ReloadInput, /) -> ReloadOutput:
        """Admin key only. Load the current champion versions and the online store's
        metadata again, warm up, then switch; requests in flight finish on the previous
        models, and every other worker follows within a few seconds. One reload at a time
        (409 while one runs). 409 when the new models cannot be served (e.g. tampered
        files, or an online store that needs a rebuild); the previous ones keep serving."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._reload_now)  # not the request threads

    # -- the work, in the request threads ----------------------------------------------------

    async def _run(self, work: Callable[[Any], Any], request: Any) -> Any:
        """``work(request)`` in a request thread: the event loop never waits for a store."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, work, request)
        except StoreUnavailableError as err:
            return unavailable(err)

    def _suggest(self, request: SuggestionRequest) -> SuggestionResponse | JSONResponse:
        from serving.capacity import caps_of
        from serving.decisions import record_of, without_capped
        from serving.suggest import suggest

        state = self._state
        customer = self._use(ONLINE_STORE, state.store.get, request.customer_id)
        if customer is None:
            return error_response(404, "unknown customer_id: not in the online store")
        c = request.context
        context = Context(c.channel, c.call_reason, c.queue_pressure, c.agent_id)
        now = dt.datetime.now(dt.UTC)
        since, _ = decline_window(now, state.policy)  # the batch counts the same window
        declines = self._use(DECISION_LOG, state.decisions.declines, request.customer_id, since)
        decision = suggest(
            customer,
            state.scorer,
            state.policy,
            context,
            declines,
            now,
            request.max_suggestions,
            uuid.uuid4().hex,
            self._adaptive,
        )
        # The policy's running caps are taken as the decision is logged (one transaction).
        capacity = state.policy.capacity
        caps = {s.action: caps_of(s.action, c.channel, capacity) for s in decision.suggestions}
        logged = record_of(decision, context, now)
        refused = self._use(DECISION_LOG, state.decisions.record, logged, caps)
        return suggestion_response(without_capped(decision, refused))

    def _score(self, request: ScoresRequest) -> ScoresResponse | JSONResponse:
        from serving.suggest import assess, card_of

        state = self._state
        customer = self._use(ONLINE_STORE, state.store.get, request.customer_id)
        if customer is None:
            return error_response(404, "unknown customer_id: not in the online store")
        card = card_of(customer, state.scorer)
        return scores_response(assess(customer, state.scorer, state.policy), card)

    def _record_feedback(self, request: FeedbackRequest) -> FeedbackResponse | JSONResponse:
        from serving.decisions import (
            FeedbackConflictError,
            UnknownDecisionError,
            UnknownSuggestionError,
        )

        try:
            result = self._use(
                DECISION_LOG,
                self._state.decisions.add_feedback,
                request.decision_id,
                request.suggestion_id,
                request.response,
                request.agent_id,
                request.note,
            )
        except UnknownDecisionError:
            return error_response(404, "unknown decision_id")
        except UnknownSuggestionError:
            return error_response(422, "suggestion_id is not part of this decision")
        except FeedbackConflictError as err:
            return error_response(409, str(err))
        f = result.feedback
        return FeedbackResponse(
            decision_id=f.decision_id,
            suggestion_id=f.suggestion_id,
            response=f.response,
            recorded_at=f.created_at,
            created=result.created,
        )

    def _use(self, store: str, call: Callable[..., Any], *args: Any) -> Any:
        """``call(*args)`` on ``store``; while it is known down, fail at once (the watch
        thread's probe closes the circuit again), so requests never queue behind a lock."""
        if store in self._down:
            raise StoreUnavailableError(store)
        try:
            return call(*args)
        except SQLAlchemyError as err:
            self._mark_down(store, err)
            raise StoreUnavailableError(store) from None

    def _mark_down(self, store: str, err: Exception) -> None:
        if store not in self._down:
            self._down[store] = error_code(err)
            log.warning(
                "the %s is unavailable (%s): 503 until it answers", store, self._down[store]
            )

    # -- reloads and the watch thread -------------------------------------------------------

    def _reload_now(self) -> ReloadResponse | JSONResponse:
        """The admin reload: one at a time in this worker and, by the lease, in all."""
        if not self._reloading.acquire(blocking=False):
            return error_response(409, "a reload is already running")
        holder = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            if not self._use(DECISION_LOG, self._board.take_lease, holder, RELOAD_LEASE_S):
                return error_response(409, "a reload is already running in another worker")
            try:
                generation = self._board.generation() + 1  # the lease: no one else bumps
                previous, state = self._state, self._load_again(generation, fresh=True)
                self._generation = self._board.bump()
            finally:
                self._board.release(holder)
        except StartupError as err:
            return error_response(409, str(err))
        except StoreUnavailableError as err:
            return unavailable(err)
        finally:
            self._reloading.release()
        before, after = dict(previous.scorer.versions), dict(state.scorer.versions)
        return ReloadResponse(
            model_versions=after,
            previous_model_versions=before,
            changed=before != after,
            store_as_of=state.store_info.as_of,
        )

    def _load_again(self, generation: int, fresh: bool) -> State:
        """Load, warm up and switch to ``generation``'s champions (``fresh``: from MLflow,
        not the workers' shared copy); StartupError: keep the old ones."""
        previous = self._state
        state = load_state(self._settings, previous.decisions, generation, fresh)
        warm_up(state)
        self._state = state
        previous.store.close()  # requests still reading it finish on their connection
        freeze_heap()
        log.info(
            "worker %d reloaded: models %s (before %s)",
            os.getpid(),
            dict(state.scorer.versions),
            dict(previous.scorer.versions),
        )
        return state

    def _watch(self) -> None:
        """Once a second: probe the stores (readiness, the circuit), read the adaptive counts
        and follow reloads."""
        while True:
            time.sleep(WATCH_S)
            self._probe(ONLINE_STORE, lambda: ping(self._state.store.engine))
            self._probe(DECISION_LOG, self._board.probe)
            self._learn()
            try:
                generation = self._board.generation()
            except SQLAlchemyError:
                continue
            if generation > self._generation and self._reloading.acquire(blocking=False):
                try:
                    self._load_again(generation, fresh=False)
                except StartupError as err:
                    log.error("worker %d keeps its models: %s", os.getpid(), err)
                finally:
                    self._generation = generation
                    self._reloading.release()

    def _learn(self) -> None:
        """Read what customer answers taught (a tiny table, shared by every worker through
        the decision log); while the log is down the last counts stay in use."""
        if DECISION_LOG in self._down:
            return
        try:
            self._adaptive = self._state.decisions.adaptive_state()
        except SQLAlchemyError as err:
            self._mark_down(DECISION_LOG, err)

    def _probe(self, store: str, check: Callable[[], None]) -> None:
        try:
            check()
        except SQLAlchemyError as err:
            self._mark_down(store, err)
        else:
            if self._down.pop(store, None) is not None:
                log.info("the %s answers again", store)


Tierwise.add_asgi_middleware(ApiGuard)
Tierwise.add_asgi_middleware(OpenApiDocument)
