"""Incremental effects from outcome rows with known answers: intervals, notes, lift, Qini."""

from __future__ import annotations

import base64
import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest

from monitoring.effects import (
    compare_arms,
    newcombe_interval,
    outcome_effects,
    sample_size_note,
    welch_interval,
)
from monitoring.sections import NO_OUTCOMES, build_effects
from serving.decisions import OUTCOME_COLUMNS, DecisionLog, read_outcomes
from tests.uplift_synthetic import randomized

AT = dt.datetime(2026, 3, 2, 10, 0)


def outcome_rows(cells: list[tuple[str, str, bool, int, int]], **columns: object) -> pd.DataFrame:
    """Outcome rows from (action, arm, control, outcomes, rows) cells; value 10 per outcome.

    Every row gets the columns of ``decision_outcomes``; ``columns`` overrides any of them.
    """
    records = []
    for action, arm, control, positives, n in cells:
        kind = action if action in ("retention", "upgrade") else "cross_sell"
        for i in range(n):
            outcome = int(i < positives)
            records.append(
                {
                    "decision_id": f"{action}-{arm}-{control}-{i}",
                    "action": action,
                    "kind": kind,
                    "product": action if kind == "cross_sell" else None,
                    "arm": arm,
                    "control": control,
                    "source": "service",
                    "customer_id": f"C{len(records):05d}",
                    "decided_at": AT,
                    "tier": "major",
                    "channel": "phone",
                    "probability": 0.5,
                    "horizon_end": dt.date(2026, 6, 1),
                    "outcome": outcome,
                    "value": 10.0 * outcome,
                    "computed_at": AT,
                }
            )
    frame = pd.DataFrame(records, columns=list(OUTCOME_COLUMNS))
    return frame.assign(**columns)


# -- intervals ---------------------------------------------------------------------------------


def test_newcombe_interval_matches_the_published_example():
    # Newcombe (1998), table II, example (a): 56/70 - 48/80, method 10 gives 0.0524 to 0.3339
    d, low, high = newcombe_interval(56, 70, 48, 80)
    assert d == pytest.approx(0.2)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339), (low, high)


def test_sixty_in_a_hundred_against_forty_is_a_conclusive_effect():
    # Given 60/100 offered against 40/100 held out
    rows = outcome_rows([("savings", "offered", False, 60, 100), ("savings", "holdout", False, 40, 100)])  # fmt: skip
    # When the effect of offering is measured
    (row,) = outcome_effects(rows)["by_action"]
    # Then it is +0.20 with the hybrid score interval (Wilson 0.5020-0.6906 and 0.3094-0.4980)
    assert (row["offered_n"], row["holdout_n"]) == (100, 100)
    assert row["effect"] == pytest.approx(0.2)
    assert (round(row["effect_low"], 4), round(row["effect_high"], 4)) == (0.0614, 0.3281)
    assert row["effect_note"] == "conclusive", "the interval excludes 0"
    assert row["effect_more_offered"] is None
    # And the incremental value per offer is 6 - 4 = 2 with a Welch interval around it
    assert row["value_effect"] == pytest.approx(2.0)
    assert row["value_low"] < 2.0 < row["value_high"]


def test_welch_interval_matches_scipy_on_unequal_variances():
    from scipy import stats

    rng = np.random.default_rng(3)
    a, b = rng.normal(5, 1, 40), rng.normal(4, 3, 25)
    d, low, high = welch_interval(a, b)
    result = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (low, high) == pytest.approx((result.low, result.high)), "Welch's t interval"
    assert d == pytest.approx(a.mean() - b.mean())


def test_welch_interval_needs_two_values_per_arm():
    d, low, high = welch_interval(np.array([3.0]), np.array([1.0, 2.0]))
    assert d == 1.5 and math.isnan(low) and math.isnan(high)


# -- sample-size notes -------------------------------------------------------------------------


def test_sample_size_note_on_a_known_case():
    # Given 12/20 against 8/20: +0.20, an interval spanning 0
    d, low, high = newcombe_interval(12, 20, 8, 20)
    assert low < 0 < high
    # When the note is made: n = (1.96 + 0.8416)^2 (0.24 + 0.24) / 0.2^2 = 94.2 per arm
    note = sample_size_note(d, low, high, (0.24, 0.24), (20, 20))
    # Then each arm needs 95 decisions, 75 more than it has
    assert (note["more_offered"], note["more_holdout"]) == (75, 75)
    assert note["note"].startswith("about 75 more offered and 75 more holdout decisions")


def test_sample_size_note_keeps_the_arms_in_their_ratio():
    # A 5% holdout: 380 offered to 20 held out, rates 0.6 and 0.4
    d, low, high = newcombe_interval(228, 380, 8, 20)
    note = sample_size_note(d, low, high, (0.24, 0.24), (380, 20))
    # n_b = 7.849 (0.24 / 19 + 0.24) / 0.04 = 49.57 -> 50 held out; 19 x 49.57 = 941.9 -> 942
    assert (note["more_offered"], note["more_holdout"]) == (942 - 380, 50 - 20)


