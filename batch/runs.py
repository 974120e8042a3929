"""The batch output's folder: runs behind one link, one writer at a time, switched in a rename.

``out`` is a symbolic link to the current run's folder; the runs live in a hidden folder
beside it (``.<out>.runs``). A run writes into a staging folder named after its key, so an
interrupted run with the same inputs finds its finished parts there; when it is complete,
its manifest is written, the staging folder is renamed into a run folder and ``out`` is
pointed at it in one rename. Readers resolve the link once (``batch.run.read_output``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST = "_tierwise.json"
KEEP_RUNS = 2  # the current run and the one before (a reader may still be reading it)


class BatchError(ValueError):
    """The run cannot start or cannot finish; nothing was switched."""


def runs_folder(out: Path) -> Path:
    """Where the runs behind ``out`` live: a hidden folder beside it (made if missing).

    Raises:
        BatchError: ``out`` exists and is not a link (not a Tierwise batch output).
    """
    if out.exists() and not out.is_symlink():
        raise BatchError(
            f"{out} exists and is not a Tierwise batch output (a link to a run folder): "
            "choose another --out or move it away"
        )
    runs = out.parent / f".{out.name}.runs"
    runs.mkdir(parents=True, exist_ok=True)
    return runs


@contextlib.contextmanager
def locked(runs: Path, out: Path) -> Iterator[None]:
    """Hold the runs folder's lock for the block (raises BatchError if another run has it)."""
    with open(runs / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BatchError(f"another run is writing {out}; wait for it to finish") from None
        yield


def staging_folder(runs: Path, key: str) -> Path:
    """The staging folder of the run ``key``, kept if there; those of other keys go
    (made for other inputs: nothing in them can be reused)."""
    staging = runs / f"staging-{key[:16]}"
    for old in runs.glob("staging-*"):
        if old != staging:
            shutil.rmtree(old)
    staging.mkdir(exist_ok=True)
    return staging


def part_path(staging: Path, index: int, key: str) -> Path:
    """Where the run ``key`` writes its part number ``index`` (parts sort in customer order)."""
    return staging / f"part-{index:05d}-{key[:8]}.parquet"


def write_part(frame: pd.DataFrame, schema: pa.Schema, path: Path) -> None:
    """One part, complete or absent: written aside, then renamed into place."""
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    partial = path.with_name(f".{path.name}.partial")
    pq.write_table(table, partial, compression="zstd")
    partial.replace(path)


def finish(
    runs: Path,
    staging: Path,
    out: Path,
    name: str,
    manifest: dict[str, Any],
    scratch: Sequence[Path] = (),
) -> Path:
    """Write the manifest, drop ``scratch`` (staged inputs), rename the staging folder to a
    run folder named ``name`` plus a unique suffix, point ``out`` at it and prune old runs.

    Returns:
        The run folder ``out`` now points at.
    """
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    for path in scratch:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    final = runs / f"{name}-{uuid.uuid4().hex[:6]}"
    staging.rename(final)
    _switch(out, final)
    _prune(runs, final)
    return final


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
