"""The nightly batch (`tierwise score`, ``batch.run``) on the session's trained demo base.

One reference run (DuckDB, default policy, small chunks) is shared by the module; other runs
are compared with it: a second run, a killed and resumed run, a run on Spark, a run after
customers declined. The real service is started once, on a home whose online store the
batch refreshed, to check that the batch scores and ranks exactly like the service.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from batch.run import MANIFEST, BatchOptions, BatchResult, read_output, run_batch
from features.contract import load_dataset
from features.spark import spark_session
from models.registry import CHAMPION, client, model_name
from models.scoring import load_champions
from serving.decisions import DecisionLog, DecisionRecord
from serving.policy import PolicyConfig
from serving.store import OnlineStore, StoreMissingError
from tests.integration.test_service import KEY, ROOT, free_port, stop, wait_ready
from tests.unit.models.test_integrity import flip_byte, stored_folder
from tests.unit.training.test_promotion import predictor
from tests.unit.training.test_promotion_decision import register_model
from tierwise.cli import app
from tierwise.settings import Settings

AS_OF = dt.date(2026, 3, 31)
LATER = dt.date(2026, 6, 30)  # the demo base's data_end
CHUNK_ROWS = 50  # many parts on 6000 customers: resuming and part order matter
TOP = 3
SERVICE_CHANNEL = "phone"
SERVICE_CUSTOMERS = 20
SERVICE_TOLERANCE = 1e-12
SPARK_TOLERANCE = 1e-9
KILL_TIMEOUT_S = 180


# -- helpers -----------------------------------------------------------------------------------


def clean_env(**values: str | None) -> dict[str, str | None]:
    """Environment changes for a CLI run: no Tierwise or MLflow setting leaks in from outside."""
    unset = {k: None for k in os.environ if k.startswith("TIERWISE_") or k == "MLFLOW_TRACKING_URI"}
    return {**unset, "BENTOML_DO_NOT_TRACK": "True", **values}


def cli_env(trained, home: Path, **values: str) -> dict[str, str | None]:
    """A fresh ``TIERWISE_HOME`` reading the session's models from their MLflow store."""
    return clean_env(
        TIERWISE_HOME=str(home),
        MLFLOW_TRACKING_URI=trained.settings.tracking_uri(),
        **values,
    )


def score_args(data: object, as_of: dt.date, out: Path, *extra: object) -> list[str]:
    """The arguments of ``tierwise score`` for a dataset, date and output, then ``extra``."""
    return [str(a) for a in ("--data", data, "--as-of", as_of.isoformat(), "--out", out, *extra)]


def score(env: dict[str, str | None], *args: object):
    """``tierwise score`` in this process; returns Click's result (output has stdout+stderr)."""
    return CliRunner().invoke(app, ["score", *(str(a) for a in args)], env=env)


def process_env(env: dict[str, str | None]) -> dict[str, str]:
    """``env`` applied to this process's environment, for a subprocess."""
    out = {k: v for k, v in os.environ.items() if k not in env}
    out.update({k: v for k, v in env.items() if v is not None})
    out["PYTHONPATH"] = str(ROOT)
    return out


def files_of(out: Path) -> dict[str, str]:
    """File name -> sha256 of every file of the run folder behind ``out``."""
    folder = out.resolve()
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def manifest_of(out: Path) -> dict:
    return json.loads((out.resolve() / MANIFEST).read_text())


def population(data: Path, as_of: dt.date) -> set[str]:
    """Customers open at ``as_of``, straight from the customers file (not through Tierwise)."""
    [path] = [p for p in data.iterdir() if p.stem == "customers"]
    reader = "read_parquet" if path.suffix == ".parquet" else "read_csv_auto"
    rows = (
        duckdb.connect()
        .execute(
            f"""SELECT customer_id FROM {reader}('{path}')
                WHERE CAST(signup_date AS DATE) <= DATE '{as_of}'
                  AND (closed_date IS NULL OR CAST(closed_date AS DATE) > DATE '{as_of}')"""
        )
        .fetchall()
    )
    return {r[0] for r in rows}


