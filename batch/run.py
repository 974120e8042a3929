"""The nightly batch: score every customer, write what agents and campaigns use, feed the store.

One run, for one as-of date and the champion models:

1. **inputs**: the serving inputs of the population (``batch.inputs``: features,
   history, products held) are computed once, by DuckDB or Spark, into a staging folder;
2. **scoring**: chunk by chunk, every model's calibrated probability, the tier context and
   the policy's top suggestions (``serving.suggest.rank``, the code the service ranks
   with), optionally with reasons, each chunk written as one parquet part;
3. **store**: the online store is refreshed from the same staged inputs (one atomic swap);
4. **switch**: the finished run folder replaces the previous one behind the output path,
   a symbolic link, in one rename (``batch.runs``).

Chunks are scored by ``batch.chunks.ChunkScorer``, here or on Spark (``batch.spark``).

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
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from batch.allocate import allocate
from batch.chunks import ChunkScorer
from batch.inputs import Population, stage_inputs, staged
from batch.online import store_chunks, store_info
from batch.runs import (
    MANIFEST,
    BatchError,
    finish,
    locked,
    part_path,
    runs_folder,
    staging_folder,
    write_part,
)
from batch.spark import score_on_spark, session, stage_on_spark
from features.contract import Dataset, fingerprint
from features.spec import FeatureSpec, merged_spec
from features.sql import literal
from models.scoring import ModelSet
from serving.adaptive import EMPTY, AdaptiveState
from serving.policy import PolicyConfig, decline_window
from serving.store import OnlineStore
from serving.suggest import Scorer

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from serving.store import StoreInfo

FORMAT = 1  # the output's layout version: part of the run key
CLOSED = "closed.parquet"  # the recently closed customers' inputs, staged for the store only
Engine = Literal["duckdb", "spark"]


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
    adaptive: AdaptiveState | None = None,
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
        adaptive: what customer answers taught (``serving.adaptive``); by default the
            counts ``read_declines`` read with ``declines``, else none.
        spark: the session for ``options.engine == "spark"`` (``spark_session()`` by default).
        progress: called with (parts done, parts in all) as parts finish.

    Raises:
        BatchError: ``out`` exists and is not a Tierwise output, another run writes to it,
            or the population is empty.
    """
    started = time.perf_counter()
    decided_at = decided_at or getattr(declines, "decided_at", None) or decision_time(as_of)
    adaptive = adaptive or getattr(declines, "adaptive", EMPTY)
    declines = declines or {}
    spec = merged_spec([s for s, _ in models.by_spec()])
    key = run_key(ds, as_of, models, policy, options, declines, adaptive)
    runs = runs_folder(out)
    seconds: dict[str, float] = {}
    with locked(runs, out):
        staging = staging_folder(runs, key)
        with _timed(seconds, "inputs"):
            spark = (spark or session()) if options.engine == "spark" else None
            inputs = _stage(ds, as_of, spec, staging, spark)
        rows = _count(ds, staged(inputs), as_of)
        job = _chunk_scorer(
            ds, staged(inputs), models, policy, spec, options, as_of, declines, decided_at
        )
        job = dataclasses.replace(job, adaptive=adaptive)
        with _timed(seconds, "allocation"):
            job = _allocated(ds, job, staged(inputs))
        with _timed(seconds, "scoring"):
            parts, resumed = _score(ds, job, inputs, staging, key, spark, progress)
        seconds.update({f"scoring.{k}": v for k, v in sorted(job.seconds.items())})
        info = None
        if store is not None:
            with _timed(seconds, "store"):
                info = _refresh_store(ds, job, staged(inputs), staging, models, store, key)
        with _timed(seconds, "switch"):
            manifest = _manifest(job, key, rows, parts)
            name = f"run-{as_of:%Y%m%d}-{key[:12]}"
            final = finish(runs, staging, out, name, manifest, [inputs, staging / CLOSED])
    seconds["total"] = time.perf_counter() - started
    return BatchResult(final, key, as_of, rows, len(parts), resumed, info, seconds)


def _stage(
    ds: Dataset, as_of: dt.date, spec: FeatureSpec, staging: Path, spark: SparkSession | None
) -> Path:
    """The run's serving inputs in ``staging`` (those an interrupted run staged are kept)."""
    if spark is not None:
        inputs = staging / "inputs"
        stage_on_spark(ds, as_of, spec, inputs, spark)
    else:
        inputs = staging / "inputs.parquet"
        if not inputs.exists():
            stage_inputs(ds, as_of, spec, inputs)
    return inputs


def _chunk_scorer(
    ds: Dataset,
    table: str,
    models: ModelSet,
    policy: PolicyConfig,
    spec: FeatureSpec,
    options: BatchOptions,
    as_of: dt.date,
    declines: Mapping[str, Mapping[str, list[dt.datetime]]],
    decided_at: dt.datetime,
) -> ChunkScorer:
    """The run's chunk scorer: the models for batch inference, the population's tier figures."""
    population = Population.of(ds, table)
    declined = {c: dict(acts) for c, acts in declines.items()}
    scorer = Scorer.from_models(models)
    return ChunkScorer(scorer, policy, population, spec, options, as_of, declined, decided_at)


