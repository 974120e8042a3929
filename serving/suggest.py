"""The one inference path: a stored customer -> probabilities, reasons and ranked suggestions.

Given a customer's online-store row, the loaded champion models, the policy settings, the
contact's context and the customer's declines, ``suggest`` returns everything a decision
shows; ``assess`` the same without a decision (the customer card). No HTTP, no storage:
the service and batch scoring both call these.

The hot path stays small: one encoded row per distinct feature encoding (models trained
together share one), ``booster.predict`` on that 1-row numpy array per model, and feature
contributions (TreeSHAP, the costly part) only for what is shown: the churn score and the
models behind the returned suggestions.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from features.catalogue import feature_index
from features.feature import Feature
from features.spec import FeatureSpec, merged_spec, slugs
from features.values import as_date
from models.scoring import Encodings, encode, predict_probabilities, shared_encodings
from serving.adaptive import EMPTY, AdaptiveState
from serving.card import Card, customer_card
from serving.policy import (
    Context,
    Customer,
    Mode,
    NotShown,
    PolicyConfig,
    Ranking,
    Suggestion,
    rank_actions,
    risk_band,
)
from serving.reasons import Reason, suggestion_points, talking_points, top_reasons
from serving.replay import policy_inputs

if TYPE_CHECKING:
    import numpy as np

    from models.model import Predictor
    from models.scoring import ModelSet
    from models.uplift import UpliftModel
    from serving.store import StoredCustomer

CHURN, UPGRADE = "churn", "upgrade"
MAX_REASONS = 3


@dataclass(frozen=True)
class Scorer:
    """The champion models prepared for one-row inference.

    Build with ``Scorer.from_models``; it holds no connection and is safe to share.
    """

    versions: Mapping[str, str]  # registered model name -> version
    predictors: Mapping[str, Predictor]  # target -> predictor
    feature_text: Mapping[str, Mapping[str, Feature]]  # target -> feature name -> Feature
    product_by_target: Mapping[str, str]  # cross-sell target -> product
    encodings: Encodings  # one encoding, its targets
    profile_features: Mapping[str, str]  # profile column -> feature name
    specs: tuple[dict, ...] = field(default_factory=tuple)
    known_products: tuple[str, ...] = ()  # held products of the specs, and modelled ones
    spec: FeatureSpec | None = None  # the specs merged: what the customer card shows
    uplift: Mapping[str, UpliftModel] = field(default_factory=dict)  # action -> its champion

    @classmethod
    def from_models(cls, models: ModelSet) -> Scorer:
        """Prepare a ModelSet (predictors loaded with 1 thread for serving), with its uplift
        models (none: every action is ranked by propensity)."""
        predictors = {t: m.predictor for t, m in sorted(models.models.items())}
        feature_text: dict[str, dict[str, Feature]] = {}
        specs: list[dict] = []
        profile: dict[str, str] = {}
        for spec, targets in models.by_spec():
            index = feature_index(spec)
            specs.append(spec.to_dict())
            for target in targets:
                feature_text[target] = index
            names = slugs(list(spec.profile))
            profile.update({c: f"profile_{names[c]}" for c in spec.profile})
        product_by_target = {
            t: p.meta["product"] for t, p in predictors.items() if p.meta.get("product")
        }
        known = {p for s in specs for p in s.get("holding_products") or ()}
        return cls(
            versions=dict(sorted(models.versions.items())),
            predictors=predictors,
            feature_text=feature_text,
            product_by_target=product_by_target,
            encodings=shared_encodings(predictors),
            profile_features=profile,
            specs=tuple(specs),
            known_products=tuple(sorted(known | set(product_by_target.values()))),
            spec=merged_spec([spec for spec, _ in models.by_spec()]),
            uplift=dict(sorted(models.uplift.items())),
        )

    def predict_uplift(self, features: Mapping[str, Any]) -> dict[str, float]:
        """Action -> the customer's predicted uplift, for the actions with an uplift champion."""
        return {a: m.predict_row(dict(features)) for a, m in self.uplift.items()}

    def encode(self, features: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Target -> the customer's encoded 1-row matrix (shared by targets of one encoding)."""
        return encode(self.encodings, features)


@dataclass(frozen=True)
class TierView:
    """The service tier shown, with its reason and the way up."""

    name: str | None
    rank: int | None
    value: float
    value_tier: str | None
    reason: str | None
    next_tier: str | None
    gap_to_next_tier: float | None

    @classmethod
    def of(cls, c: StoredCustomer) -> TierView:
        """A stored customer's tier as the assessment shows it."""
        return cls(
            c.tier,
            c.tier_rank,
            c.value,
            c.value_tier,
            c.tier_reason,
            c.next_tier,
            c.gap_to_next_tier,
        )


@dataclass(frozen=True)
class ChurnView:
    """Churn risk: the calibrated probability, its policy band, what drives it."""

    probability: float | None
    risk_band: str
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class UpgradeView:
    """The chance of a higher tier, and the way there."""

    probability: float | None
    next_tier: str | None
    gap_to_next_tier: float | None


@dataclass(frozen=True)
class CrossSellView:
    """One cross-sell model's propensity for the customer."""

    target: str
    product: str
    probability: float | None  # None when the customer already holds the product
    held: bool


@dataclass(frozen=True)
class Assessment:
    """What the models say of a customer, and what an agent could open with."""

    customer_id: str
    as_of: dt.date
    tier: TierView
    churn: ChurnView
    upgrade: UpgradeView
    cross_sell: tuple[CrossSellView, ...]
    probabilities: Mapping[str, float | None]  # target -> calibrated probability
    talking_points: tuple[str, ...]
    model_versions: Mapping[str, str]


@dataclass(frozen=True)
class Decision:
    """A decision: the assessment, the suggestions in order, what was not shown and why."""

    decision_id: str
    assessment: Assessment
    suggestions: tuple[Suggestion, ...]  # with id, rank, reasons and talking points
    control: bool
    eligible: tuple[str, ...]  # action keys left after eligibility and the contact policy
    not_shown: tuple[NotShown, ...] = ()
    mode: Mode = "greedy"  # how the policy ordered it: greedy, control or explore
    # what the policy read of the customer and models (``replay.policy_inputs``): logged so
    # another policy can rank this decision again (``monitoring.evaluation``)
    inputs: Mapping[str, Any] = field(default_factory=dict)


def assess(customer: StoredCustomer, scorer: Scorer, config: PolicyConfig) -> Assessment:
    """Probabilities, tier, churn reasons and talking points of a customer (no decision)."""
    return _Work(customer, scorer, config).assessment()


def suggest(
    customer: StoredCustomer,
    scorer: Scorer,
    config: PolicyConfig,
    context: Context,
    declines: Mapping[str, Sequence[dt.datetime]],
    now: dt.datetime,
    max_suggestions: int | None,
    decision_id: str,
    adaptive: AdaptiveState = EMPTY,
) -> Decision:
    """The decision for one contact: assessment plus ranked suggestions with reasons.

    Args:
        declines: action key -> times the customer declined it (``DecisionLog.declines``).
        now: the decision time (UTC), for the contact policy's window.
        max_suggestions: 1..10 (``policy.MAX_SUGGESTIONS``), or None: the queue pressure's.
        decision_id: decides the mode (``policy.decision_mode``) and the suggestion ids.
        adaptive: what customer answers taught (``DecisionLog.adaptive_state``).

    Raises:
        ValueError: ``max_suggestions`` or the queue pressure out of range.
    """
    work = _Work(customer, scorer, config)
    assessment = work.assessment()
    ranking = work.rank(context, declines, now, max_suggestions, decision_id, adaptive)
    values = work.point_values()
    suggestions = tuple(
        replace(
            c,
            suggestion_id=suggestion_id(decision_id, c.action),
            reasons=work.reasons(c.target),
            talking_points=tuple(suggestion_points(c.kind, c.product, values)),
        )
        for c in ranking.suggestions
    )
    return Decision(
        decision_id,
        assessment,
        suggestions,
        ranking.control,
        ranking.eligible,
        ranking.not_shown,
        ranking.mode,
        policy_inputs(
            work.policy_customer(), scorer.product_by_target, scorer.known_products, max_suggestions
        ),
    )


def rank(
    customer: StoredCustomer,
    scorer: Scorer,
    config: PolicyConfig,
    context: Context,
    declines: Mapping[str, Sequence[dt.datetime]],
    now: dt.datetime,
    max_suggestions: int | None,
    decision_id: str,
    probabilities: Mapping[str, float | None],
    uplift: Mapping[str, float] | None = None,
    adaptive: AdaptiveState = EMPTY,
) -> Ranking:
    """The policy's ranking for a customer whose probabilities are already known.

    What ``suggest`` ranks, for callers that predicted many customers at once (batch
    scoring): ``customer.features`` needs only the profile features the policy reads
    (``Scorer.profile_features``), ``probabilities`` maps every target to its calibrated
    probability (None where the customer holds the cross-sell product), and ``uplift``
    every action with an uplift champion to its predicted uplift; ``adaptive`` is what
    customer answers taught (read once per batch run).
    """
    work = _Work(customer, scorer, config, probabilities, uplift or {})
    return work.rank(context, declines, now, max_suggestions, decision_id, adaptive)


def suggestion_id(decision_id: str, action: str) -> str:
    """A suggestion's id: stable for a decision and action, unique across decisions."""
    return hashlib.sha256(f"{decision_id}:{action}".encode()).hexdigest()[:24]


class _Work:
    """One customer's inference, computing each model's output at most once."""

    def __init__(
        self,
        customer: StoredCustomer,
        scorer: Scorer,
        config: PolicyConfig,
        probabilities: Mapping[str, float | None] | None = None,
        uplift: Mapping[str, float] | None = None,
    ) -> None:
        self.customer = customer
        self.scorer = scorer
        self.config = config
        self._reasons: dict[str, tuple[Reason, ...]] = {}
        if probabilities is not None:
            self.probabilities = dict(probabilities)
            self.uplift = dict(uplift or {})
            return
        self.rows = scorer.encode(customer.features)
        found = predict_probabilities(scorer.predictors, self.rows, [customer.held])
        self.probabilities = {t: _finite(float(p[0])) for t, p in found.items()}
        self.uplift = scorer.predict_uplift(customer.features)

    def rank(
        self,
        context: Context,
        declines: Mapping[str, Sequence[dt.datetime]],
        now: dt.datetime,
        max_suggestions: int | None,
        decision_id: str,
        adaptive: AdaptiveState = EMPTY,
    ) -> Ranking:
        """The policy's ranking of this customer's actions for a contact."""
        return rank_actions(
            self.policy_customer(),
            context,
            self.config,
            declines,
            now,
            max_suggestions,
            decision_id,
            self.scorer.product_by_target,
            self.scorer.known_products,
            adaptive,
        )

    def reasons(self, target: str) -> tuple[Reason, ...]:
        """The top reasons behind a model's score (its contributions, computed once)."""
        if target not in self._reasons:
            predictor = self.scorer.predictors.get(target)
            self._reasons[target] = (
                ()
                if predictor is None
                else tuple(
                    top_reasons(
                        predictor,
                        self.rows[target],
                        self.customer.features,
                        self.scorer.feature_text[target],
                        k=MAX_REASONS,
                    )
                )
            )
        return self._reasons[target]

    def assessment(self) -> Assessment:
        """Scores, tier and churn reasons (the only contributions an assessment needs)."""
        c = self.customer
        churn = self.probabilities.get(CHURN)
        held = set(c.held)
        return Assessment(
            customer_id=c.customer_id,
            as_of=c.as_of,
            tier=TierView.of(c),
            churn=ChurnView(
                churn,
                risk_band(churn, self.config),
                self.reasons(CHURN) if churn is not None else (),
            ),
            upgrade=UpgradeView(self.probabilities.get(UPGRADE), c.next_tier, c.gap_to_next_tier),
            cross_sell=tuple(
                CrossSellView(t, p, self.probabilities.get(t), p in held)
                for t, p in sorted(self.scorer.product_by_target.items(), key=lambda x: x[1])
            ),
            probabilities=dict(self.probabilities),
            talking_points=tuple(talking_points(c.history, c.as_of, c.tier)),
            model_versions=self.scorer.versions,
        )

    def policy_customer(self) -> Customer:
        """The customer as the policy sees it."""
        c = self.customer
        return Customer(
            customer_id=c.customer_id,
            tier=c.tier,
            tier_rank=c.tier_rank,
            next_tier=c.next_tier,
            value=c.value,
            probabilities=self.probabilities,
            held=frozenset(c.held),
            profile={k: c.features.get(f) for k, f in self.scorer.profile_features.items()},
            gap_to_next_tier=c.gap_to_next_tier,
            closed_date=as_date(c.history.get("closed_date")),
            uplift=self.uplift,
        )

    def point_values(self) -> dict[str, Any]:
        """What ``reasons.suggestion_points`` reads: the feature row plus the tier context."""
        c = self.customer
        return {
            **c.features,
            "tier": c.tier,
            "next_tier": c.next_tier,
            "gap_to_next_tier": c.gap_to_next_tier,
            "products_held": list(c.held),
        }


def _finite(p: float) -> float | None:
    """A probability as the service reports it: None where missing (held back, or not finite)."""
    return p if math.isfinite(p) else None


def card_of(customer: StoredCustomer, scorer: Scorer) -> Card:
    """The customer card of a stored customer (``serving.card``)."""
    context = {
        "value": customer.value,
        "value_tier": customer.value_tier,
        "tier": customer.tier,
        "tier_reason": customer.tier_reason,
        "next_tier": customer.next_tier,
        "gap_to_next_tier": customer.gap_to_next_tier,
    }
    spec = scorer.spec or FeatureSpec()
    return customer_card(customer.features, customer.history, customer.held, context, spec)
