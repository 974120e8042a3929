"""Evaluation plots for a target, written as PNG files (logged to MLflow as artifacts)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never a window

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from models.metrics import calibration_points


def plot_target(
    folder: Path,
    target: str,
    y: np.ndarray,
    raw: np.ndarray,
    calibrated: np.ndarray,
    importance: dict[str, float],
    baseline: np.ndarray | None = None,
) -> list[Path]:
    """ROC, precision-recall, calibration, cumulative gain and feature importance plots."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.5))
    ax = axes[0]
    fpr, tpr, _ = roc_curve(y, calibrated)
    ax.plot(fpr, tpr, label="Tierwise")
    if baseline is not None:
        fpr_b, tpr_b, _ = roc_curve(y, baseline)
        ax.plot(fpr_b, tpr_b, label="baseline (logistic, RFM)", linestyle="--")
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.5)
    ax.set(title=f"{target}: ROC", xlabel="false positive rate", ylabel="true positive rate")
    ax.legend(loc="lower right")
    ax = axes[1]
    precision, recall, _ = precision_recall_curve(y, calibrated)
    ax.plot(recall, precision)
    ax.axhline(np.mean(y), color="grey", linewidth=0.5)
    ax.set(title=f"{target}: precision-recall", xlabel="recall", ylabel="precision")
    ax = axes[2]
    for label, p in (("raw", raw), ("calibrated", calibrated)):
        observed, predicted = calibration_points(y, p)
        ax.plot(predicted, observed, marker="o", label=label)
    top = max(float(np.max(calibrated)), 1e-3)
    ax.plot([0, top], [0, top], color="grey", linewidth=0.5)
    ax.set(title=f"{target}: calibration", xlabel="mean predicted", ylabel="observed rate")
    ax.legend()
    ax = axes[3]
    order = np.argsort(-calibrated, kind="stable")
    gain = np.concatenate([[0], np.cumsum(np.asarray(y)[order]) / max(np.sum(y), 1)])
    ax.plot(np.linspace(0, 1, len(gain)), gain, label="model")
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.5, label="random")
    ax.set(
        title=f"{target}: cumulative gain", xlabel="share contacted", ylabel="share of positives"
    )
    ax.legend(loc="lower right")
    fig.tight_layout()
    paths.append(_save(fig, folder / f"{target}_evaluation.png"))

    top_features = sorted(importance.items(), key=lambda kv: kv[1], reverse=True)[:20][::-1]
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.barh([k for k, _ in top_features], [v for _, v in top_features])
    ax.set(title=f"{target}: feature importance (gain)")
    fig.tight_layout()
    paths.append(_save(fig, folder / f"{target}_importance.png"))
    return paths


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
