"""Monitoring plots: figures become base64 PNG the report can embed."""

from __future__ import annotations

import base64
import datetime as dt

import pandas as pd

from monitoring.figures import tier_pyramid, value_curve
from monitoring.plots import plot_pyramid, png


def test_pyramid_plot_is_a_base64_png():
    # Given a small pyramid and its value curve
    tiers = pd.DataFrame({"tier": ["low", "low", "high"], "value": [10.0, 30.0, 160.0]})
    pyramid, curve = tier_pyramid(tiers, ["low", "high"]), value_curve(tiers["value"])
    # When it is plotted and encoded
    text = png(plot_pyramid(pyramid, curve, dt.date(2026, 3, 1)))
    # Then the text decodes to a PNG
    assert base64.b64decode(text).startswith(b"\x89PNG\r\n\x1a\n"), "a PNG, base64-encoded"
