"""Start-up of the service: checks, loading the champions and stores, warm-up, heap freeze.

``check_startup`` is what ``tierwise serve`` runs before BentoML starts, so that a missing
API key, policy, champion or online store is one clear message instead of a worker failing
to start. ``load_state`` and ``warm_up`` are what the service runs in ``__init__`` and on
``/v1/admin/reload``; a missing piece raises ``StartupError`` saying what to run.
``freeze_heap`` is the second framework fix of docs/design.md (BentoML 1.4.39): after loading,
``gc.freeze()`` keeps the long-lived model and library objects out of every later
collection, whose full passes made the latency tail. No BentoML here: the HTTP layer is
``serving.service`` and ``serving.middleware``.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from serving.api import scores_response, suggestion_response
from serving.policy import PRESSURES, Context, PolicyConfig, PolicyError, read_policy
from tierwise.settings import Settings

if TYPE_CHECKING:
    from serving.decisions import DecisionLog
    from serving.store import OnlineStore, StoreInfo
    from serving.suggest import Scorer

WARM_UP_CALLS = 20
STORE_WAIT_S = 2.0  # a request's store statement waits this long for a lock, then 503


class StartupError(RuntimeError):
    """The service cannot start: the message says what is missing and what to run."""


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
    from features.urls import safe_url
    from models.registry import (
        CHAMPION,
        client,
        tierwise_models,
        verify_champions,
        version_by_alias,
    )

    uri = settings.tracking_uri()
    shown = safe_url(uri)
    mlflow_client = client(uri)
    names = tierwise_models(mlflow_client)
    if not names:
        raise StartupError(f"no Tierwise models are registered at {shown}: run `tierwise train`")
    if not any(version_by_alias(mlflow_client, n, CHAMPION) for n in names):
        raise StartupError(f"no model has a champion version at {shown}: run `tierwise promote`")
    try:  # a tampered or unreadable champion refuses here, before any worker starts
        verify_champions(uri)
    except LookupError as err:
        raise StartupError(str(err)) from None
    return info


def load_state(
    settings: Settings,
    decisions: DecisionLog | None = None,
    generation: int = 0,
    fresh: bool = False,
) -> State:
    """Load the champions of reload ``generation`` (``serving.champions``; from MLflow when
    ``fresh``; LightGBM with one thread each), open the stores and check them.

    Raises:
        StartupError: no champion, no online store, or a store built for other features.
    """
    from serving.champions import load_champions
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
        models = load_champions(settings, generation, fresh)
    except LookupError as err:
        raise StartupError(str(err)) from None
    except Exception as err:  # the registry unreachable (MLflow's or the database's error)
        raise StartupError(
            f"the model registry could not be read ({type(err).__name__}): the models "
            "stay as they are; retry when it answers"
        ) from None
    scorer = Scorer.from_models(models)
    stored = {json.dumps(s, sort_keys=True) for s in info.specs}
    if any(json.dumps(s, sort_keys=True) not in stored for s in scorer.specs):
        raise StartupError(
            "the online store was built for other features than the champion models "
            f"({info.model_versions} vs {dict(scorer.versions)}): run `tierwise materialize`"
        )
    decisions = decisions or DecisionLog(settings.decisions_url(), wait_s=STORE_WAIT_S)
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


def freeze_heap() -> None:
    """Move every object alive now out of the collector's view (models, libraries)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
