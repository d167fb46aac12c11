"""The starter models shipped inside the package (rgpt2/models/{forward,reverse,scorer}).

Found through :mod:`importlib.resources`, so they load from an installed wheel as well as
from a checkout. ``scripts/train_starter.sh`` is the recipe that makes them.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

STARTER_KINDS: tuple[str, ...] = ("forward", "reverse", "scorer")


def shipped_model(kind: str) -> Path:
    """Where the starter model ``kind`` lives in the installed package (it may be absent)."""
    if kind not in STARTER_KINDS:
        raise ValueError(f"kind must be one of {STARTER_KINDS}, not {kind!r}")
    return Path(str(resources.files("rgpt2").joinpath("models", kind)))
