"""The ``tierwise`` command line: parse, build settings, call a library function, print a result."""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from features.urls import safe_url
from tierwise.settings import Settings

if TYPE_CHECKING:
    from features.contract import Dataset
    from models.scoring import ModelSet
    from serving.store import StoreInfo

app = typer.Typer(
    help="Tierwise: value tiers, churn, upgrade and cross-sell models, next best actions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DataOption = Annotated[str, typer.Option("--data", help="Dataset directory or SQLAlchemy URL.")]
AsOfOption = Annotated[
    list[str], typer.Option("--as-of", help="As-of date (YYYY-MM-DD); repeatable.")
]
HorizonOption = Annotated[
    int | None, typer.Option("--horizon-days", min=1, help="Overrides tierwise.yaml.")
]
ChurnOption = Annotated[str | None, typer.Option("--churn-definition", help="closed or inactive.")]
SettingsOption = Annotated[
    Path | None,
    typer.Option(
        "--settings",
        help="Dataset settings YAML for any source, a SQL URL too; replaces the directory's "
        "tierwise.yaml (default: TIERWISE_DATASET_SETTINGS).",
    ),
]
TiersOption = Annotated[
    str | None,
    typer.Option(
        "--value-tiers",
        help="The value pyramid: pyramid (50/30/15/5% of customers) or abc (80/15/5% of "
        "value); overrides the settings, where custom names and shares can be given.",
    ),
]
EngineOption = Annotated[
    str,
    typer.Option(
        "--engine",
        help="duckdb (this machine) or spark (the cluster of the usual Spark settings; "
        "local[*] by default; needs `pip install .[spark]`).",
    ),
]


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
def validate(
    data: DataOption, settings_file: SettingsOption = None, value_tiers: TiersOption = None
) -> None:
    """Check a dataset against the data contract; exit 1 if any rule breaks. Lists the
    customer columns that will not be features, and why."""
    from features.contract import validate_dataset
    from features.spec import feature_spec

    config = settings()
    try:
        report = validate_dataset(
            data, {"value_tiers": value_tiers}, _settings_file(settings_file, config)
        )
    except FileNotFoundError as err:
        _fail(str(err))
    typer.echo(report.render())
    if not report.ok:
        raise typer.Exit(1)
    ds = open_data(data, config, settings_file, value_tiers=value_tiers)
    left_out = feature_spec(ds).dropped_profile
    for column, why in left_out.items():
        typer.echo(f"not a feature: customers.{column} ({why})")


@app.command("demo-data")
def demo_data(
    out: Annotated[Path, typer.Option(help="Directory to write the tables into.")],
    customers: Annotated[int, typer.Option(min=10, help="Number of customers.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same bytes.")] = 0,
    flavour: Annotated[
        str, typer.Option(help="bank (a retail bank) or saas (a subscription software base).")
    ] = "bank",
) -> None:
    """Write a synthetic customer base in the data contract: a retail bank or a SaaS business."""
    if flavour == "bank":
        from features.demo import generate_demo_data as generate
    elif flavour == "saas":
        from features.demo_saas import generate_saas_data as generate
    else:
        _fail(f"--flavour must be bank or saas, got {flavour!r}")
    generate(out, customers=customers, seed=seed)
    typer.echo(f"demo data ({flavour}): {customers:,} customers written to {out}")


def settings() -> Settings:
    """The run-time settings from the environment (``TIERWISE_*``, ``MLFLOW_TRACKING_URI``)."""
    return Settings()


def _champions(config: Settings):
    """The registry's champion models; none registered ends the command with what to run."""
    from models.scoring import load_champions

    try:
        return load_champions(config)
    except LookupError as err:
        _fail(str(err))


def _settings_file(given: Path | None, config: Settings) -> Path | None:
    return given or config.dataset_settings


def open_data(
    data: str,
    config: Settings,
    settings_file: Path | None = None,
    models: ModelSet | None = None,
    **overrides,
):
    """Load and validate a dataset; a broken contract ends the command with the report.

    Settings come from ``--settings``, else ``TIERWISE_DATASET_SETTINGS``, else the
    directory's ``tierwise.yaml``; where none of them applies and ``models`` are given,
    the settings the models were trained under (less ``data_end``, which is the newer
    data's own), so that scoring reads a base as training did.
    """
    from features.contract import ContractError, connect, load_dataset, settings_path

    settings_file = _settings_file(settings_file, config)
    if models is not None and settings_path(data, settings_file) is None:
        trained = next((m.settings for m in models.models.values() if m.settings), {})
        overrides = {**{k: v for k, v in trained.items() if k != "data_end"}, **overrides}
    con = connect(config.threads, config.memory_limit, config.scratch_dir())
    try:
        return load_dataset(data, overrides, con, settings_file)
    except ContractError as err:
        _fail(str(err))
    except FileNotFoundError as err:
        _fail(str(err))


@app.command()
def features(
    data: DataOption,
    as_of: AsOfOption,
    out: Annotated[Path, typer.Option(help="Parquet file (a folder of parts on Spark).")],
    engine: EngineOption = "duckdb",
    settings_file: SettingsOption = None,
    value_tiers: TiersOption = None,
) -> None:
    """Compute point-in-time features for the population at each as-of date."""
    from features.pipeline import write_features

    if engine not in ("duckdb", "spark"):
        _fail(f"--engine must be duckdb or spark, got {engine!r}")
    ds = open_data(data, settings(), settings_file, value_tiers=value_tiers)
    try:
        if engine == "spark":
            from features.spark import write_spark_features

            rows = write_spark_features(ds, as_of, out)
        else:
            rows = write_features(ds, as_of, out)
    except (ValueError, ImportError) as err:
        _fail(str(err))
    typer.echo(f"features: {rows:,} rows written to {out}")


@app.command()
def train(
    data: DataOption,
    as_of: Annotated[
        list[str] | None, typer.Option("--as-of", help="Snapshot date; repeatable.")
    ] = None,
    horizon_days: HorizonOption = None,
    churn_definition: ChurnOption = None,
    snapshots: Annotated[int, typer.Option(min=1, help="Monthly snapshots when no --as-of.")] = 12,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    settings_file: SettingsOption = None,
    value_tiers: TiersOption = None,
) -> None:
    """Train churn, upgrade and cross-sell models; register them in MLflow as challengers."""
    from features.spine import as_of_dates
    from training.train import TrainingConfig, train_models

    config = settings()
    ds = open_data(
        data,
        config,
        settings_file,
        horizon_days=horizon_days,
        churn_definition=churn_definition,
        value_tiers=value_tiers,
    )
    try:
        result = train_models(
            ds,
            config,
            as_of_dates(as_of) if as_of else None,
            TrainingConfig(snapshots=snapshots, seed=seed),
        )
    except ValueError as err:
        _fail(str(err))
    typer.echo(f"MLflow run {result.run_id}, as-of {result.as_of[0]} .. {result.as_of[-1]}")
    for t in result.targets:
        if t.status == "trained":
            typer.echo(
                f"  {t.target:<28} v{t.version:<4} ROC AUC {t.metrics['roc_auc']:.3f}"
                f" (baseline {t.metrics['baseline_roc_auc']:.3f})  ECE {t.metrics['ece']:.4f}"
                f"  {t.winner}, {t.calibration}"
            )
        else:
            typer.echo(f"  {t.target:<28} no model: {t.reason}")
    if not any(t.status == "trained" for t in result.targets):
        _fail("no model was trained: every target lacks the positives it needs (see above)")
    typer.echo("Registered as challengers: run `tierwise promote` to put them through the gate.")
    uri = safe_url(config.tracking_uri())  # a server's password stays out of the terminal
    typer.echo(f"Open the MLflow UI: mlflow ui --backend-store-uri {uri}")


@app.command()
def promote(
    target: Annotated[str | None, typer.Option(help="Target (e.g. churn); default all.")] = None,
    force: Annotated[bool, typer.Option(help="Promote even if the challenger is worse.")] = False,
) -> None:
    """Put each model's challenger through the gate: it becomes champion only if it beats the
    logistic baseline and the ROC AUC floor on its held-out rows, and is not worse than the
    current champion beyond the tolerances. First versions go through the same gate."""
    from training.registry import promote as promote_models

    try:
        decisions = promote_models(settings(), target, force)
    except LookupError as err:
        _fail(str(err))
    for d in decisions:
        typer.echo(f"{'PROMOTED' if d.promoted else 'kept    '}  {d.message}")


@app.command("train-uplift")
def train_uplift(
    data: DataOption,
    as_of: Annotated[
        str, typer.Option("--as-of", help="Decisions whose horizon ended by this date count.")
    ],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    settings_file: SettingsOption = None,
    value_tiers: TiersOption = None,
) -> None:
    """Train an uplift model per action from the holdout experiment's outcomes (`tierwise
    outcomes` first); each becomes champion only if its Qini on the latest decisions, and
    its 95% lower bound, are above 0."""
    from features.spine import as_of_dates
    from serving.decisions import read_outcomes
    from training.uplift import UpliftConfig
    from training.uplift import train_uplift as train_models

    config = settings()
    try:
        day = as_of_dates([as_of])[0]
    except ValueError as err:
        _fail(str(err))
    outcomes = read_outcomes(config.decisions_url())
    if outcomes is None or outcomes.empty:
        _fail("no decision outcomes are stored: run `tierwise outcomes` first")
    ds = open_data(data, config, settings_file, value_tiers=value_tiers)
    run = train_models(ds, outcomes, config, day, UpliftConfig(seed=seed))
    typer.echo(f"MLflow run {run.run_id}: uplift as of {day}")
    if run.rows_without_features:
        typer.echo(f"  {run.rows_without_features:,} outcome rows have no customer features")
    for result in run.actions:
        typer.echo(f"{'PROMOTED' if result.promoted else 'kept    '}  {result.message}")
    if not run.actions:
        typer.echo("  no action has randomized decisions with outcomes yet")


@app.command()
def score(
    data: DataOption,
    as_of: Annotated[str, typer.Option("--as-of", help="Score as of this date (YYYY-MM-DD).")],
    out: Annotated[Path, typer.Option(help="Output: a link to the run's folder of parquet parts.")],
    top: Annotated[int, typer.Option(min=1, max=10, help="Suggestions per customer.")] = 3,
    reasons: Annotated[
        bool, typer.Option("--reasons", help="Add the top reasons of churn and each suggestion.")
    ] = False,
    channel: Annotated[
        str, typer.Option(help="Channel the suggestions are for (policy channel weight).")
    ] = "batch",
    chunk_rows: Annotated[
        int, typer.Option(min=1, help="Customers per chunk (one parquet part each).")
    ] = 100_000,
    engine: EngineOption = "duckdb",
    no_store: Annotated[
        bool, typer.Option("--no-store", help="Do not refresh the online store.")
    ] = False,
    settings_file: SettingsOption = None,
    value_tiers: TiersOption = None,
) -> None:
    """Score every customer at a date: probabilities, tiers and the policy's top suggestions,
    as partitioned parquet switched in atomically; refresh the online store from the same run
    (unless --no-store). An interrupted run started again continues where it stopped."""
    from batch.run import BatchError, BatchOptions, read_declines, run_batch
    from features.spine import as_of_dates
    from serving.policy import PolicyError, read_policy
    from serving.store import OnlineStore

    config = settings()
    try:
        day = as_of_dates([as_of])[0]
        options = BatchOptions(top, reasons, channel, chunk_rows, engine)  # type: ignore[arg-type]
        policy = read_policy(config.policy_file)
    except (ValueError, PolicyError) as err:
        _fail(str(err))
    models = _champions(config)
    ds = open_data(data, config, settings_file, models, value_tiers=value_tiers)
    declines = read_declines(config.decisions_url(), day, policy)
    store = None if no_store else OnlineStore(config.online_url())
    # A bar on a terminal only: CI logs get the summary line, not a line per update.
    bar = typer.progressbar(length=1, label="scoring", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.length = total
        bar.update(done - bar.pos)

    try:
        with bar if sys.stderr.isatty() else contextlib.nullcontext():
            result = run_batch(
                ds,
                day,
                models,
                policy,
                out,
                options,
                store=store,
                declines=declines,
                progress=progress if sys.stderr.isatty() else None,
            )
    except (BatchError, ImportError) as err:
        _fail(str(err))
    resumed = f" ({result.resumed_parts} resumed)" if result.resumed_parts else ""
    typer.echo(
        f"scores: {result.rows:,} customers as of {day} in {result.parts} part(s){resumed}: "
        f"{out} -> {result.out.name} ({result.seconds['total']:.1f} s)"
    )
    if result.store is not None:
        _echo_store(result.store)


@app.command()
def materialize(
    data: DataOption,
    as_of: Annotated[str, typer.Option("--as-of", help="Latest data date to serve (YYYY-MM-DD).")],
    settings_file: SettingsOption = None,
    value_tiers: TiersOption = None,
) -> None:
    """Write every customer's latest features, tier and history into the online store."""
    config = settings()
    models = _champions(config)
    ds = open_data(data, config, settings_file, models, value_tiers=value_tiers)
    _refresh_store(ds, as_of, models, config)


def _refresh_store(ds: Dataset, as_of: str, models: ModelSet, config: Settings) -> None:
    """Build the online store's rows as of a date and swap them in; print what was written."""
    from batch.online import materialize
    from serving.policy import read_policy
    from serving.store import OnlineStore

    try:
        days = read_policy(config.policy_file).winback_days
        info = materialize(ds, as_of, models, OnlineStore(config.online_url()), days)
    except ValueError as err:
        _fail(str(err))
    _echo_store(info)


def _echo_store(info: StoreInfo) -> None:
    typer.echo(
        f"online store: {info.rows:,} customers as of {info.as_of} for models "
        + ", ".join(f"{n} v{v}" for n, v in info.model_versions.items())
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 3000,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes (each loads the models).")
    ] = 2,
) -> None:
    """Serve next best actions over HTTP (BentoML): checks models, store and keys first."""
    import json
    import os
    import sys

    import serving
    from serving.startup import StartupError, check_startup

    config = settings()
    try:
        info = check_startup(config)
    except StartupError as err:
        _fail(f"cannot serve: {err}")
    env = dict(os.environ)
    # The workers run in the project folder: pass paths as absolute ones.
    env["TIERWISE_HOME"] = str(config.home.resolve())
    if config.policy_file is not None:
        env["TIERWISE_POLICY_FILE"] = str(config.policy_file.resolve())
    env.setdefault("BENTOML_DO_NOT_TRACK", "True")  # no usage reports leave the machine
    overrides = json.loads(env.get("BENTOML_CONFIG_OVERRIDES") or "{}")
    overrides.setdefault("services", {}).setdefault("tierwise", {})["workers"] = workers
    env["BENTOML_CONFIG_OVERRIDES"] = json.dumps(overrides)
    root = Path(serving.__file__).resolve().parent.parent
    shown = f"[{host}]" if ":" in host else host
    typer.echo(
        f"Tierwise: online store as of {info.as_of} ({info.rows:,} customers), "
        f"{workers} worker(s); serving on http://{shown}:{port} "
        f"(OpenAPI: http://{shown}:{port}/docs.json)"
    )
    sys.stdout.flush()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "serving.server", host, str(port)]
    os.execve(sys.executable, command, env)  # BentoML takes over this process and its signals


