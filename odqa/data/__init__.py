"""Loading and validating MRC datasets (examples with id, title, context, question, answers)."""
from odqa.data.loading import (answer_texts, load_mrc_dataset, load_mrc_examples, mrc_features, read_mrc_rows,
                               select_split)
from odqa.data.validation import ValidationReport, validate_examples

__all__ = ["answer_texts", "mrc_features", "load_mrc_dataset", "load_mrc_examples", "read_mrc_rows", "select_split",
           "ValidationReport", "validate_examples"]
