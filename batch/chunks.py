"""The batch's scoring of a chunk of serving inputs into output rows, the same on every engine.

A chunk's probabilities come from ``models.scoring.predict_probabilities`` (the service's
path too), its tier context from ``batch.inputs.tier_context`` and its suggestions from
``serving.suggest.rank``, so a customer's row says what the service would answer then.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from batch.inputs import HELD, Population, held_of, tier_context
from features.catalogue import feature_index
from features.spec import FeatureSpec
from features.values import as_date, as_number, as_text
from models.scoring import encode, predict_probabilities, probability_column
from serving.adaptive import EMPTY, AdaptiveState
from serving.capacity import has_caps
from serving.policy import MAX_SUGGESTIONS, Context, PolicyConfig, Ranking
from serving.reasons import reasons_of
from serving.store import StoredCustomer
from serving.suggest import CHURN, MAX_REASONS, Scorer, rank

if TYPE_CHECKING:
    from batch.run import BatchOptions


@dataclass
class ChunkScorer:
    """Everything needed to score a chunk of serving inputs; shipped to Spark workers as is.

    ``score`` turns a DataFrame of inputs into the output rows of those customers: keys,
    tier context, probabilities, churn risk band, the policy's top suggestions and, with
    ``options.reasons``, their reasons.
    """

    scorer: Scorer
    policy: PolicyConfig
    population: Population
    spec: FeatureSpec
    options: BatchOptions
    as_of: dt.date
    declines: Mapping[str, Mapping[str, list[dt.datetime]]]  # customer -> action -> times
    decided_at: dt.datetime  # the contact policy's window ends here (``run.decision_time``)
    seconds: dict[str, float] = field(default_factory=dict)
    # customer -> the actions the run's allocation offers (``batch.allocate``); None: the
    # policy's top list as it is (no caps, or the allocation's own pass over the candidates)
    allocation: Mapping[str, frozenset[str]] | None = None
    adaptive: AdaptiveState = EMPTY  # what answers taught, read once per run

    @functools.cached_property
    def schema(self) -> pa.Schema:
        """The output's columns, in order (the same for every chunk and engine)."""
        fields = [
            pa.field("customer_id", pa.string()),
            pa.field("as_of", pa.date32()),
            pa.field("tier", pa.string()),
            pa.field("value", pa.float64()),
            pa.field("value_tier", pa.string()),
            pa.field("tier_reason", pa.string()),
            pa.field("next_tier", pa.string()),
            pa.field("gap_to_next_tier", pa.float64()),
            *(pa.field(probability_column(t), pa.float64()) for t in self.scorer.predictors),
            pa.field("churn_risk", pa.string()),
            pa.field("control", pa.bool_()),
            pa.field("holdout_actions", pa.list_(pa.string())),  # listed, then held out
        ]
        if self.capped:
            fields.append(pa.field("capped_actions", pa.list_(pa.string())))  # in top, not allotted
        if self.options.reasons:
            fields.append(pa.field("churn_reasons", pa.list_(pa.string())))
        for i in range(1, self.options.top + 1):
            fields += [
                pa.field(f"suggestion_{i}_kind", pa.string()),
                pa.field(f"suggestion_{i}_action", pa.string()),
                pa.field(f"suggestion_{i}_product", pa.string()),
                pa.field(f"suggestion_{i}_probability", pa.float64()),
                pa.field(f"suggestion_{i}_expected_value", pa.float64()),
            ]
            if self.options.reasons:
                fields.append(pa.field(f"suggestion_{i}_reasons", pa.list_(pa.string())))
        fields.append(pa.field("model_versions", pa.string()))
        return pa.schema(fields)

    def score(self, chunk: pd.DataFrame) -> pd.DataFrame:
        """The output rows of a chunk of inputs, in the chunk's order."""
        with self.timed("predict"):
            probabilities = self._probabilities(chunk)
            context = tier_context(chunk, self.population, self.spec)
        out = pd.DataFrame(
            {
                "customer_id": chunk["customer_id"].astype(str).to_numpy(),
                "as_of": [as_date(v) for v in chunk["as_of"]],
                "tier": chunk["tier"].to_numpy(),
                "value": chunk["value"].to_numpy(dtype=np.float64),
                "value_tier": context["value_tier"].to_numpy(),
                "tier_reason": context["tier_reason"].to_numpy(),
                "next_tier": context["next_tier"].to_numpy(),
                "gap_to_next_tier": context["gap_to_next_tier"].to_numpy(dtype=np.float64),
            }
        )
        for target, p in probabilities.items():
            out[probability_column(target)] = p
        with self.timed("policy"):
            rankings = self._rankings(chunk, context, probabilities)
        if self.capped:
            allotted = [
                self._allot(r, c) for r, c in zip(rankings, out["customer_id"], strict=True)
            ]
            rankings = [r for r, _ in allotted]
            out["capped_actions"] = [capped for _, capped in allotted]
        out["churn_risk"] = [r.risk_band for r in rankings]
        out["control"] = [r.control for r in rankings]
        out["holdout_actions"] = [
            [n.action for n in r.not_shown if n.reason == "holdout"] for r in rankings
        ]
        if self.options.reasons:
            with self.timed("reasons"):
                self._add_reasons(out, chunk, rankings)
        for i in range(self.options.top):
            shown = [r.suggestions[i] if i < len(r.suggestions) else None for r in rankings]
            prefix = f"suggestion_{i + 1}_"
            out[prefix + "kind"] = [s.kind if s else None for s in shown]
            out[prefix + "action"] = [s.action if s else None for s in shown]
            out[prefix + "product"] = [s.product if s else None for s in shown]
            out[prefix + "probability"] = [s.probability if s else np.nan for s in shown]
            out[prefix + "expected_value"] = [s.expected_value if s else np.nan for s in shown]
        out["model_versions"] = ",".join(f"{n}={v}" for n, v in self.scorer.versions.items())
        return out[self.schema.names]

    @property
    def capped(self) -> bool:
        """Whether the policy caps this run's offers (the allocation decides the lists)."""
        return has_caps(self.policy.capacity, self.options.channel)

    def candidates(self, chunk: pd.DataFrame) -> pd.DataFrame:
        """Every customer's candidates in the policy's order, for ``batch.allocate``: with
        caps the policy lists up to ``MAX_SUGGESTIONS``, so a capped offer's place can be
        filled by the next."""
        with self.timed("allocation.rank"):
            probabilities = self._probabilities(chunk)
            rankings = self._rankings(
                chunk, tier_context(chunk, self.population, self.spec), probabilities
            )
        rows = [
            (c, s.action, s.expected_value, s.rank)
            for c, r in zip(chunk["customer_id"].astype(str), rankings, strict=True)
            for s in r.suggestions
        ]
        return pd.DataFrame(rows, columns=["customer_id", "action", "expected_value", "order"])

    def _allot(self, ranking: Ranking, customer_id: str) -> tuple[Ranking, list[str]]:
        """The customer's list as allocated (at most ``top``, the rest moving up) and the
        actions of the policy's top list a cap took off it."""
        top = ranking.suggestions[: self.options.top]
        if self.allocation is None:
            return replace(ranking, suggestions=top), []
        allowed = self.allocation.get(customer_id, frozenset())
        kept = [s for s in ranking.suggestions if s.action in allowed][: self.options.top]
        kept = [replace(s, rank=i) for i, s in enumerate(kept, start=1)]
        capped = [s.action for s in top if s.action not in allowed]
        return replace(ranking, suggestions=tuple(kept)), capped

    def _probabilities(self, chunk: pd.DataFrame) -> dict[str, np.ndarray]:
        matrices = encode(self.scorer.encodings, chunk)
        held = [held_of(v) for v in chunk[HELD]]
        return predict_probabilities(self.scorer.predictors, matrices, held)

    def _rankings(
        self, chunk: pd.DataFrame, context: pd.DataFrame, probabilities: dict[str, np.ndarray]
    ) -> list[Ranking]:
        profile = {c: f for c, f in self.scorer.profile_features.items() if f in chunk}
        columns = {
            "customer_id": chunk["customer_id"].astype(str).tolist(),
            "tier": chunk["tier"].tolist(),
            "tier_rank": chunk["tier_rank"].tolist(),
            "value": chunk["value"].tolist(),
            "held": chunk[HELD].tolist(),
            "next_tier": context["next_tier"].tolist(),
            "gap": context["gap_to_next_tier"].tolist(),
            **{f: chunk[f].tolist() for f in profile.values()},
        }
        targets = list(probabilities)
        values = [probabilities[t].tolist() for t in targets]
        uplift = {a: m.predict_frame(chunk).tolist() for a, m in self.scorer.uplift.items()}
        context_ = Context(self.options.channel)
        now = self.decided_at
        out = []
        for i, customer_id in enumerate(columns["customer_id"]):
            rank_value = as_number(columns["tier_rank"][i])
            customer = StoredCustomer(
                customer_id=customer_id,
                as_of=self.as_of,
                tier=as_text(columns["tier"][i]),
                tier_rank=None if rank_value is None else int(rank_value),
                value=as_number(columns["value"][i]) or 0.0,
                value_tier=None,
                tier_reason=None,
                next_tier=as_text(columns["next_tier"][i]),
                gap_to_next_tier=as_number(columns["gap"][i]),
                held=tuple(held_of(columns["held"][i])),
                history={},
                features={f: columns[f][i] for f in profile.values()},
            )
            out.append(
                rank(
                    customer,
                    self.scorer,
                    self.policy,
                    context_,
                    self.declines.get(customer_id, {}),
                    now,
                    MAX_SUGGESTIONS if self.capped else self.options.top,
                    f"batch:{self.as_of.isoformat()}:{customer_id}",
                    {t: as_number(v[i]) for t, v in zip(targets, values, strict=True)},
                    {a: u[i] for a, u in uplift.items()},
                    self.adaptive,
                )
            )
        return out

    def _add_reasons(self, out: pd.DataFrame, chunk: pd.DataFrame, rankings: list[Ranking]) -> None:
        """Reasons of the churn score and of every shown suggestion, by model, rows at once."""
        wanted: dict[str, list[int]] = {}
        if CHURN in self.scorer.predictors:
            wanted[CHURN] = [
                i for i in range(len(chunk)) if not np.isnan(out.at[i, "churn_probability"])
            ]
        for i, r in enumerate(rankings):
            for s in r.suggestions:
                wanted.setdefault(s.target, []).append(i)
        texts: dict[tuple[str, int], list[str]] = {}
        index = feature_index(self.spec)
        for target, rows in wanted.items():
            rows = sorted(set(rows))
            predictor = self.scorer.predictors[target]
            part = chunk.iloc[rows]
            contributions = predictor.contributions(predictor.encoding.matrix(part))[:, :-1]
            names = predictor.encoding.features
            for j, i in enumerate(rows):
                values = part.iloc[j]
                found = reasons_of(contributions[j], names, values, index, MAX_REASONS)
                texts[(target, i)] = [r.text for r in found]
        has_churn = CHURN in self.scorer.predictors
        out["churn_reasons"] = (
            [texts.get((CHURN, i), []) for i in range(len(chunk))] if has_churn else None
        )
        for k in range(self.options.top):
            out[f"suggestion_{k + 1}_reasons"] = [
                texts.get((r.suggestions[k].target, i)) if k < len(r.suggestions) else None
                for i, r in enumerate(rankings)
            ]

    @contextlib.contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the time spent in the block to ``seconds[phase]``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start
