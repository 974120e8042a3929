"""LightGBM without its scikit-learn wrappers, in the service's workers: imported first.

``lightgbm`` imports scikit-learn at import time (``lightgbm.compat``), and scikit-learn
imports ``scipy.stats``, only for LightGBM's scikit-learn estimators, which a worker never
uses (it predicts with ``lightgbm.Booster``). That import is about a second of every
worker's start on these machines, the largest part of what a replaced worker takes to be
back (docs/design.md, "Workers"). So in a process ``serving.server`` starts as a worker
(``LEAN_WORKER`` in its environment), and only if neither is imported yet, LightGBM is
imported with scikit-learn hidden; elsewhere (training, the batch, tests) this does nothing.
"""

from __future__ import annotations

import os
import sys

LEAN_WORKER = "TIERWISE_LEAN_WORKER"

if os.environ.get(LEAN_WORKER) == "1" and not {"lightgbm", "sklearn"} & set(sys.modules):
    sys.modules["sklearn"] = None  # type: ignore[assignment]  # import sklearn: ImportError
    try:
        import lightgbm  # noqa: F401
    finally:
        del sys.modules["sklearn"]