@app.command()
def monitor(
    data: DataOption,
    as_of: Annotated[str, typer.Option("--as-of", help="Monitor as of this date (YYYY-MM-DD).")],
    out: Annotated[
        Path | None,
        typer.Option(help="HTML report; the JSON goes beside it. Default: TIERWISE_HOME/reports."),
    ] = None,
    psi: Annotated[
        float | None, typer.Option(min=0, help="Feature PSI that alerts (default 0.2).")
    ] = None,
    score_psi: Annotated[
        float | None, typer.Option(min=0, help="Score PSI that alerts (default 0.2).")
    ] = None,
    auc_drop: Annotated[
        float | None,
        typer.Option(min=0, help="Realized ROC AUC drop below training that alerts (0.05)."),
    ] = None,
    ece_rise: Annotated[
        float | None,
        typer.Option(min=0, help="Calibration error rise above training that alerts (0.05)."),
    ] = None,
    settings_file: SettingsOption = None,
    value_tiers: TiersOption = None,
) -> None:
    """Drift, realized performance, value pyramid and agent feedback as one HTML report
    (JSON beside it); exit 1 when any alert fires, so a scheduler can page someone."""
    from monitoring.alerts import Thresholds
    from monitoring.run import run_monitor

    config = settings()
    ds = open_data(data, config, settings_file, _champions(config), value_tiers=value_tiers)
    given = {"psi": psi, "score_psi": score_psi, "auc_drop": auc_drop, "ece_rise": ece_rise}
    thresholds = Thresholds(**{k: v for k, v in given.items() if v is not None})
    report = out or config.home / "reports" / f"monitor-{as_of}.html"
    try:
        result = run_monitor(ds, as_of, config, report, thresholds)
    except (LookupError, ValueError) as err:
        _fail(str(err))
    typer.echo(f"monitoring as of {result.as_of}: {result.report} (figures {result.figures_file})")
    for alert in result.alerts:
        typer.echo(f"ALERT {alert.message}", err=True)
    if result.alerts:
        raise typer.Exit(1)
    typer.echo("no alert")


