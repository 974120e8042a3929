"""The sha256 of a model's files: taken when a version is registered, compared when it is loaded.

Training records the digests of a model folder's files in the registry, as a tag of the
model version (``models.registry.DIGEST_TAG``), so that a change to the artifact store does
not also change them; loading compares the downloaded folder with them before any file is
parsed. A changed, missing or extra file, or a file that cannot be parsed, is a
``ModelIntegrityError``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path


class ModelIntegrityError(LookupError):
    """A registered version cannot be used: its files are not the ones registered, its digests
    were never recorded, or its files cannot be parsed.

    A ``LookupError``, like a missing champion: whoever loads models already turns those
    into a message (the service refuses to start, and a reload keeps the previous models).
    """


def file_digests(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (its path relative to ``folder``, with ``/``) -> its
    sha256 in hex, sorted by path."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): _sha256(p) for p in files}


def changed_files(folder: Path, recorded: Mapping[str, str]) -> list[str]:
    """How ``folder`` differs from the ``recorded`` digests, one phrase per file (empty: it
    does not): ``booster.txt changed``, ``meta.json is missing``, ``x.json was not registered``."""
    found = file_digests(folder) if folder.is_dir() else {}
    out = []
    for path in sorted(set(recorded) | set(found)):
        if path not in found:
            out.append(f"{path} is missing")
        elif path not in recorded:
            out.append(f"{path} was not registered")
        elif found[path] != recorded[path]:
            out.append(f"{path} changed")
    return out


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
