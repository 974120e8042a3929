"""Every reason an agent may be shown reads as plain words, on every demo flavour."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from features.catalogue import features_of
from features.contract import load_dataset
from features.demo import generate_demo_data
from features.demo_saas import generate_saas_data
from features.feature import render_reason
from features.pipeline import build_features
from features.spec import feature_spec
from features.tiers import assign_tiers

FLAVOURS = {"bank": generate_demo_data, "saas": generate_saas_data}
DATES = [dt.date(2025, 12, 31), dt.date(2026, 6, 30)]
ROWS = 300  # rows rendered per feature: enough to meet zeros, nulls, negatives and extremes
# What no reason may contain: a raw field dump, a null, a placeholder, an internal name,
# a negative sum, or words that mean something only to the model.
BAD = {
    "a raw 'name: value' dump": re.compile(r"\w: "),
    "a null": re.compile(r"\b(nan|none|null|unknown|nat)\b", re.IGNORECASE),
    "a placeholder": re.compile(r"[{}]"),
    "an internal name": re.compile(r"\w_\w"),
    "a negative number": re.compile(r"(^|[\s(])-\d"),
    "jargon": re.compile(r"\b(threshold|level|percentile|rank|feature|spec|profile)\b"),
}


@pytest.fixture(scope="module", params=sorted(FLAVOURS))
def base(request, tmp_path_factory) -> tuple[str, object]:
    out: Path = tmp_path_factory.mktemp(request.param) / "data"
    FLAVOURS[request.param](out, customers=1500, seed=11)
    return request.param, load_dataset(out)


def _problems(text: str, vocabulary: frozenset[str] = frozenset()) -> list[str]:
    """What reads badly in ``text``; words of the data's own names (a "feature request"
    kind) are the data's vocabulary, not jargon."""
    plain = " ".join(w for w in text.split() if w.lower() not in vocabulary)
    return [
        why for why, pattern in BAD.items() if pattern.search(plain if "jargon" in why else text)
    ]


def _vocabulary(spec) -> frozenset[str]:
    names = [*spec.products, *spec.channels, *spec.holding_products, *spec.interaction_kinds]
    return frozenset(w for n in names for w in str(n).lower().replace("_", " ").split())


def test_every_reason_of_every_family_reads_as_plain_words(base):
    flavour, ds = base
    spec = feature_spec(ds)
    frame = build_features(ds, DATES, spec)
    sample = frame.sample(min(ROWS, len(frame)), random_state=0)
    bad, families, vocabulary = [], set(), _vocabulary(spec)
    for feature in features_of(spec):
        if not feature.reason:
            continue
        families.add(feature.family)
        for value in sample[feature.name]:
            text = render_reason(feature, value)
            if why := _problems(text, vocabulary):
                bad.append(f"{feature.name}={value!r} -> {text!r}: {', '.join(why)}")
    assert not bad, f"{flavour}: {len(bad)} reasons read badly, e.g.\n" + "\n".join(bad[:15])
    assert families >= {"rfm", "trend", "mix", "holdings", "interactions", "tenure", "tier"}


def test_every_tier_reason_is_said_in_the_customers_terms(base):
    flavour, ds = base
    reasons = assign_tiers(ds, DATES)["tier_reason"].dropna()
    assert len(reasons) > 500
    bad = [f"{r!r}: {', '.join(w)}" for r in reasons.unique() if (w := _problems(r))]
    assert not bad, f"{flavour}: " + "\n".join(bad[:10])


def test_profile_columns_are_context_never_reasons(base):
    _, ds = base
    spec = feature_spec(ds)
    assert all(not f.reason for f in features_of(spec) if f.family == "profile")


def test_the_saas_features_speak_its_own_words_and_none_of_the_banks(tmp_path):
    ds = load_dataset(generate_saas_data(tmp_path / "saas", customers=800, seed=5))
    spec = feature_spec(ds)
    names = {f.name for f in features_of(spec)}
    kinds = spec.interaction_kinds
    assert len(kinds) >= 20, kinds
    assert all(f"kind_{k}_30d" in names for k in kinds if k.isidentifier()), "a family per kind"
    bank = ("complaint_", "login", "checking", "savings", "mortgage", "credit_card", "atm")
    assert not [n for n in names if any(w in n for w in bank)], "the bank's words leaked in"