def targets(frame: pd.DataFrame) -> list[str]:
    return [c.removesuffix("_probability") for c in probability_columns(frame)]


def probability_columns(frame: pd.DataFrame) -> list[str]:
    return [
        c for c in frame.columns if c.endswith("_probability") and not c.startswith("suggestion_")
    ]


def suggestions_of(row: pd.Series, top: int = TOP) -> list[dict]:
    """The suggestions of a batch row, in rank order."""
    out = []
    for i in range(1, top + 1):
        kind = row[f"suggestion_{i}_kind"]
        if kind is None or (isinstance(kind, float) and np.isnan(kind)):
            continue
        s = {
            "kind": kind,
            "action": row[f"suggestion_{i}_action"],
            "product": row[f"suggestion_{i}_product"],
            "probability": row[f"suggestion_{i}_probability"],
            "expected_value": row[f"suggestion_{i}_expected_value"],
        }
        if f"suggestion_{i}_reasons" in row:
            s["reasons"] = list(row[f"suggestion_{i}_reasons"])
        out.append(s)
    return out


def actions_of(row: pd.Series) -> list[str]:
    return [s["action"] for s in suggestions_of(row)]


def by_customer(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("customer_id").reset_index(drop=True)


def batch(trained, models, out: Path, as_of: dt.date = AS_OF, **options) -> BatchResult:
    """One library run on a fresh connection to the demo data (default policy, no store)."""
    opts = BatchOptions(**{"top": TOP, "chunk_rows": CHUNK_ROWS, **options})
    return run_batch(load_dataset(trained.data), as_of, models, PolicyConfig(), out, opts)


# -- shared runs -------------------------------------------------------------------------------


@dataclass
class Reference:
    out: Path
    result: BatchResult
    frame: pd.DataFrame
    files: dict[str, str]


@pytest.fixture(scope="module")
def models(trained):
    return load_champions(trained.settings)


@pytest.fixture(scope="module")
def reference(trained, models, tmp_path_factory) -> Reference:
    """The uninterrupted DuckDB run at AS_OF the other runs are compared with."""
    out = tmp_path_factory.mktemp("reference") / "scores"
    result = batch(trained, models, out)
    return Reference(out, result, read_output(out), files_of(out))


# -- 1. determinism ------------------------------------------------------------------------------


def test_same_inputs_give_byte_identical_parts_with_one_row_per_customer(
    trained, models, reference, tmp_path
):
    # Given the reference run; when the same inputs are scored again into another output
    again = batch(trained, models, tmp_path / "again")
    # Then the parts and the manifest are the same files, byte for byte
    assert again.key == reference.result.key, "the run key depends on the inputs only"
    assert files_of(tmp_path / "again") == reference.files, "same part names and bytes"
    assert manifest_of(tmp_path / "again") == manifest_of(reference.out)
    assert reference.result.parts > 1, "the run was written in several parts"
    # And the output has exactly the population at the date, once each
    frame = reference.frame
    expected = population(trained.data, AS_OF)
    assert frame["customer_id"].is_unique, "no customer appears twice"
    assert (
        len(frame) == len(expected) == reference.result.rows == manifest_of(reference.out)["rows"]
    )
    assert set(frame["customer_id"]) == expected, "the customers open at the as-of date"
    assert set(frame["as_of"]) == {AS_OF}
    assert list(frame.columns) == manifest_of(reference.out)["columns"]


# -- 2. kill and resume --------------------------------------------------------------------------


def test_a_killed_run_resumes_its_finished_parts_and_gives_the_same_output(
    trained, reference, tmp_path
):
    home, out = tmp_path / "home", tmp_path / "scores"
    env = cli_env(trained, home)
    args = [
        *score_args(trained.data, AS_OF, out),
        "--chunk-rows",
        CHUNK_ROWS,
        "--top",
        TOP,
        "--no-store",
    ]
    # Given `tierwise score` running in its own process, killed once its first part is written
    runs = tmp_path / f".{out.name}.runs"
    log = tmp_path / "killed.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tierwise", "score", *(str(a) for a in args)],
            env=process_env(env),
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + KILL_TIMEOUT_S
        while not any(runs.glob("staging-*/part-*.parquet")):
            assert proc.poll() is None, f"the run ended before a part was seen:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no part in {KILL_TIMEOUT_S} s:\n{log.read_text()}"
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    written = sorted(p.name for p in runs.glob("staging-*/part-*.parquet"))
    assert not out.exists() and not out.is_symlink(), "an unfinished run switches nothing in"
    assert 1 <= len(written) < reference.result.parts, (
        f"the kill came part-way: {len(written)} of {reference.result.parts} parts"
    )
    # When the same command runs again
    result = score(env, *args)
    assert result.exit_code == 0, result.output
    # Then it says it resumed the parts the killed run finished, and the output is the same
    resumed = re.search(r"\((\d+) resumed\)", result.output)
    assert resumed, f"the summary mentions resumed parts: {result.output}"
    assert int(resumed.group(1)) == len(written), result.output
    assert files_of(out) == reference.files, "byte-identical to the uninterrupted run"
    assert list(runs.glob("staging-*")) == [], "no staging folder is left behind"


