"""Monitoring plots: matplotlib figures of the report's sections, as base64 PNG.

Figures are made with matplotlib's object API (no pyplot): no global state, no backend.
Each ``plot_*`` function takes the figures of one section and returns a ``Figure``;
``png`` turns it into the base64 text the report embeds as a data URI.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from features.values import number_or
from models.profile import bin_labels, compare_shares, psi
from monitoring.figures import NO_RESPONSE, RESPONSE_COLUMNS

TRAINING_COLOUR, NOW_COLOUR = "#7f8c8d", "#c0392b"


def png(fig: Figure) -> str:
    """The figure as base64 PNG text for an ``<img src="data:image/png;base64,...">``."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=72, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _grid(
    count: int, columns: int = 3, size: tuple[float, float] = (4.6, 3.2)
) -> tuple[Figure, np.ndarray]:
    """A figure with ``count`` panels, ``columns`` a row; unused panels hidden."""
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    fig = Figure(figsize=(size[0] * columns, size[1] * rows))
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes[count:]:
        ax.set_visible(False)
    return fig, axes


def plot_feature_drift(plotted: list[tuple[dict, pd.Series, str]], day: dt.date) -> Figure:
    """Training and current bin shares of the worst-drifting features (profile, values, name)."""
    fig, axes = _grid(len(plotted))
    for ax, (profile, values, name) in zip(axes, plotted, strict=False):
        expected, actual = compare_shares(profile, values)
        labels = bin_labels(profile)
        labels += [k for k in ("__other__", "__missing__") if len(labels) < len(expected)]
        x = np.arange(len(expected))
        ax.bar(x - 0.2, expected, width=0.4, color=TRAINING_COLOUR, label="training")
        ax.bar(x + 0.2, actual, width=0.4, color=NOW_COLOUR, label=f"as of {day}")
        ax.set_xticks(x, labels[: len(x)], rotation=60, ha="right", fontsize=7)
        ax.set_title(f"{name} (PSI {psi(profile, values):.2f})", fontsize=9)
        ax.set_ylabel("share")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_score_drift(
    pairs: dict[str, tuple[np.ndarray, np.ndarray, float]], day: dt.date
) -> Figure:
    """Score histograms at training and now, per target (training, now, PSI)."""
    fig, axes = _grid(len(pairs))
    for ax, (target, (training, now, value)) in zip(axes, pairs.items(), strict=False):
        top = max(float(np.quantile(np.concatenate([training, now]), 0.995)), 1e-6)
        bins = np.linspace(0, top, 31)
        ax.hist(
            training,
            bins=bins,
            density=True,
            alpha=0.6,
            color=TRAINING_COLOUR,
            label="training (held out)",
        )
        ax.hist(now, bins=bins, density=True, alpha=0.6, color=NOW_COLOUR, label=f"as of {day}")
        ax.set_title(f"{target} (PSI {value:.2f})", fontsize=9)
        ax.set_xlabel("calibrated probability")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_calibration(curves: dict[str, tuple[dict, dict | None]]) -> Figure:
    """Calibration curves per target: the latest backtest date and the held-out rows."""
    fig, axes = _grid(len(curves))
    for ax, (target, (latest, training)) in zip(axes, curves.items(), strict=False):
        top = 1e-3
        for label, figures, colour in (
            ("training (held out)", training, TRAINING_COLOUR),
            (f"as of {latest['as_of']}", latest, NOW_COLOUR),
        ):
            points = (figures or {}).get("calibration")
            if points:
                ax.plot(
                    points["predicted"], points["observed"], marker="o", color=colour, label=label
                )
                top = max(top, *points["predicted"], *points["observed"])
        ax.plot([0, top], [0, top], color="black", linewidth=0.5)
        ax.set(title=f"{target}: calibration", xlabel="mean predicted", ylabel="observed rate")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_lift(curves: dict[str, tuple[dict, dict | None]]) -> Figure:
    """Lift by score decile per target: the latest backtest date and the held-out rows."""
    fig, axes = _grid(len(curves))
    for ax, (target, (latest, training)) in zip(axes, curves.items(), strict=False):
        for offset, label, figures, colour in (
            (-0.2, "training (held out)", training, TRAINING_COLOUR),
            (0.2, f"as of {latest['as_of']}", latest, NOW_COLOUR),
        ):
            lift = (figures or {}).get("lift_by_decile")
            if lift:
                ax.bar(
                    np.arange(1, len(lift) + 1) + offset, lift, width=0.4, color=colour, label=label
                )
        ax.axhline(1.0, color="black", linewidth=0.5)
        ax.set(
            title=f"{target}: lift by score decile",
            xlabel="decile (1 = highest scores)",
            ylabel="lift",
        )
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_pyramid(pyramid: pd.DataFrame, curve: pd.DataFrame, day: dt.date) -> Figure:
    """Customer and value shares by tier beside the 80/20 value curve."""
    fig = Figure(figsize=(11, 3.6))
    left, right = fig.subplots(1, 2)
    y = np.arange(len(pyramid))[::-1]
    left.barh(
        y + 0.2,
        pyramid["share_customers"],
        height=0.4,
        color=TRAINING_COLOUR,
        label="share of customers",
    )
    left.barh(y - 0.2, pyramid["share_value"], height=0.4, color=NOW_COLOUR, label="share of value")
    left.set_yticks(y, pyramid["tier"])
    left.set(title=f"Tiers as of {day}", xlabel="share")
    left.legend(fontsize=7)
    right.plot(curve["share_customers"], curve["share_value"], color=NOW_COLOUR)
    right.plot([0, 1], [0, 1], color="black", linewidth=0.5)
    top20 = float(np.interp(0.2, curve["share_customers"], curve["share_value"]))
    right.axvline(0.2, color=TRAINING_COLOUR, linestyle="--", linewidth=0.8)
    right.annotate(
        f"top 20%: {top20:.0%} of value", (0.2, top20), (0.3, max(top20 - 0.25, 0.05)), fontsize=8
    )
    right.set(
        title="Value concentration (80/20 curve)",
        xlabel="share of customers (by value, highest first)",
        ylabel="share of value",
    )
    fig.tight_layout()
    return fig


