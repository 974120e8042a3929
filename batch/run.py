"""The nightly batch: score every customer, write what agents and campaigns use, feed the store.

One run, for one as-of date and the champion models:

1. **inputs**: the serving inputs of the population (``batch.inputs``: features,
   history, products held) are computed once, by DuckDB or Spark, into a staging folder;
2. **scoring**: chunk by chunk, every model's calibrated probability, the tier context and
   the policy's top suggestions (``serving.suggest.rank``, the code the service ranks
   with), optionally with reasons, each chunk written as one parquet part;
3. **store**: the online store is refreshed from the same staged inputs (one atomic swap);
4. **switch**: the finished run folder replaces the previous one behind the output path,
   a symbolic link, in one rename.

The staging folder is named after everything the output depends on (data fingerprint,
as-of date, model versions, policy, declines, options), so a run killed part-way and
started again with the same inputs continues where it stopped: finished parts are kept,
unfinished ones are written again. The same inputs give byte-identical parts.

Declines count as in the service: over the contact policy's window (``policy.decline_window``)
ending at the decision time, which for a run is when it reads the decision log
(``decision_time``: the file is what agents and campaigns use from then on), not the
as-of date of its data. An offer the service pauses after two declines is paused in the
next nightly file too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import functools
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from batch.inputs import (
    HELD,
    Population,
    as_float,
    as_text,
    held_of,
    stage_inputs,
    staged,
    tier_context,
)
from batch.online import store_chunks, store_info
from features.catalogue import FeatureSpec, feature_index, merged_spec
from features.contract import Dataset, fingerprint
from features.sql import literal
from models.scoring import ModelSet, probability_column
from serving.policy import Context, PolicyConfig, Ranking, decline_window
from serving.reasons import reasons_of
from serving.store import OnlineStore, StoredCustomer
from serving.suggest import CHURN, MAX_REASONS, Scorer, rank

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from serving.store import StoreInfo

FORMAT = 1  # the output's layout version: part of the run key
MANIFEST = "_tierwise.json"
KEEP_RUNS = 2  # the current run and the one before (a reader may still be reading it)
Engine = Literal["duckdb", "spark"]


class BatchError(ValueError):
    """The run cannot start or cannot finish; nothing was switched."""


@dataclass(frozen=True)
class BatchOptions:
    """What a batch run writes.

    Attributes:
        top: suggestions per customer (1..10), ranked by the policy.
        reasons: add the top reasons of the churn score and of each suggestion (TreeSHAP).
        channel: the contact channel the suggestions are for (the policy's channel weight).
        chunk_rows: customers scored and written at a time (one parquet part each).
        engine: ``duckdb`` on this machine, ``spark`` on the Spark cluster of the settings.
    """

    top: int = 3
    reasons: bool = False
    channel: str = "batch"
    chunk_rows: int = 100_000
    engine: Engine = "duckdb"

    def __post_init__(self) -> None:
        if not 1 <= self.top <= 10:
            raise BatchError(f"top must be 1..10, got {self.top}")
        if self.chunk_rows < 1:
            raise BatchError(f"chunk_rows must be at least 1, got {self.chunk_rows}")
        if self.engine not in ("duckdb", "spark"):
            raise BatchError(f"engine must be duckdb or spark, got {self.engine!r}")


@dataclass(frozen=True)
class BatchResult:
    """A finished run: where its output is, what it holds, and where the time went."""

    out: Path  # the run folder the output link points to
    key: str
    as_of: dt.date
    rows: int
    parts: int
    resumed_parts: int  # parts a previous, interrupted run had already written
    store: StoreInfo | None
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class ChunkScorer:
    """Everything needed to score a chunk of serving inputs; shipped to Spark workers as is.

    ``score`` turns a DataFrame of inputs into the output rows of those customers: keys,
    tier context, probabilities, churn risk band, the policy's top suggestions and, with
    ``options.reasons``, their reasons.
    """

    scorer: Scorer
    policy: PolicyConfig
    population: Population
    spec: FeatureSpec
    options: BatchOptions
    as_of: dt.date
    declines: Mapping[str, Mapping[str, list[dt.datetime]]]  # customer -> action -> times
    decided_at: dt.datetime | None = None  # the decision time (``decision_time``)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def now(self) -> dt.datetime:
        """The decision time the contact policy's window ends at (``decision_time``)."""
        return self.decided_at or decision_time(self.as_of)

    @functools.cached_property
    def schema(self) -> pa.Schema:
        """The output's columns, in order (the same for every chunk and engine)."""
        fields = [
            pa.field("customer_id", pa.string()),
            pa.field("as_of", pa.date32()),
            pa.field("tier", pa.string()),
            pa.field("value", pa.float64()),
            pa.field("value_tier", pa.string()),
            pa.field("tier_reason", pa.string()),
            pa.field("next_tier", pa.string()),
            pa.field("gap_to_next_tier", pa.float64()),
            *(pa.field(probability_column(t), pa.float64()) for t in self.scorer.predictors),
            pa.field("churn_risk", pa.string()),
            pa.field("control", pa.bool_()),
        ]
        if self.options.reasons:
            fields.append(pa.field("churn_reasons", pa.list_(pa.string())))
        for i in range(1, self.options.top + 1):
            fields += [
                pa.field(f"suggestion_{i}_kind", pa.string()),
                pa.field(f"suggestion_{i}_action", pa.string()),
                pa.field(f"suggestion_{i}_product", pa.string()),
                pa.field(f"suggestion_{i}_probability", pa.float64()),
                pa.field(f"suggestion_{i}_expected_value", pa.float64()),
            ]
            if self.options.reasons:
                fields.append(pa.field(f"suggestion_{i}_reasons", pa.list_(pa.string())))
        fields.append(pa.field("model_versions", pa.string()))
        return pa.schema(fields)

    def score(self, chunk: pd.DataFrame) -> pd.DataFrame:
        """The output rows of a chunk of inputs, in the chunk's order."""
        with self.timed("predict"):
            probabilities = self._probabilities(chunk)
            context = tier_context(chunk, self.population, self.spec)
        out = pd.DataFrame(
            {
                "customer_id": chunk["customer_id"].astype(str).to_numpy(),
                "as_of": [_day(v) for v in chunk["as_of"]],
                "tier": chunk["tier"].to_numpy(),
                "value": chunk["value"].to_numpy(dtype=np.float64),
                "value_tier": context["value_tier"].to_numpy(),
                "tier_reason": context["tier_reason"].to_numpy(),
                "next_tier": context["next_tier"].to_numpy(),
                "gap_to_next_tier": context["gap_to_next_tier"].to_numpy(dtype=np.float64),
            }
        )
        for target, p in probabilities.items():
            out[probability_column(target)] = p
        with self.timed("policy"):
            rankings = self._rankings(chunk, context, probabilities)
        out["churn_risk"] = [r.risk_band for r in rankings]
        out["control"] = [r.control for r in rankings]
        if self.options.reasons:
            with self.timed("reasons"):
                self._add_reasons(out, chunk, rankings)
        for i in range(self.options.top):
            shown = [r.suggestions[i] if i < len(r.suggestions) else None for r in rankings]
            prefix = f"suggestion_{i + 1}_"
            out[prefix + "kind"] = [s.kind if s else None for s in shown]
            out[prefix + "action"] = [s.action if s else None for s in shown]
            out[prefix + "product"] = [s.product if s else None for s in shown]
            out[prefix + "probability"] = [s.probability if s else np.nan for s in shown]
            out[prefix + "expected_value"] = [s.expected_value if s else np.nan for s in shown]
        out["model_versions"] = ",".join(f"{n}={v}" for n, v in self.scorer.versions.items())
        return out[self.schema.names]

    def _probabilities(self, chunk: pd.DataFrame) -> dict[str, np.ndarray]:
        held = [set(held_of(v)) for v in chunk[HELD]]
        out = {}
        for target, predictor in self.scorer.predictors.items():
            p = predictor.predict_frame(chunk).astype(np.float64)
            product = self.scorer.product_by_target.get(target)
            if product is not None:
                p[[product in h for h in held]] = np.nan  # no offer of what the customer has
            out[target] = p
        return out

    def _rankings(
        self, chunk: pd.DataFrame, context: pd.DataFrame, probabilities: dict[str, np.ndarray]
    ) -> list[Ranking]:
        profile = {c: f for c, f in self.scorer.profile_features.items() if f in chunk}
        columns = {
            "customer_id": chunk["customer_id"].astype(str).tolist(),
            "tier": chunk["tier"].tolist(),
            "tier_rank": chunk["tier_rank"].tolist(),
            "value": chunk["value"].tolist(),
            "held": chunk[HELD].tolist(),
            "next_tier": context["next_tier"].tolist(),
            "gap": context["gap_to_next_tier"].tolist(),
            **{f: chunk[f].tolist() for f in profile.values()},
        }
        targets = list(probabilities)
        values = [probabilities[t].tolist() for t in targets]
        context_ = Context(self.options.channel)
        now = self.now
        out = []
        for i, customer_id in enumerate(columns["customer_id"]):
            rank_value = as_float(columns["tier_rank"][i])
            customer = StoredCustomer(
                customer_id=customer_id,
                as_of=self.as_of,
                tier=as_text(columns["tier"][i]),
                tier_rank=None if rank_value is None else int(rank_value),
                value=as_float(columns["value"][i]) or 0.0,
                value_tier=None,
                tier_reason=None,
                next_tier=as_text(columns["next_tier"][i]),
                gap_to_next_tier=as_float(columns["gap"][i]),
                held=tuple(held_of(columns["held"][i])),
                history={},
                features={f: columns[f][i] for f in profile.values()},
            )
            out.append(
                rank(
                    customer,
                    self.scorer,
                    self.policy,
                    context_,
                    self.declines.get(customer_id, {}),
                    now,
                    self.options.top,
                    f"batch:{self.as_of.isoformat()}:{customer_id}",
                    {t: as_float(v[i]) for t, v in zip(targets, values, strict=True)},
                )
            )
        return out

    def _add_reasons(self, out: pd.DataFrame, chunk: pd.DataFrame, rankings: list[Ranking]) -> None:
        """Reasons of the churn score and of every shown suggestion, by model, rows at once."""
        wanted: dict[str, list[int]] = {}
        if CHURN in self.scorer.predictors:
            wanted[CHURN] = [
                i for i in range(len(chunk)) if not np.isnan(out.at[i, "churn_probability"])
            ]
        for i, r in enumerate(rankings):
            for s in r.suggestions:
                wanted.setdefault(s.target, []).append(i)
        texts: dict[tuple[str, int], list[str]] = {}
        index = feature_index(self.spec)
        for target, rows in wanted.items():
            rows = sorted(set(rows))
            predictor = self.scorer.predictors[target]
            part = chunk.iloc[rows]
            contributions = predictor.contributions(predictor.encoding.matrix(part))[:, :-1]
            names = predictor.encoding.features
            for j, i in enumerate(rows):
                values = part.iloc[j]
                found = reasons_of(contributions[j], names, values, index, MAX_REASONS)
                texts[(target, i)] = [r.text for r in found]
        has_churn = CHURN in self.scorer.predictors
        out["churn_reasons"] = (
            [texts.get((CHURN, i), []) for i in range(len(chunk))] if has_churn else None
        )
        for k in range(self.options.top):
            out[f"suggestion_{k + 1}_reasons"] = [
                texts.get((r.suggestions[k].target, i)) if k < len(r.suggestions) else None
                for i, r in enumerate(rankings)
            ]

    @contextlib.contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the time spent in the block to ``seconds[phase]``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start


def run_batch(
    ds: Dataset,
    as_of: dt.date,
    models: ModelSet,
    policy: PolicyConfig,
    out: Path,
    options: BatchOptions = BatchOptions(),
    *,
    store: OnlineStore | None = None,
    declines: Mapping[str, Mapping[str, list[dt.datetime]]] | None = None,
    decided_at: dt.datetime | None = None,
    spark: SparkSession | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BatchResult:
    """Score the population at ``as_of`` into ``out`` and refresh ``store`` (see the module).

    Args:
        out: the output path: a symbolic link to the current run's folder of parquet parts
            (created on the first run). Readers should resolve it once.
        store: the online store to refresh from the same run; None leaves it alone.
        declines: customer -> action -> decline times (``read_declines``), for the
            contact policy; none by default.
        decided_at: the decision time the contact policy's window ends at; by default the
            time ``read_declines`` read ``declines`` at, else ``decision_time(as_of)``.
        spark: the session for ``options.engine == "spark"`` (``spark_session()`` by default).
        progress: called with (parts done, parts in all) as parts finish.

    Raises:
        BatchError: ``out`` exists and is not a Tierwise output, another run writes to it,
            or the population is empty.
    """
    started = time.perf_counter()
    spec = merged_spec([s for s, _ in models.by_spec()])
    scorer = Scorer.from_models(models)
    decided_at = decided_at or getattr(declines, "decided_at", None) or decision_time(as_of)
    declines = declines or {}
    key = run_key(ds, as_of, models, policy, options, declines)
    runs = _runs_folder(out)
    seconds: dict[str, float] = {}
    with _locked(runs, out):
        staging = runs / f"staging-{key[:16]}"
        for old in runs.glob("staging-*"):  # other inputs: nothing there can be reused
            if old != staging:
                shutil.rmtree(old)
        staging.mkdir(exist_ok=True)
        inputs = staging / ("inputs" if options.engine == "spark" else "inputs.parquet")
        clock = time.perf_counter()
        if options.engine == "spark":
            spark = spark or _session()
            _stage_spark_inputs(ds, as_of, spec, inputs, spark)
        elif not inputs.exists():
            stage_inputs(ds, as_of, spec, inputs)
        seconds["inputs"] = time.perf_counter() - clock
        table = staged(inputs)
        rows = ds.con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
        if rows == 0:
            raise BatchError(f"no customer is in the population at {as_of}: nothing to score")
        job = ChunkScorer(
            scorer,
            policy,
            Population.of(ds, table),
            spec,
            options,
            as_of,
            {c: dict(acts) for c, acts in declines.items()},
            decided_at,
        )
        clock = time.perf_counter()
        if options.engine == "spark":
            parts, resumed = _score_on_spark(job, inputs, staging, key, spark)
        else:
            parts, resumed = _score_chunks(ds, job, table, staging, key, progress)
        seconds["scoring"] = time.perf_counter() - clock
        seconds.update({f"scoring.{k}": v for k, v in sorted(job.seconds.items())})
        info = None
        if store is not None:
            clock = time.perf_counter()
            also = []
            if policy.winback_days > 0:  # the recently closed keep a card for a win-back call
                closed = staging / "closed.parquet"
                if stage_inputs(ds, as_of, spec, closed, policy.winback_days):
                    also.append(staged(closed))
            info = store.refresh(
                store_chunks(ds, table, spec, also=also), store_info(models, as_of, run=key[:16])
            )
            seconds["store"] = time.perf_counter() - clock
        clock = time.perf_counter()
        manifest = {
            "format": FORMAT,
            "key": key,
            "as_of": as_of.isoformat(),
            "rows": rows,
            "parts": [p.name for p in parts],
            "model_versions": dict(scorer.versions),
            "options": dataclasses.asdict(options),
            "columns": job.schema.names,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        if inputs.is_dir():
            shutil.rmtree(inputs)
        else:
            inputs.unlink()
        (staging / "closed.parquet").unlink(missing_ok=True)  # staged for the store only
        final = runs / f"run-{as_of:%Y%m%d}-{key[:12]}-{uuid.uuid4().hex[:6]}"
        staging.rename(final)
        _switch(out, final)
        _prune(runs, final)
        seconds["switch"] = time.perf_counter() - clock
    seconds["total"] = time.perf_counter() - started
    return BatchResult(final, key, as_of, rows, len(parts), resumed, info, seconds)


def run_key(
    ds: Dataset,
    as_of: dt.date,
    models: ModelSet,
    policy: PolicyConfig,
    options: BatchOptions,
    declines: Mapping[str, Mapping[str, list[dt.datetime]]],
) -> str:
    """A hash of everything a run's output depends on."""
    payload = {
        "format": FORMAT,
        "data": fingerprint(ds),
        "as_of": as_of.isoformat(),
        "models": sorted(models.versions.items()),
        "specs": [s.to_dict() for s, _ in models.by_spec()],
        "policy": policy.model_dump(mode="json"),
        "options": dataclasses.asdict(options),
        "declines": {
            c: {a: sorted(t.isoformat() for t in times) for a, times in sorted(acts.items())}
            for c, acts in sorted(declines.items())
        },
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class Declines(dict[str, dict[str, list[dt.datetime]]]):
    """Customer -> action -> decline times, as read at ``decided_at`` (``read_declines``)."""

    def __init__(
        self, declines: Mapping[str, dict[str, list[dt.datetime]]], decided_at: dt.datetime
    ):
        super().__init__(declines)
        self.decided_at = decided_at


def decision_time(as_of: dt.date, now: dt.datetime | None = None) -> dt.datetime:
    """When a run's suggestions are decided: now (UTC), and never before the as-of day ends.

    The file is used from the moment it is written, so its contact policy counts the
    declines the service counts then; a run for a date still ahead decides at that date.
    """
    end_of_day = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), dt.UTC)
    return max(now or dt.datetime.now(dt.UTC), end_of_day)


def read_declines(
    url: str, as_of: dt.date, policy: PolicyConfig, now: dt.datetime | None = None
) -> Declines:
    """Customer -> action -> decline times in the contact-policy window at the decision time.

    The window is the service's (``policy.decline_window``), ending at
    ``decision_time(as_of, now)``, which the result carries as ``decided_at`` for
    ``run_batch``. An SQLite decision log that does not exist yet has no declines (nothing
    is created).
    """
    import sqlalchemy as sa

    from serving.decisions import DecisionLog

    decided_at = decision_time(as_of, now)
    path = sa.engine.make_url(url).database
    if url.startswith("sqlite") and path and not Path(path).exists():
        return Declines({}, decided_at)
    since, until = decline_window(decided_at, policy)
    log = DecisionLog(url)
    try:
        return Declines(log.all_declines(since, until), decided_at)
    finally:
        log.close()


def read_output(out: Path) -> pd.DataFrame:
    """The current output behind ``out`` (resolved once, so a switch mid-read cannot mix runs)."""
    folder = Path(out).resolve()
    manifest = json.loads((folder / MANIFEST).read_text())
    return pd.concat(
        [pd.read_parquet(folder / name) for name in manifest["parts"]], ignore_index=True
    )


# -- scoring on this machine -------------------------------------------------------------------


def _score_chunks(
    ds: Dataset,
    job: ChunkScorer,
    table: str,
    staging: Path,
    key: str,
    progress: Callable[[int, int], None] | None,
) -> tuple[list[Path], int]:
    """Score the staged inputs chunk by chunk into parts; parts already written are kept."""
    bounds = [
        r[0]
        for r in ds.con.execute(
            f"""SELECT customer_id FROM (
                    SELECT customer_id, row_number() OVER (ORDER BY customer_id) AS n FROM {table})
                WHERE (n - 1) % {int(job.options.chunk_rows)} = 0 ORDER BY customer_id"""
        ).fetchall()
    ]
    parts = [staging / f"part-{i:05d}-{key[:8]}.parquet" for i in range(len(bounds))]
    resumed = sum(p.exists() for p in parts)
    for i, part in enumerate(parts):
        if not part.exists():
            where = f"customer_id >= {literal(bounds[i])}"
            if i + 1 < len(bounds):
                where += f" AND customer_id < {literal(bounds[i + 1])}"
            chunk = ds.con.execute(f"SELECT * FROM {table} WHERE {where} ORDER BY customer_id").df()
            frame = job.score(chunk)
            with job.timed("write"):
                _write_part(frame, job.schema, part)
        if progress is not None:
            progress(i + 1, len(parts))
    return parts, resumed


def _write_part(frame: pd.DataFrame, schema: pa.Schema, path: Path) -> None:
    """One part, complete or absent: written aside, then renamed into place."""
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    partial = path.with_name(f".{path.name}.partial")
    pq.write_table(table, partial, compression="zstd")
    partial.replace(path)


# -- scoring on Spark --------------------------------------------------------------------------


def _session() -> SparkSession:
    from features.spark import spark_session

    return spark_session()


def _stage_spark_inputs(
    ds: Dataset, as_of: dt.date, spec: FeatureSpec, path: Path, spark: SparkSession
) -> None:
    """The serving inputs from the same SQL, transpiled and run on Spark (kept when complete)."""
    from batch.inputs import inputs_sql
    from features.spark import register_spark_spine, register_tables

    if (path / "_SUCCESS").exists():
        return
    tables = register_tables(ds, spark)
    spine = register_spark_spine(tables, [as_of])
    tables.sql(inputs_sql(ds, spec, spine)).write.mode("overwrite").parquet(str(path))


def _score_on_spark(
    job: ChunkScorer,
    inputs: Path,
    staging: Path,
    key: str,
    spark: SparkSession,
) -> tuple[list[Path], int]:
    """``ChunkScorer.score`` in ``mapInPandas`` over the staged inputs; parts renamed in order.

    Each worker predicts with one LightGBM thread: Spark already runs a task per core.
    """
    from pyspark.sql.pandas.types import from_arrow_schema

    single = {
        t: dataclasses.replace(p, meta={**p.meta, "threads": 1})
        for t, p in job.scorer.predictors.items()
    }
    job = dataclasses.replace(job, scorer=dataclasses.replace(job.scorer, predictors=single))

    written = staging / "spark-parts"
    for old in staging.glob("part-*"):  # a Spark run is not resumed part by part
        old.unlink()
    frame = spark.read.parquet(str(inputs))
    scored = frame.mapInPandas(
        functools.partial(_score_batches, job=job), from_arrow_schema(job.schema)
    )
    scored.orderBy("customer_id").write.mode("overwrite").option("compression", "zstd").parquet(
        str(written)
    )
    parts = []
    for i, file in enumerate(sorted(written.glob("part-*.parquet"))):
        part = staging / f"part-{i:05d}-{key[:8]}.parquet"
        file.rename(part)
        parts.append(part)
    shutil.rmtree(written)
    return parts, 0


def _score_batches(batches: Iterator[pd.DataFrame], job: ChunkScorer) -> Iterator[pd.DataFrame]:
    for batch in batches:
        yield job.score(batch.reset_index(drop=True))


# -- the output folder -------------------------------------------------------------------------


def _runs_folder(out: Path) -> Path:
    """Where the runs behind ``out`` live: a hidden folder beside it."""
    if out.exists() and not out.is_symlink():
        raise BatchError(
            f"{out} exists and is not a Tierwise batch output (a link to a run folder): "
            "choose another --out or move it away"
        )
    runs = out.parent / f".{out.name}.runs"
    runs.mkdir(parents=True, exist_ok=True)
    return runs


@contextlib.contextmanager
def _locked(runs: Path, out: Path) -> Iterator[None]:
    with open(runs / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BatchError(f"another run is writing {out}; wait for it to finish") from None
        yield


def _switch(out: Path, run: Path) -> None:
    """Point ``out`` at ``run`` in one rename (a relative link, so the folder can move)."""
    link = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.link"
    os.symlink(os.path.relpath(run, out.parent), link)
    os.replace(link, out)


def _prune(runs: Path, current: Path) -> None:
    """Keep the current run and the one before it; older runs go."""
    finished = sorted(
        (p for p in runs.glob("run-*") if p != current), key=lambda p: p.stat().st_mtime
    )
    for old in finished[: max(0, len(finished) - (KEEP_RUNS - 1))]:
        shutil.rmtree(old)


def _day(value: Any) -> dt.date:
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.date()
    return value