# -- 3. the atomic switch ------------------------------------------------------------------------


def test_readers_see_one_whole_run_while_the_next_one_is_switched_in(trained, models, tmp_path):
    out = tmp_path / "scores"
    # Given a finished run at one date
    first = batch(trained, models, out, AS_OF, chunk_rows=500)
    first_folder = out.resolve()
    rows = {AS_OF: first.rows}
    # When a run at another date writes the same output while readers keep reading it
    done: dict[str, object] = {}

    def second_run() -> None:
        try:
            done["result"] = batch(trained, models, out, LATER, chunk_rows=500)
        except BaseException as err:  # re-raised in the test's thread
            done["error"] = err

    thread = threading.Thread(target=second_run)
    thread.start()
    seen: list[tuple[str, dt.date, int]] = []
    try:
        while thread.is_alive():
            for how, frame in reads(out):
                dates = set(frame["as_of"])
                assert len(dates) == 1, f"{how}: one read mixes runs of {sorted(dates)}"
                seen.append((how, dates.pop(), len(frame)))
    finally:
        thread.join()
    if "error" in done:
        raise done["error"]
    second = done["result"]
    assert isinstance(second, BatchResult)
    rows[LATER] = second.rows
    assert len(seen) >= 4, f"only {len(seen)} reads while the second run was writing"
    seen += [(how, set(f["as_of"]).pop(), len(f)) for how, f in reads(out)]
    # Then every read was one whole run: its one date and all its rows
    partial = [(how, day, n) for how, day, n in seen if n != rows[day]]
    assert not partial, f"reads with missing rows (expected {rows}): {partial[:5]}"
    assert {day for _, day, _ in seen} == {AS_OF, LATER}, (
        "reads of the first run, then of the second"
    )
    # And the output is the second run, the first one kept for readers still on it
    assert out.resolve() == second.out and read_output(out)["as_of"].eq(LATER).all()
    assert first_folder.is_dir() and first_folder != second.out, "the run before is kept"
    assert len(rows) == 2 and rows[AS_OF] != rows[LATER], "the two dates have other populations"


def reads(out: Path) -> Iterator[tuple[str, pd.DataFrame]]:
    """The output read through the manifest, and by every part file of the resolved folder."""
    yield "read_output", read_output(out)
    folder = out.resolve()
    parts = sorted(folder.glob("part-*.parquet"))
    assert parts, f"no part file behind {out} (resolved to {folder})"
    yield "parts", pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)


# -- 4 and 7. the batch scores like the service ------------------------------------------------


@dataclass
class Served:
    url: str
    out: Path
    frame: pd.DataFrame
    manifest: dict
    store_url: str
    summary: str
    env: dict[str, str | None]

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30
        )


