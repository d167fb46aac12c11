"""Versioned model directories with a current version and a rollback history per direction.

Layout under ``root``::

    reverse/v0003-job12/     a finished model directory (never modified once renamed here)
    reverse/.staging-job13/  where a running fine-tune writes (renamed into place on success)
    current.json             {"current": {"reverse": "...", ...}, "history": {"reverse": [...]}}

``current.json`` is replaced atomically (temp file + rename), so a crash leaves either the old
or the new state. A direction with no entry serves its *default* (the configured or shipped
model), which is never deleted or moved.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from rgpt2.errors import RGPT2Error
from rgpt2.tokens import DIRECTIONS

STATE_FILE = "current.json"
_VERSION = re.compile(r"^v(\d{4,})-")


class NothingToRollBack(RGPT2Error):
    """There is no earlier version of a model to go back to."""


class ModelStore:
    def __init__(self, root: str | Path, defaults: dict[str, str | Path]) -> None:
        self.root = Path(root)
        self.defaults = {d: Path(p) for d, p in defaults.items()}
        self.root.mkdir(parents=True, exist_ok=True)

    # -- state -------------------------------------------------------------------------

    def _read(self) -> dict[str, Any]:
        file = self.root / STATE_FILE
        if not file.is_file():
            return {"current": {}, "history": {}}
        data = json.loads(file.read_text(encoding="utf-8"))
        data.setdefault("current", {})
        data.setdefault("history", {})
        return data

    def _write(self, data: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".current-", suffix=".json", dir=self.root)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.root / STATE_FILE)

    def current(self, direction: str) -> Path:
        """The model directory serving ``direction`` (the default until a version is promoted)."""
        _check(direction)
        path = self._read()["current"].get(direction)
        if path is not None:
            return Path(path)
        if direction not in self.defaults:
            raise RGPT2Error(f"no {direction} model is configured")
        return self.defaults[direction]

    def history(self, direction: str) -> list[Path]:
        """Earlier current versions, oldest first (the last one is what rollback restores)."""
        _check(direction)
        return [Path(p) for p in self._read()["history"].get(direction, [])]

    # -- versions ----------------------------------------------------------------------

    def staging_dir(self, direction: str, label: str) -> Path:
        """An empty directory (inside the store) for a model being written; see :meth:`commit`."""
        _check(direction)
        base = self.root / direction
        base.mkdir(parents=True, exist_ok=True)
        staging = base / f".staging-{label}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        return staging

    def commit(self, direction: str, staged_model: str | Path, label: str) -> Path:
        """Move a finished model directory into the store as the next version (one rename)."""
        _check(direction)
        base = self.root / direction
        base.mkdir(parents=True, exist_ok=True)
        numbers = [int(m.group(1)) for p in base.iterdir() if (m := _VERSION.match(p.name))]
        final = base / f"v{max(numbers, default=0) + 1:04d}-{label}"
        os.replace(staged_model, final)
        return final

    def promote(self, direction: str, path: str | Path) -> Path:
        """Make ``path`` current; the previous current goes on the rollback history."""
        _check(direction)
        data = self._read()
        previous = str(self.current(direction))
        data["current"][direction] = str(Path(path))
        data["history"].setdefault(direction, []).append(previous)
        self._write(data)
        return Path(path)

    def rollback(self, direction: str) -> tuple[Path, Path]:
        """Make the previous version current again; returns (restored, retired)."""
        _check(direction)
        data = self._read()
        history: list[str] = data["history"].get(direction, [])
        if not history:
            raise NothingToRollBack(f"there is no earlier {direction} model to roll back to")
        retired = self.current(direction)
        restored = history.pop()
        data["current"][direction] = restored
        self._write(data)
        return Path(restored), retired

    def discard(self, path: str | Path) -> None:
        """Delete a version or staging dir that never went live (never a default or current)."""
        p = Path(path).resolve()
        protected = {q.resolve() for q in self.defaults.values()}
        protected |= {Path(v).resolve() for v in self._read()["current"].values()}
        if p in protected or self.root.resolve() not in p.parents:
            raise RGPT2Error(f"refusing to delete {path}: it is serving or outside the store")
        shutil.rmtree(p, ignore_errors=True)


def _check(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
