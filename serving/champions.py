"""The champions that the workers of one `tierwise serve` share, as verified files on disk.

A worker replaced after a crash must be back within seconds and serve the same models as
the others, even if a new champion was promoted since (that reaches the workers by a
reload, not by a crash). So the first worker to load a reload generation's champions from
MLflow copies their verified files to ``home/serving/<generation>/`` with a manifest
(names, versions, run ids and the sha256 recorded at registration); a worker that starts
or follows a reload at that generation loads from there, checked against the same digests,
without MLflow (whose import alone took seconds). ``serving.server`` clears the folder
before the workers of a new `tierwise serve` start, so every run begins from the registry.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from tierwise.settings import Settings

if TYPE_CHECKING:
    from models.scoring import ModelSet

SERVING_DIR = "serving"
MANIFEST = "champions.json"

log = logging.getLogger("tierwise.service")


def serving_dir(settings: Settings) -> Path:
    return settings.home.resolve() / SERVING_DIR


def load_champions(settings: Settings, generation: int, fresh: bool) -> ModelSet:
    """The champions of ``generation``, target and uplift models: from the shared folder when
    it holds them (unless ``fresh``), else from MLflow, then shared.

    Raises:
        LookupError: no champion is registered, or one fails verification
            (``models.registry.load_version``).
    """
    folder = serving_dir(settings) / str(generation)
    if not fresh and (folder / MANIFEST).exists():
        try:
            return _read(folder)
        except (OSError, ValueError, KeyError, LookupError) as err:
            log.warning("the shared champions of generation %d are unusable (%s)", generation, err)
            shutil.rmtree(folder, ignore_errors=True)  # shared again below
    from models.registry import CHAMPION, load_aliased, load_uplift_aliased
    from models.scoring import ModelSet

    uri = settings.tracking_uri()
    models = ModelSet(load_aliased(uri, CHAMPION, threads=1), load_uplift_aliased(uri, CHAMPION))
    _share(folder, models)
    return models


def clear(settings: Settings) -> None:
    """Forget every shared set (a new `tierwise serve` loads from the registry)."""
    shutil.rmtree(serving_dir(settings), ignore_errors=True)


def _read(folder: Path) -> ModelSet:
    from models.registry import load_folder, load_uplift_folder
    from models.scoring import ModelSet

    manifest = json.loads((folder / MANIFEST).read_text())
    models = {}
    for m in manifest["models"]:
        loaded = load_folder(
            m["name"], m["version"], m["alias"], m["run_id"], folder / m["name"], m["sha256"]
        )
        models[loaded.predictor.target] = loaded
    uplift = {}
    for m in manifest.get("uplift", []):
        model = load_uplift_folder(m["name"], m["version"], folder / m["name"], m["sha256"])
        uplift[model.action] = model
    return ModelSet(models, uplift)


def _share(folder: Path, models: ModelSet) -> None:
    """Copy the models' verified files and manifest to ``folder``, atomically (a rename);
    a worker that lost the race to another keeps the other's copy."""
    every = [*models.models.values(), *models.uplift.values()]
    if folder.exists() or any(m.folder is None for m in every):
        return
    staging = folder.parent / f".{folder.name}-{uuid.uuid4().hex[:8]}"
    try:
        staging.mkdir(parents=True, mode=0o700)
        for m in every:
            shutil.copytree(m.folder, staging / m.name)
        manifest = {
            "models": [
                {"name": m.name, "version": m.version, "alias": m.alias, "run_id": m.run_id}
                | {"sha256": m.digests}
                for _, m in sorted(models.models.items())
            ],
            "uplift": [
                {"name": m.name, "version": m.version, "sha256": m.digests}
                for _, m in sorted(models.uplift.items())
            ],
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
        staging.rename(folder)
    except OSError as err:  # another worker shared first, or the disk: serve anyway
        if not folder.exists():
            log.warning("could not share the champions in %s (%s)", folder, err)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
