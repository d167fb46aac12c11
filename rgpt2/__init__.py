"""RGPT-2: rhyming rap verses from a forward and a reverse GPT-2.

A library usable without Discord: corpus -> tokenizer -> training -> two-stage
generation -> rhyme tools -> scorer -> metrics, plus the ``rgpt2`` command line.
Synchronous torch code: no asyncio, no discord imports here.
"""

__version__ = "0.1.0"
