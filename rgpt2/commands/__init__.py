"""Subcommands of the ``rgpt2`` command line, one module each.

Every module here defines ``register(subparsers)``, which adds its parser and sets
``func`` (a callable taking the parsed arguments and returning an exit code). Modules must
import heavy libraries (torch, transformers, discord) inside ``func``, not at import time,
so that ``rgpt2 --help`` and ``rgpt2 db status`` stay fast.
"""