def plot_feedback(by_kind: pd.DataFrame, control: Mapping[str, Any]) -> Figure:
    """Responses by kind beside ranked and control rates with their intervals."""
    fig = Figure(figsize=(11, 3.4))
    left, right = fig.subplots(1, 2)
    bottom = np.zeros(len(by_kind))
    colours = {
        "accepted": "#27ae60",
        "declined": "#c0392b",
        "skipped": "#f39c12",
        "not_shown": "#bdc3c7",
        NO_RESPONSE: "#95a5a6",
    }
    for response in RESPONSE_COLUMNS:
        left.bar(
            by_kind["kind"],
            by_kind[response],
            bottom=bottom,
            color=colours[response],
            label=response,
        )
        bottom += by_kind[response].to_numpy(dtype=float)
    left.set(title="Responses by kind", ylabel="suggestions")
    left.legend(fontsize=7)
    names = ["ranked", "control"]
    for i, rate in enumerate(("acceptance", "conversion")):
        values = [control["groups"][n][rate] for n in names]
        low = [control["groups"][n][f"{rate}_low"] for n in names]
        high = [control["groups"][n][f"{rate}_high"] for n in names]
        x = np.arange(2) + (i - 0.5) * 0.4
        err = np.array(
            [
                [number_or(v, 0) - number_or(lo, 0) for v, lo in zip(values, low, strict=True)],
                [number_or(h, 0) - number_or(v, 0) for v, h in zip(values, high, strict=True)],
            ]
        )
        right.bar(
            x,
            [number_or(v, 0) for v in values],
            width=0.4,
            yerr=err,
            capsize=4,
            label=rate,
            color=["#2980b9", "#8e44ad"][i],
        )
    right.set_xticks(np.arange(2), names)
    right.set(title="Ranked vs control (95% Wilson intervals)", ylabel="rate")
    right.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_qini(curves: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> Figure:
    """Qini curves per action, one line per score, beside the random ordering's line.

    Args:
        curves: action -> score -> ``share``, ``qini``, ``random`` and ``qini_coefficient``
            (``monitoring.effects.score_curves``).
    """
    fig, axes = _grid(len(curves))
    for ax, (action, by_score) in zip(axes, curves.items(), strict=False):
        for i, (score, curve) in enumerate(by_score.items()):
            coefficient = number_or(curve["qini_coefficient"], math.nan)
            ax.plot(
                curve["share"],
                curve["qini"],
                color=[NOW_COLOUR, "#2980b9"][i % 2],
                label=f"by {score} (Qini {coefficient:.2f})",
            )
        ax.plot(
            curve["share"], curve["random"], color=TRAINING_COLOUR, linestyle="--", label="random"
        )
        ax.axhline(0, color="black", linewidth=0.5)
        ax.set(
            title=f"{action}: Qini curve",
            xlabel="share of decisions targeted (highest score first)",
            ylabel="incremental outcomes",
        )
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_effect_by_tier(rows: list[Mapping[str, Any]]) -> Figure:
    """The effect of offering (offered rate - holdout rate) by tier, per action, with 95% intervals.

    Args:
        rows: ``monitoring.effects.offer_effects`` rows by tier with a finite interval, in
            the order to show the tiers.
    """
    actions = list(dict.fromkeys(r["action"] for r in rows))
    fig, axes = _grid(len(actions))
    for ax, action in zip(axes, actions, strict=False):
        part = [r for r in rows if r["action"] == action]
        x = np.arange(len(part))
        effect = np.array([r["effect"] for r in part])
        err = np.array(
            [effect - [r["effect_low"] for r in part], [r["effect_high"] for r in part] - effect]
        )
        ax.errorbar(x, effect, yerr=err, fmt="o", color=NOW_COLOUR, capsize=4)
        ax.axhline(0, color="black", linewidth=0.5)
        ax.set_xlim(-0.5, len(part) - 0.5)
        ax.set_xticks(x, [r["tier"] for r in part], rotation=30, ha="right", fontsize=8)
        ax.set(title=f"{action}: effect by tier (95% Newcombe)", ylabel="offered - holdout rate")
        ax.title.set_fontsize(9)
    fig.tight_layout()
    return fig