def _allocated(ds: Dataset, job: ChunkScorer, table: str) -> ChunkScorer:
    """With caps on the run's offers: every customer's candidates, read chunk by chunk on
    this machine, allocated across the whole base at once (``batch.allocate``); the
    allocation then decides each customer's list on either engine. Without caps: ``job``."""
    if not job.capped:
        return job
    n = int(job.options.chunk_rows)
    frames = []
    for offset in range(0, _count(ds, table, job.as_of), n):
        chunk = ds.con.execute(
            f"SELECT * FROM {table} ORDER BY customer_id LIMIT {n} OFFSET {offset}"
        ).df()
        frames.append(job.candidates(chunk))
    found = pd.concat(frames, ignore_index=True)
    mask = allocate(found, job.policy.capacity, job.options.channel, job.options.top)
    offered = found[mask].groupby("customer_id")["action"]
    return dataclasses.replace(job, allocation={c: frozenset(a) for c, a in offered})


def _score(
    ds: Dataset,
    job: ChunkScorer,
    inputs: Path,
    staging: Path,
    key: str,
    spark: SparkSession | None,
    progress: Callable[[int, int], None] | None,
) -> tuple[list[Path], int]:
    """The run's parts and how many an interrupted run had written, on this machine or Spark."""
    if spark is not None:
        return score_on_spark(job, inputs, staging, key, spark)
    return _score_chunks(ds, job, staged(inputs), staging, key, progress)


def _count(ds: Dataset, table: str, as_of: dt.date) -> int:
    """The customers in the staged inputs (raises BatchError for none)."""
    rows = ds.con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    if rows == 0:
        raise BatchError(f"no customer is in the population at {as_of}: nothing to score")
    return rows


def _refresh_store(
    ds: Dataset,
    job: ChunkScorer,
    table: str,
    staging: Path,
    models: ModelSet,
    store: OnlineStore,
    key: str,
) -> StoreInfo:
    """Refresh the store from the staged inputs, plus the recently closed for a win-back call."""
    also = []
    if job.policy.winback_days > 0:
        closed = staging / CLOSED
        if stage_inputs(ds, job.as_of, job.spec, closed, job.policy.winback_days):
            also.append(staged(closed))
    chunks = store_chunks(ds, table, job.spec, also=also)
    return store.refresh(chunks, store_info(models, job.as_of, run=key[:16]))


def _manifest(job: ChunkScorer, key: str, rows: int, parts: list[Path]) -> dict[str, Any]:
    """What a finished run holds (``MANIFEST``): read by ``read_output`` and by people."""
    return {
        "format": FORMAT,
        "key": key,
        "as_of": job.as_of.isoformat(),
        "rows": rows,
        "parts": [p.name for p in parts],
        "model_versions": dict(job.scorer.versions),
        "options": dataclasses.asdict(job.options),
        "columns": job.schema.names,
    }


@contextlib.contextmanager
def _timed(seconds: dict[str, float], phase: str) -> Iterator[None]:
    """Set ``seconds[phase]`` to the time the block took (left unset if it raises)."""
    start = time.perf_counter()
    yield
    seconds[phase] = time.perf_counter() - start


def run_key(
    ds: Dataset,
    as_of: dt.date,
    models: ModelSet,
    policy: PolicyConfig,
    options: BatchOptions,
    declines: Mapping[str, Mapping[str, list[dt.datetime]]],
    adaptive: AdaptiveState = EMPTY,
) -> str:
    """A hash of everything a run's output depends on (the adaptive counts only when there
    are any, so runs before anything was learned keep their keys)."""
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
    if adaptive.cells:
        payload["adaptive"] = adaptive.fingerprint()
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class Declines(dict[str, dict[str, list[dt.datetime]]]):
    """Customer -> action -> decline times, as read at ``decided_at`` (``read_declines``),
    with the adaptive counts read at the same time (``adaptive``)."""

    def __init__(
        self,
        declines: Mapping[str, dict[str, list[dt.datetime]]],
        decided_at: dt.datetime,
        adaptive: AdaptiveState = EMPTY,
    ):
        super().__init__(declines)
        self.decided_at = decided_at
        self.adaptive = adaptive


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
    ``run_batch``, with the adaptive counts (``serving.decisions.read_adaptive``: read once
    per run, here) as ``adaptive``. An SQLite decision log that does not exist yet has no
    declines and nothing learned (nothing is created).
    """
    import sqlalchemy as sa

    from serving.decisions import DecisionLog, read_adaptive

    decided_at = decision_time(as_of, now)
    path = sa.engine.make_url(url).database
    if url.startswith("sqlite") and path and not Path(path).exists():
        return Declines({}, decided_at)
    since, until = decline_window(decided_at, policy)
    log = DecisionLog(url)
    try:
        return Declines(log.all_declines(since, until), decided_at, read_adaptive(url))
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
    parts = [part_path(staging, i, key) for i in range(len(bounds))]
    resumed = sum(p.exists() for p in parts)
    for i, part in enumerate(parts):
        if not part.exists():
            where = f"customer_id >= {literal(bounds[i])}"
            if i + 1 < len(bounds):
                where += f" AND customer_id < {literal(bounds[i + 1])}"
            chunk = ds.con.execute(f"SELECT * FROM {table} WHERE {where} ORDER BY customer_id").df()
            frame = job.score(chunk)
            with job.timed("write"):
                write_part(frame, job.schema, part)
        if progress is not None:
            progress(i + 1, len(parts))
    return parts, resumed
