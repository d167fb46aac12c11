"""Shared fixtures: tiny corpora and models built in the test, never ../shared/data."""

from __future__ import annotations

import os

import pytest

# tests never reach a model hub
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# tiny models on shared cores: one thread each (spinning OpenMP threads slow them down
# many times over); set before torch is imported so child processes inherit it too
os.environ.setdefault("OMP_NUM_THREADS", "1")

TINY_VERSES: list[list[str]] = [
    [
        "I got money in the bank",
        "you know I never drank",
        "the city is my home",
        "I been writing on my own",
    ],
    [
        "we came up from the street",
        "never had enough to eat",
        "now the crowd is on its feet",
        "every bar is hard to beat",
    ],
    [
        "my mama told me stay true",
        "nothing that I cannot do",
        "all the haters never knew",
        "I was coming for the crew",
    ],
    [
        "rolling through the night",
        "every single light",
        "holding on so tight",
        "everything is right",
    ],
    [
        "flow so cold it make it snow",
        "everywhere I go",
        "they already know",
        "stealing the whole show",
    ],
    ["gold chain on my neck", "never write a check", "paper on the deck", "what you expect"],
]


@pytest.fixture
def tiny_verses() -> list[list[str]]:
    return [list(v) for v in TINY_VERSES]


@pytest.fixture(scope="session", autouse=True)
def one_thread() -> None:
    """One torch thread even where OMP_NUM_THREADS was already set to more."""
    import torch

    torch.set_num_threads(1)