def test_no_effect_seen_gives_a_note_without_dividing_by_zero():
    rows = outcome_rows([("upgrade", "offered", False, 5, 50), ("upgrade", "holdout", False, 5, 50)])  # fmt: skip
    (row,) = outcome_effects(rows)["by_action"]
    assert row["effect"] == 0
    assert row["effect_note"].startswith("no effect seen"), row["effect_note"]
    assert row["effect_more_offered"] is None and row["effect_more_holdout"] is None


def test_rates_of_zero_in_both_arms_are_no_effect_seen():
    rows = outcome_rows([("upgrade", "offered", False, 0, 30), ("upgrade", "holdout", False, 0, 30)])  # fmt: skip
    (row,) = outcome_effects(rows)["by_action"]
    assert row["effect_note"].startswith("no effect seen")
    assert row["value_note"].startswith("no effect seen"), "constant values: the interval is 0"


def test_an_action_without_holdout_rows_says_so():
    rows = outcome_rows([("retention", "offered", False, 30, 40)])
    (row,) = outcome_effects(rows)["by_action"]
    assert row["holdout_n"] == 0 and math.isnan(row["effect"])
    assert row["effect_note"] == "no holdout rows yet"
    assert row["value_note"] == "no holdout rows yet"


# -- groups ------------------------------------------------------------------------------------


def test_effects_by_tier_come_highest_tier_first_with_missing_tiers_last():
    cells = [("savings", "offered", False, 6, 10), ("savings", "holdout", False, 4, 10)]
    rows = pd.concat(
        [
            outcome_rows(cells, tier="ordinary"),
            outcome_rows(cells, tier="vip"),
            outcome_rows(cells, tier=None),
        ]
    )
    figures = outcome_effects(rows, tier_order=["ordinary", "vip"])
    assert [r["tier"] for r in figures["by_tier"]] == ["vip", "ordinary", "-"]
    assert [r["offered_n"] for r in figures["by_tier"]] == [10, 10, 10]
    assert [r["channel"] for r in figures["by_channel"]] == ["phone"]
    assert figures["by_channel"][0]["offered_n"] == 30


def test_outcome_rows_lacking_a_column_are_refused():
    rows = outcome_rows([("savings", "offered", False, 1, 2)]).drop(columns=["arm"])
    with pytest.raises(ValueError, match=r"lack columns \['arm'\]"):
        outcome_effects(rows)


def test_ranking_lift_compares_offered_rows_of_ranked_and_control_decisions():
    # Given ranked offers converting 30/50 and control offers 10/50, plus holdout rows
    rows = outcome_rows(
        [
            ("savings", "offered", False, 30, 50),
            ("savings", "offered", True, 10, 50),
            ("savings", "holdout", False, 50, 50),  # never part of the ranking's lift
        ]
    )
    ranking = outcome_effects(rows)["ranking"]
    overall = ranking["overall"]
    assert (overall["ranked_n"], overall["control_n"]) == (50, 50)
    assert overall["effect"] == pytest.approx(0.4)
    assert overall["effect_low"] > 0 and overall["effect_note"] == "conclusive"
    assert overall["value_effect"] == pytest.approx(4.0)
    assert ranking["by_action"][0]["action"] == "savings"


def test_ranking_lift_counts_a_decisions_value_once():
    # Given one ranked decision that offered two actions, and two control decisions
    rows = outcome_rows([("savings", "offered", False, 1, 1), ("savings", "offered", True, 0, 2)])
    second = rows.iloc[[0]].assign(action="card", product="card", outcome=0)
    rows = pd.concat([rows, second])
    overall = outcome_effects(rows)["ranking"]["overall"]
    assert overall["ranked_n"] == 2, "two offers"
    assert overall["ranked_value"] == 10.0, "the decision's value once, not per offer"


def test_comparisons_of_empty_arms_are_nan_not_errors():
    row = compare_arms((np.array([]), np.array([])), (np.array([]), np.array([])))
    assert row["offered_n"] == 0 and math.isnan(row["offered_rate"])
    assert row["effect_note"] == "no offered or holdout rows yet"


# -- Qini --------------------------------------------------------------------------------------


