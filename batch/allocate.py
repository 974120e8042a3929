"""The batch's allocation of offers across the whole base under the policy's caps.

After scoring, each customer has the policy's candidates in its order (``serving.policy``,
rules 1-10). ``allocate`` picks at most ``top`` of them per customer so that the sum of
their expected values is the largest the caps allow (``serving.capacity``: offers and
budgets per action, offers of the run's channel). An expected value already is what an offer
adds where the action has an uplift model (``docs/policy.md``, "Uplift").

The solver is ``scipy.optimize.milp`` (HiGHS; scipy is a direct dependency already, so no
new package): a 0/1 variable per candidate, one row per customer (at most ``top``) and one
per cap. With caps on counts only, the problem is a bipartite b-matching whose LP is
integral, so HiGHS's first relaxation already is the optimum; a budget with costs makes it
a knapsack, which the branch and bound closes to the default relative gap of 1e-4. HiGHS
is deterministic for the same input (no time limit is set, which would make the answer
depend on the machine), and the candidates are put in a fixed order first. Each
candidate's worth is its expected value (0 for a negative one) plus a tiny 1e-6, so an
offer no cap stops is kept even at a worth of 0, as the policy listed it.

Measured by ``bench/allocate.py`` (100,000 customers x 6 actions): see
``bench/results/allocate.json``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from batch.runs import BatchError
from serving.capacity import CapacityConfig, caps_of

COLUMNS = ("customer_id", "action", "expected_value", "order")
"""What ``allocate`` reads of each candidate: ``order`` is its rank in the policy's list."""
TIE = 1e-6  # the worth of showing an offer at all


def allocate(
    candidates: pd.DataFrame, capacity: CapacityConfig, channel: str, top: int
) -> np.ndarray:
    """Which candidates the run offers: a boolean array in the frame's row order.

    Without a cap for these candidates it is the policy's own top ``top`` per customer.

    Raises:
        BatchError: a column of ``COLUMNS`` is missing, or the solver found no optimum.
    """
    missing = [c for c in COLUMNS if c not in candidates.columns]
    if missing:
        raise BatchError(f"allocation candidates lack the columns {missing}")
    n = len(candidates)
    first = candidates["order"].to_numpy() <= top
    if n == 0:
        return first
    actions = candidates["action"].astype(str).to_numpy()
    caps = {a: caps_of(a, channel, capacity) for a in np.unique(actions)}
    if not any(caps.values()):
        return first
    rows, cols, data, upper = _cap_rows(actions, caps)
    customers, per_customer = np.unique(candidates["customer_id"].astype(str), return_inverse=True)
    offset = len(upper)
    rows = np.concatenate([rows, offset + per_customer])
    cols = np.concatenate([cols, np.arange(n)])
    data = np.concatenate([data, np.ones(n)])
    upper = np.concatenate([upper, np.full(len(customers), float(top))])
    matrix = sparse.csr_array((data, (rows, cols)), shape=(len(upper), n))
    worth = np.maximum(candidates["expected_value"].to_numpy(dtype=float), 0.0) + TIE
    result = milp(
        -worth,
        constraints=LinearConstraint(matrix, -np.inf, upper),
        integrality=np.ones(n),
        bounds=Bounds(0, 1),
    )
    if not result.success:
        raise BatchError(f"the allocation found no optimum: {result.message}")
    return result.x > 0.5


def _cap_rows(
    actions: np.ndarray, caps: dict[str, tuple]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The cap constraints as coordinates: (row, candidate, amount) and each row's limit."""
    keys: dict[str, int] = {}
    limits: list[float] = []
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    data: list[np.ndarray] = []
    for action in sorted(caps):
        where = np.flatnonzero(actions == action)
        for cap in caps[action]:
            if cap.key not in keys:
                keys[cap.key] = len(limits)
                limits.append(float(cap.limit))
            rows.append(np.full(len(where), keys[cap.key]))
            cols.append(where)
            data.append(np.full(len(where), float(cap.amount)))
    if not rows:
        empty = np.array([], dtype=np.int64)
        return empty, empty, np.array([]), np.array([])
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(data), np.array(limits)