@pytest.fixture(scope="module")
def served(trained, tmp_path_factory) -> Iterator[Served]:
    """`tierwise score --reasons` refreshing the store of a home, then the service on that home."""
    tmp = tmp_path_factory.mktemp("served")
    home, out = tmp / "home", tmp / "scores"
    policy = tmp / "policy.yaml"
    policy.write_text("control_share: 0\n")
    env = cli_env(trained, home, TIERWISE_POLICY_FILE=str(policy), TIERWISE_API_KEYS=KEY)
    result = score(
        env,
        *score_args(trained.data, LATER, out),
        "--top",
        TOP,
        "--reasons",
        "--channel",
        SERVICE_CHANNEL,
        "--chunk-rows",
        1000,
    )
    assert result.exit_code == 0, result.output
    port = free_port()
    log = tmp / "server.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tierwise", "serve", "--port", str(port)],
            env=process_env(env),
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url, log)
        yield Served(
            url,
            out,
            read_output(out),
            manifest_of(out),
            f"sqlite:///{home.resolve() / 'online.db'}",
            result.output,
            env,
        )
    finally:
        stop(proc)


def service_sample(frame: pd.DataFrame) -> list[str]:
    """Customers with two or more suggestions, with a product held, and some at random."""
    with_two = frame.loc[frame["suggestion_2_kind"].notna(), "customer_id"].head(8).tolist()
    holders = frame[frame[probability_columns(frame)].isna().any(axis=1)]
    held = holders.loc[~holders["customer_id"].isin(with_two), "customer_id"].head(4).tolist()
    rest = frame.loc[~frame["customer_id"].isin(with_two + held), "customer_id"]
    others = rest.sample(SERVICE_CUSTOMERS - len(with_two) - len(held), random_state=3).tolist()
    return with_two + held + others


def test_batch_scores_and_suggestions_equal_the_service(served):
    frame = served.frame.set_index("customer_id", drop=False)
    sample = service_sample(served.frame)
    assert len(sample) == SERVICE_CUSTOMERS
    assert not frame["control"].any(), "control_share 0: no control decisions in the batch"
    shown = 0
    with served.client() as http:
        for customer_id in sample:
            row = frame.loc[customer_id]
            card = http.post("/v1/scores", json={"customer_id": customer_id})
            assert card.status_code == 200, card.text
            body = card.json()
            # every model's probability, NaN in the batch where the service says null (held)
            assert set(body["probabilities"]) == set(targets(served.frame)), customer_id
            for target, p in body["probabilities"].items():
                batch_p = row[f"{target}_probability"]
                if p is None:
                    assert np.isnan(batch_p), (
                        f"{customer_id} {target}: service null, batch {batch_p}"
                    )
                else:
                    assert abs(batch_p - p) <= SERVICE_TOLERANCE, (
                        f"{customer_id} {target}: batch {batch_p!r}, service {p!r}"
                    )
            assert body["churn"]["risk_band"] == row["churn_risk"], customer_id
            tier = body["tier"]
            assert (tier["name"], tier["value_tier"], tier["reason"]) == (
                row["tier"],
                row["value_tier"],
                row["tier_reason"],
            ), f"{customer_id}: the tier context"
            # the same suggestions, in the same order, for the batch's channel and top
            answer = http.post(
                "/v1/suggestions",
                json={
                    "customer_id": customer_id,
                    "context": {"channel": SERVICE_CHANNEL, "agent_id": "batch-test"},
                    "max_suggestions": TOP,
                },
            )
            assert answer.status_code == 200, answer.text
            decision = answer.json()
            assert decision["control_group"] is False
            service = decision["suggestions"]
            batch_rows = suggestions_of(row)
            assert [(s["kind"], s["action"], s["product"]) for s in service] == [
                (s["kind"], s["action"], s["product"]) for s in batch_rows
            ], f"{customer_id}: suggestions differ"
            for s, b in zip(service, batch_rows, strict=True):
                for field in ("probability", "expected_value"):
                    assert abs(s[field] - b[field]) <= SERVICE_TOLERANCE * max(1, abs(b[field])), (
                        f"{customer_id} {s['action']} {field}: batch {b[field]!r}, service {s[field]!r}"
                    )
            shown += len(service)
    assert shown >= 8, "the sample compared suggestions, not only empty lists"
    # And the online store was refreshed by this very run
    store = OnlineStore(served.store_url, create=False)
    info = store.info()
    assert info.run == served.manifest["key"][:16], "the store names the batch run it came from"
    # the scored population, plus the recently closed (kept for a win-back call)
    closed = sorted(set(store.customer_ids(limit=info.rows)) - set(served.frame["customer_id"]))
    assert info.as_of == LATER and info.rows == len(served.frame) + len(closed)
    assert closed and all(store.get(c).history.get("closed_date") for c in closed[:50])
    assert "online store:" in served.summary


