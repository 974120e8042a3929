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

import datetime as dt
import functools
import logging
import uuid

import anyio
import bentoml
from pydantic import BaseModel

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
    ApiGuard,
    CancellingTimeoutMiddleware,
    QuietValidationErrors,
    authorized,
    error_response,
    install_timeout_fix,
    key_digests,
)
from serving.policy import Context, decline_window
from serving.startup import (
    StartupError,
    State,
    check_startup,
    freeze_heap,
    load_state,
    warm_up,
)
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

# BentoML builds its app (and looks its timeout middleware up) in each worker after importing
# this module and before the service's __init__: the one thing the project does at import.
install_timeout_fix()


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
    workers=1,  # docs/design.md ("One worker"): 2 workers did not share load reliably; BENTOML_CONFIG_OPTIONS
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
        logging.getLogger("bentoml._internal.server.http_app").addFilter(QuietValidationErrors())
        self._ready = False
        settings = Settings()
        self._settings = settings
        self._digests = key_digests(settings.keys())
        self._state = load_state(settings)
        warm_up(self._state)
        freeze_heap()
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
            return error_response(404, "unknown customer_id: not in the online store")
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
            return error_response(404, "unknown customer_id: not in the online store")
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
            return error_response(409, str(err))
        self._state = state
        if state.store is not previous.store:
            previous.store.close()
        freeze_heap()
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
