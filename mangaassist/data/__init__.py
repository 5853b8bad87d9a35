"""Data stage: the example contract, loading, cleaning, audit, splits, generator, DataModule."""

from mangaassist.data.schema import INTENTS, PRIORITY, Example, primary_intent, read_examples

__all__ = ["INTENTS", "PRIORITY", "Example", "primary_intent", "read_examples"]
