"""The ``tierwise`` command line: parse, build settings, call a library function, print a result."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from features.settings import Settings

app = typer.Typer(
    help="Tierwise: value tiers, churn, upgrade and cross-sell models, next best actions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DataOption = Annotated[str, typer.Option("--data", help="Dataset directory or SQLAlchemy URL.")]


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _fail(message: str, code: int = 1) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(code)


@app.command()
def validate(data: DataOption) -> None:
    """Check a dataset against the data contract; exit 1 if any rule breaks."""
    from features.contract import validate_dataset

    try:
        report = validate_dataset(data)
    except FileNotFoundError as err:
        _fail(str(err))
    typer.echo(report.render())
    if not report.ok:
        raise typer.Exit(1)


@app.command("demo-data")
def demo_data(
    out: Annotated[Path, typer.Option(help="Directory to write the tables into.")],
    customers: Annotated[int, typer.Option(min=10, help="Number of customers.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same bytes.")] = 0,
) -> None:
    """Write a synthetic retail-bank customer base in the data contract."""
    from features.demo import generate_demo_data

    generate_demo_data(out, customers=customers, seed=seed)
    typer.echo(f"demo data: {customers:,} customers written to {out}")


def settings() -> Settings:
    """The run-time settings from the environment (``TIERWISE_*``, ``MLFLOW_TRACKING_URI``)."""
    return Settings()
