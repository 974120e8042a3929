"""The notebooks run top to bottom on the demo data and the models trained on it.

Each jupytext source is converted in memory and executed in a fresh kernel (nbclient); a
cell that raises fails the test with the cell's error. Outputs are never written back.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.py"))
TIMEOUT = 120  # seconds per cell; a whole notebook takes a few seconds on the demo base


def test_the_three_notebooks_are_there():
    names = [p.name for p in NOTEBOOKS]
    assert names == ["01-customer-base.py", "02-model-evaluation.py", "03-policy-what-if.py"], names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path: Path, trained, monkeypatch, tmp_path: Path):
    # Given the demo data and its trained models, found the way a data scientist's would be
    monkeypatch.setenv("TIERWISE_HOME", str(trained.settings.home.resolve()))
    monkeypatch.setenv("TIERWISE_DATA", str(Path(trained.data).resolve()))
    monkeypatch.setenv("TIERWISE_THREADS", "2")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # The kernel imports the packages from the repository, installed or not.
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    notebook = jupytext.read(path)
    assert not any(cell.get("outputs") for cell in notebook.cells), "sources carry no outputs"
    # When every cell is executed in a fresh kernel, in a scratch folder
    client = nbclient.NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=TIMEOUT,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    # Then none raises (nbclient raises CellExecutionError with the cell and traceback)
    client.execute()
    assert len(notebook.cells) > 5, "a notebook tells a story in several cells"
