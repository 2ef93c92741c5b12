"""Moved to :mod:`odqa.reader.abstention`; this name stays so that existing imports keep working."""
from odqa.reader.abstention import (  # noqa: F401
    NO_ANSWER_REASON,
    THRESHOLD_AUTO,
    THRESHOLD_FILE,
    THRESHOLD_HELP,
    THRESHOLD_OFF,
    abstains,
    apply_threshold,
    no_answer_scores_from_nbest,
    read_stored_threshold,
    resolve_threshold,
    write_threshold,
)