@app.command()
def outcomes(
    data: DataOption,
    as_of: Annotated[str, typer.Option("--as-of", help="Outcomes due by this date (YYYY-MM-DD).")],
    batch: Annotated[
        list[Path] | None,
        typer.Option("--batch", help="A nightly output (tierwise score --out); repeatable."),
    ] = None,
    settings_file: SettingsOption = None,
) -> None:
    """Write the realized outcome of every logged decision whose horizon has passed by the
    date (service and batch; offered and held out) to the decision store; reruns change
    nothing, decisions still within their horizon wait."""
    import datetime as dt
    import json

    from batch.run import decision_time, read_output
    from batch.runs import MANIFEST
    from monitoring.outcomes import batch_actions, record_outcomes

    config = settings()
    try:
        day = dt.date.fromisoformat(as_of)
    except ValueError:
        _fail(f"--as-of must be a date (YYYY-MM-DD), got {as_of!r}")
    ds = open_data(data, config, settings_file)
    frames = []
    for out in batch or []:
        folder = out.resolve()  # once: a run switched in meanwhile cannot mix with this one
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
            output = read_output(folder)
        except FileNotFoundError as err:
            _fail(f"--batch {out}: not a batch output ({err.filename} is missing)")
        run_day = dt.date.fromisoformat(manifest["as_of"])
        start = dt.datetime.combine(run_day, dt.time(), dt.UTC)  # decided as its day ends
        decided_at = decision_time(run_day, now=start)
        frames.append(batch_actions(output, decided_at, manifest["options"]["channel"]))
    run = record_outcomes(ds, config.decisions_url(), day, frames)
    typer.echo(
        f"outcomes as of {day}: {run.service_decisions:,} service and {run.batch_decisions:,} "
        f"batch decisions read; {run.written:,} outcome rows written ({run.rows:,} due); "
        f"{run.pending:,} decisions pending"
    )
    if run.unknown:
        typer.echo(f"{run.unknown:,} decisions name a customer the data does not have", err=True)