def test_curves_per_action_and_score_and_a_note_where_data_is_thin():
    # Given a randomized savings offer, an uplift score, and an upgrade with 5 held out
    y, treated, x = randomized(400)
    savings = outcome_rows([("savings", "offered", False, 0, 400)]).assign(
        outcome=y, arm=np.where(treated == 1, "offered", "holdout"), probability=x, uplift=x
    )
    upgrade = outcome_rows([("upgrade", "offered", False, 10, 50), ("upgrade", "holdout", False, 1, 5)])  # fmt: skip
    figures = outcome_effects(pd.concat([savings, upgrade]))
    # Then savings has a curve by each score and upgrade a note instead of a curve
    assert set(figures["curves"]) == {"savings"}
    assert set(figures["curves"]["savings"]) == {"probability", "uplift"}
    curve = figures["curves"]["savings"]["uplift"]
    assert len(curve["share"]) == 51 and curve["share"][0] == 0 and curve["share"][-1] == 1
    assert curve["qini_coefficient"] > 0.1
    assert curve["offered"] + curve["holdout"] == 400
    assert any(n.startswith("upgrade by probability: 50 offered and 5 holdout") for n in figures["curve_notes"])  # fmt: skip
    # And every figure is plain JSON (NaNs aside, which the run writes as null)
    assert json.loads(json.dumps(figures))["curves"]["savings"]["uplift"]["offered"] > 0


# -- the section -------------------------------------------------------------------------------


def randomized_rows(n: int = 400) -> pd.DataFrame:
    """Outcome rows of a randomized savings offer in two tiers, with a propensity score."""
    y, treated, x = randomized(n)
    rows = outcome_rows([("savings", "offered", False, 0, n)])
    return rows.assign(
        outcome=y.astype(int),
        value=10.0 * y,
        arm=np.where(treated == 1, "offered", "holdout"),
        probability=x,
        tier=np.where(np.arange(n) % 2 == 0, "vip", "ordinary"),
    )


def test_section_says_so_when_there_are_no_outcomes(tmp_path):
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    assert read_outcomes(url) is None, "no store yet"
    for outcomes in (None, randomized_rows().iloc[:0]):
        section = build_effects(outcomes, dt.date(2026, 7, 1), ["ordinary", "vip"])
        assert section.figures == {"note": NO_OUTCOMES} and section.images == {}


def test_section_from_a_real_store_has_figures_and_plots(tmp_path):
    # Given outcomes written to and read back from a decision store on SQLite
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    log = DecisionLog(url)
    log.write_outcomes(randomized_rows().drop(columns=["computed_at"]), now=AT)
    log.close()
    outcomes = read_outcomes(url)
    # When the section is built as of a date after every horizon
    section = build_effects(outcomes, dt.date(2026, 7, 1), ["ordinary", "vip"])
    # Then it has the effects, highest tier first, and both plots as PNG
    figures = section.figures
    assert figures["rows"] == 400 and [r["tier"] for r in figures["by_tier"]] == ["vip", "ordinary"]
    assert set(section.images) == {"qini", "effect_by_tier"}
    for png in section.images.values():
        assert base64.b64decode(png).startswith(b"\x89PNG\r\n\x1a\n")


def test_section_counts_only_outcomes_whose_horizon_ended_by_the_date():
    rows = randomized_rows()
    section = build_effects(rows, dt.date(2026, 5, 31), ["ordinary", "vip"])
    assert section.figures == {"note": NO_OUTCOMES}, "every horizon ends 2026-06-01"


def test_thin_data_gets_no_curve_and_no_tier_plot():
    rows = outcome_rows([("upgrade", "offered", False, 3, 8)])
    section = build_effects(rows, dt.date(2026, 7, 1), ["ordinary", "vip"])
    assert section.images == {}, "no holdout rows: nothing to plot"
    assert section.figures["curves"] == {}
    assert section.figures["curve_notes"], "the report says why there is no curve"


def test_a_score_absent_for_an_action_is_skipped_without_a_note():
    rows = randomized_rows().assign(uplift=np.nan)
    figures = outcome_effects(rows)
    assert set(figures["curves"]["savings"]) == {"probability"}
    assert figures["curve_notes"] == [], "no uplift model yet is not thin data"


def test_the_stored_uplift_draws_a_curve_of_the_rows_that_have_one(tmp_path):
    # Given 400 service rows with their decision's uplift and 100 batch rows without, in a
    # real store
    service = randomized_rows().assign(uplift=lambda f: f["probability"])
    batch = randomized_rows(100).assign(
        decision_id=lambda f: "batch:" + f["decision_id"], source="batch"
    )
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    log = DecisionLog(url)
    log.write_outcomes(pd.concat([service, batch]).drop(columns=["computed_at"]), now=AT)
    log.close()
    # When the curves are drawn from what the store reads back
    curves = outcome_effects(read_outcomes(url))["curves"]["savings"]
    # Then the curve by uplift counts the service rows only, the one by propensity all
    by_uplift, by_probability = curves["uplift"], curves["probability"]
    assert by_uplift["offered"] + by_uplift["holdout"] == 400, "rows without an uplift left out"
    assert by_probability["offered"] + by_probability["holdout"] == 500
    assert by_uplift["qini_coefficient"] > 0.1, "the uplift follows the true effect's driver"