def test_reasons_are_lists_of_text_and_the_churn_reasons_are_the_services(served):
    frame = served.frame
    # Churn reasons: a non-empty list of strings where there is a churn probability
    has_churn = frame["churn_probability"].notna()
    assert has_churn.any()
    for customer_id, reasons in zip(
        frame.loc[has_churn, "customer_id"], frame.loc[has_churn, "churn_reasons"], strict=True
    ):
        assert len(reasons) > 0 and all(isinstance(r, str) and r for r in reasons), (
            f"{customer_id}: churn reasons {reasons!r}"
        )
    # Suggestion reasons: a non-empty list of strings exactly where there is a suggestion
    for i in range(1, TOP + 1):
        kinds, reasons = frame[f"suggestion_{i}_kind"], frame[f"suggestion_{i}_reasons"]
        for kind, found in zip(kinds, reasons, strict=True):
            if kind is None:
                assert found is None, f"suggestion_{i}: reasons {found!r} without a suggestion"
            else:
                assert len(found) > 0 and all(isinstance(r, str) and r for r in found), (
                    f"suggestion_{i} ({kind}): reasons {found!r}"
                )
    assert frame["suggestion_1_kind"].notna().any()
    # And they are the texts the service gives for the same customers
    indexed = frame.set_index("customer_id", drop=False)
    with served.client() as http:
        for customer_id in service_sample(frame)[:10]:
            row = indexed.loc[customer_id]
            card = http.post("/v1/scores", json={"customer_id": customer_id}).json()
            assert [r["text"] for r in card["churn"]["reasons"]] == list(row["churn_reasons"]), (
                f"{customer_id}: churn reasons differ"
            )
            decision = http.post(
                "/v1/suggestions",
                json={
                    "customer_id": customer_id,
                    "context": {"channel": SERVICE_CHANNEL, "agent_id": "batch-test"},
                    "max_suggestions": TOP,
                },
            ).json()
            assert [[r["text"] for r in s["reasons"]] for s in decision["suggestions"]] == [
                s["reasons"] for s in suggestions_of(row)
            ], f"{customer_id}: suggestion reasons differ"


# -- 5. bad input stops before writing --------------------------------------------------------


def test_without_champion_models_nothing_is_written(trained, tmp_path):
    # Given a home whose MLflow store has no model
    out = tmp_path / "scores"
    env = clean_env(TIERWISE_HOME=str(tmp_path / "empty-home"))
    # When the batch is asked to score
    result = score(env, *score_args(trained.data, AS_OF, out))
    # Then it stops with a clear message and writes no output
    assert result.exit_code != 0, result.output
    assert "no Tierwise models are registered at sqlite:///" in result.output, result.output
    assert "run `tierwise train` first" in result.output, result.output
    assert not out.exists() and not out.is_symlink()
    assert not (tmp_path / f".{out.name}.runs").exists(), "no runs folder either"


