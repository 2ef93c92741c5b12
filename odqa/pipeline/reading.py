"""Moved to :mod:`odqa.reader.extractive` (the reader's inference class now lives beside its forward loop and
post-processing); this name stays so that existing imports keep working."""
from odqa.reader.extractive import (  # noqa: F401
    CONCAT_SEPARATOR,
    DEFAULT_RETRIEVER_WEIGHT,
    DEFAULT_TOP_K,
    READ_MODES,
    ExtractiveReader,
    ReadOptions,
)
