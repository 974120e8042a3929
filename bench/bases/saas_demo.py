"""Tierwise's synthetic SaaS base (``features.demo_saas``), at a modest size.

A second demo flavour: subscriptions, plan tiers and product-usage events. Evaluated out
of time. The generator may not exist yet in this tree: the base is then unavailable and
the suite runs without it.
"""

from __future__ import annotations

from pathlib import Path

from . import Base, Unavailable, out_of_time_dates

CUSTOMERS = 10_000  # at 20k Tierwise's training, most of the suite's time, roughly doubles
SNAPSHOTS = 6


def write(out: Path, seed: int = 0) -> Base:
    """Generate the demo SaaS base into ``out``.

    Raises:
        Unavailable: ``features.demo_saas`` is not there yet.
    """
    try:
        from features.demo_saas import generate_saas_data
    except ImportError as err:
        raise Unavailable(f"features.demo_saas not importable ({err})") from err
    path = Path(generate_saas_data(out, customers=CUSTOMERS, seed=seed))
    evaluation, train = out_of_time_dates(path, SNAPSHOTS)
    return Base(
        name="saas_demo",
        path=path,
        source=f"features.demo_saas.generate_saas_data ({CUSTOMERS:,} customers, synthetic)",
        protocol="out_of_time",
        eval_as_of=evaluation,
        train_as_of=train,
        kind="SaaS subscriptions (synthetic)",
        notes="Tierwise's own demo: not public data, a sanity check beside the public bases",
    )