def test_a_tampered_champion_stops_the_batch_before_writing(make_dataset, tmp_path):
    # Given a home whose churn champion (a tiny model) had one byte of its booster changed in
    # the artifact store after registration
    home, out = tmp_path / "home", tmp_path / "scores"
    settings = Settings(home=home, mlflow_tracking_uri=None, threads=1)
    name, version = model_name("churn"), register_model(settings, tmp_path, predictor("strong"))
    client(settings.tracking_uri()).set_registered_model_alias(name, CHAMPION, version)
    flip_byte(stored_folder(settings.tracking_uri(), name, version) / "booster.txt")
    # When the batch is asked to score
    result = score(clean_env(TIERWISE_HOME=str(home)), *score_args(make_dataset(), AS_OF, out))
    # Then it stops with the message naming the model, the version and the file
    assert result.exit_code != 0, result.output
    assert (
        f"tierwise-churn v{version}: sha256 mismatch: the model files changed after"
        " registration (booster.txt changed)"
    ) in result.output, result.output
    assert not out.exists() and not out.is_symlink(), "nothing is written"


def test_data_breaking_the_contract_leaves_the_previous_output_and_store(trained, models, tmp_path):
    home, out = tmp_path / "home", tmp_path / "scores"
    store_url = f"sqlite:///{home.resolve() / 'online.db'}"
    # Given a finished run that refreshed the home's online store
    run_batch(
        load_dataset(trained.data),
        AS_OF,
        models,
        PolicyConfig(),
        out,
        BatchOptions(top=TOP, chunk_rows=1000),
        store=OnlineStore(store_url),
    )
    target, files, runs = os.readlink(out), files_of(out), tmp_path / f".{out.name}.runs"
    listing = sorted(p.name for p in runs.iterdir())
    store_before = OnlineStore(store_url).info()
    # And a copy of the data with a transaction of a customer that does not exist
    bad = tmp_path / "bad"
    bad.mkdir()
    for source in trained.data.iterdir():
        (bad / source.name).write_bytes(source.read_bytes())
    [transactions] = [p for p in bad.iterdir() if p.stem == "transactions"]
    frame = pd.read_parquet(transactions)
    stranger = frame.iloc[[0]].assign(customer_id="NO-SUCH-CUSTOMER")
    pd.concat([frame, stranger], ignore_index=True).to_parquet(transactions, index=False)
    # When the batch scores the broken data into the same output and home
    result = score(cli_env(trained, home), *score_args(bad, LATER, out))
    # Then it stops, naming the table and the rule, and nothing changed
    assert result.exit_code != 0, result.output
    assert "transactions.customer_id: must exist in customers" in result.output, result.output
    assert os.readlink(out) == target and files_of(out) == files, "the previous output is kept"
    assert sorted(p.name for p in runs.iterdir()) == listing, "no staging folder was made"
    assert OnlineStore(store_url).info() == store_before, "the online store was not refreshed"


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_an_out_that_is_not_a_tierwise_output_is_left_alone(trained, tmp_path, kind):
    home = tmp_path / "home"
    out = tmp_path / "scores.parquet"
    # Given something else already at the output path
    if kind == "file":
        out.write_bytes(b"someone else's parquet")
    else:
        out.mkdir()
        (out / "part-0.parquet").write_bytes(b"someone else's part")
    before = {p.name: p.read_bytes() for p in ([out] if kind == "file" else out.iterdir())}
    # When the batch is pointed at it
    result = score(cli_env(trained, home), *score_args(trained.data, AS_OF, out))
    # Then it refuses with a message and leaves it as it was
    assert result.exit_code != 0, result.output
    assert "is not a Tierwise batch output" in result.output, result.output
    after = {p.name: p.read_bytes() for p in ([out] if kind == "file" else out.iterdir())}
    assert after == before and not out.is_symlink(), "the file is untouched"
    assert not (tmp_path / f".{out.name}.runs").exists(), "no runs folder beside it"
    with pytest.raises(StoreMissingError):
        OnlineStore(f"sqlite:///{home.resolve() / 'online.db'}", create=False).info()


# -- 6. Spark ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spark():
    """A local Spark (two cores, fast JVM start), as in test_spark.py; stopped after the module."""
    fast_start = {
        "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        "spark.ui.enabled": "false",
    }
    session = spark_session("local[2]", app="tierwise-batch-tests", config=fast_start)
    yield session
    session.stop()