@app.command("evaluate-policy")
def evaluate_policy(
    policy: Annotated[Path, typer.Option("--policy", help="The candidate policy's YAML file.")],
    current: Annotated[
        Path | None,
        typer.Option(
            "--current",
            help="The policy the decisions were made with, for the value of actions it did "
            "not show (default: TIERWISE_POLICY_FILE, else the defaults).",
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="First day of decisions (YYYY-MM-DD, UTC).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Last day of decisions (YYYY-MM-DD, UTC).")
    ] = None,
    seed: Annotated[int, typer.Option(help="The bootstrap's seed.")] = 0,
) -> None:
    """Estimate a candidate policy's acceptances and accepted value per decision on the
    logged decisions (IPS, self-normalised IPS and doubly robust, 95% bootstrap intervals),
    beside the current policy's observed figures, before it reaches an agent."""
    import datetime as dt

    from monitoring.evaluation import evaluate_log, evaluation_table
    from serving.policy import PolicyError, read_policy

    config = settings()
    days = {}
    for name, given in (("since", since), ("until", until)):
        try:
            days[name] = None if given is None else dt.date.fromisoformat(given)
        except ValueError:
            _fail(f"--{name} must be a date (YYYY-MM-DD), got {given!r}")
    try:
        candidate = read_policy(policy)
        logging_policy = read_policy(current or config.policy_file)
    except PolicyError as err:
        _fail(str(err))
    try:
        result = evaluate_log(config.decisions_url(), candidate, logging_policy, seed=seed, **days)
    except LookupError as err:
        _fail(str(err))
    counts = result["decisions"]
    typer.echo(
        f"{counts['used']:,} of {counts['read']:,} decisions evaluated; effective sample size "
        f"{result['effective_sample_size']:,.0f}; {result['method']['interval']}"
    )
    typer.echo(evaluation_table(result))
    for warning in result["warnings"]:
        typer.echo(f"WARNING {warning}", err=True)
