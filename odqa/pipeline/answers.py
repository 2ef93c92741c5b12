"""Moved to :mod:`odqa.reader.answers`; this name stays so that existing imports keep working."""
from odqa.reader.answers import Answer, PassageToRead  # noqa: F401