def test_spark_gives_the_output_of_duckdb(trained, models, reference, spark, tmp_path):
    # Given the reference DuckDB run; when the same run goes through Spark
    out = tmp_path / "scores"
    result = run_batch(
        load_dataset(trained.data),
        AS_OF,
        models,
        PolicyConfig(),
        out,
        BatchOptions(top=TOP, chunk_rows=CHUNK_ROWS, engine="spark"),
        spark=spark,
    )
    on_spark, duck = by_customer(read_output(out)), by_customer(reference.frame)
    # Then the same customers, columns and values come out
    assert result.rows == reference.result.rows
    assert list(on_spark.columns) == list(duck.columns), "the same columns, in order"
    pd.testing.assert_series_equal(on_spark["customer_id"], duck["customer_id"])
    assert read_output(out)["customer_id"].is_monotonic_increasing, "parts in customer order"
    exact = [
        "as_of",
        "tier",
        "value_tier",
        "tier_reason",
        "next_tier",
        "churn_risk",
        "control",
        "model_versions",
        *(f"suggestion_{i}_{f}" for i in range(1, TOP + 1) for f in ("kind", "action", "product")),
    ]
    for column in exact:
        same = (on_spark[column] == duck[column]) | (on_spark[column].isna() & duck[column].isna())
        assert same.all(), (
            f"{column}: {(~same).sum()} rows differ, e.g. "
            f"{on_spark.loc[~same, ['customer_id', column]].head(3).to_dict('records')} vs "
            f"{duck.loc[~same, ['customer_id', column]].head(3).to_dict('records')}"
        )
    close = [
        "value",
        "gap_to_next_tier",
        *probability_columns(duck),
        *(
            f"suggestion_{i}_{f}"
            for i in range(1, TOP + 1)
            for f in ("probability", "expected_value")
        ),
    ]
    for column in close:
        x, y = duck[column].to_numpy(np.float64), on_spark[column].to_numpy(np.float64)
        assert (np.isnan(x) == np.isnan(y)).all(), f"{column}: missing in one engine only"
        gap = np.nanmax(np.abs(x - y) / np.maximum(1.0, np.abs(x))) if (~np.isnan(x)).any() else 0
        assert gap <= SPARK_TOLERANCE, f"{column}: max difference {gap}"


# -- 8. declines ---------------------------------------------------------------------------------


def declined(log: DecisionLog, customer_id: str, action: str, response: str, at: dt.datetime):
    """A logged decision that showed ``action`` to the customer, and the response to it."""
    decision_id, suggestion_id = uuid.uuid4().hex, uuid.uuid4().hex[:24]
    log.record(
        DecisionRecord(
            decision_id=decision_id,
            customer_id=customer_id,
            created_at=at,
            context={"channel": "phone"},
            probabilities={},
            suggestions=[{"suggestion_id": suggestion_id, "action": action, "kind": "x"}],
            control=False,
            model_versions={},
        )
    )
    log.add_feedback(decision_id, suggestion_id, response, "agent-1", now=at)


def test_two_declines_in_the_window_pause_an_action_and_skips_do_not(trained, reference, tmp_path):
    home, out = tmp_path / "home", tmp_path / "scores"
    frame = reference.frame.set_index("customer_id", drop=False)
    offered = frame[~frame["control"] & frame["suggestion_1_action"].notna()]
    paused_id, skipped_id, old_id, late_id = offered["customer_id"].head(4)
    action = {
        c: frame.loc[c, "suggestion_1_action"] for c in (paused_id, skipped_id, old_id, late_id)
    }
    # The window ends when the run decides (now), not at the as-of date of the data: these
    # declines all come months after AS_OF, as they do for a base scored on older data.
    now = dt.datetime.now(dt.UTC)
    # Given customers' responses to their first suggestion, in the decision log of the home
    log = DecisionLog(f"sqlite:///{home.resolve() / 'decisions.db'}")
    try:
        for days in (10, 0.01):  # two declines within the 30-day window
            declined(log, paused_id, action[paused_id], "declined", now - dt.timedelta(days))
        for days in (9, 5, 1):  # the agent skipped it three times
            declined(log, skipped_id, action[skipped_id], "skipped", now - dt.timedelta(days))
        for days in (3, 60):  # one decline in the window, one long before it
            declined(log, old_id, action[old_id], "declined", now - dt.timedelta(days))
        for days in (2, 3):  # two declines after the run's decision time: not known yet
            declined(log, late_id, action[late_id], "declined", now + dt.timedelta(days))
    finally:
        log.close()
    # When the batch scores the reference's date with that home
    result = score(
        cli_env(trained, home),
        *score_args(trained.data, AS_OF, out),
        "--top",
        TOP,
        "--chunk-rows",
        CHUNK_ROWS,
        "--no-store",
    )
    assert result.exit_code == 0, result.output
    after = read_output(out).set_index("customer_id", drop=False)
    # Then the twice-declined action is no longer suggested; the customer's others still are
    assert action[paused_id] not in actions_of(after.loc[paused_id]), "two declines pause it"
    others = [a for a in actions_of(frame.loc[paused_id]) if a != action[paused_id]]
    assert set(others) <= set(actions_of(after.loc[paused_id])), "other actions stay"
    # And skips, a decline outside the window and later declines change nothing
    for customer_id in (skipped_id, old_id, late_id):
        assert actions_of(after.loc[customer_id]) == actions_of(frame.loc[customer_id]), customer_id
    unchanged = after.drop(index=paused_id).reset_index(drop=True)
    expected = frame.drop(index=paused_id).reset_index(drop=True)
    pd.testing.assert_frame_equal(unchanged, expected, obj="every other customer's row")


def test_after_two_declines_the_service_and_the_next_nightly_file_both_pause_the_offer(
    trained, served, tmp_path
):
    # Given a customer with suggestions whom the parity tests do not use
    frame = served.frame.set_index("customer_id", drop=False)
    unused = frame[
        frame["suggestion_2_kind"].notna()
        & ~frame["customer_id"].isin(service_sample(served.frame))
    ]
    customer_id = unused["customer_id"].iloc[-1]

    def decide(http: httpx.Client) -> dict:
        answer = http.post(
            "/v1/suggestions",
            json={
                "customer_id": customer_id,
                "context": {"channel": SERVICE_CHANNEL, "agent_id": "batch-test"},
                "max_suggestions": TOP,
            },
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    with served.client() as http:
        decision = decide(http)
        action = decision["suggestions"][0]["action"]
        # When the customer declines the first suggestion in two contacts
        for _ in range(2):
            [s] = [s for s in decision["suggestions"] if s["action"] == action]
            feedback = {
                "decision_id": decision["decision_id"],
                "suggestion_id": s["suggestion_id"],
                "response": "declined",
                "agent_id": "batch-test",
            }
            assert http.post("/v1/feedback", json=feedback).status_code == 200
            decision = decide(http)
    # Then the service pauses it, and says so
    assert action not in [s["action"] for s in decision["suggestions"]]
    [why] = [n for n in decision["not_shown"] if n["action"] == action]
    assert why["reason"] == "paused_by_declines" and why["until"], why
    # And the next nightly run, on the same decision log, pauses it too
    out = tmp_path / "next"
    result = score(
        served.env,
        *score_args(trained.data, LATER, out),
        "--top",
        TOP,
        "--channel",
        SERVICE_CHANNEL,
        "--chunk-rows",
        1000,
        "--no-store",
    )
    assert result.exit_code == 0, result.output
    row = read_output(out).set_index("customer_id").loc[customer_id]
    assert action not in actions_of(row), f"{action}: declined twice, yet ranked by the batch"
    assert actions_of(row) == [s["action"] for s in decision["suggestions"]], (
        "the file and the service show the same list after the declines"
    )
