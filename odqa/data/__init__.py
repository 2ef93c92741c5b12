"""Loading and validating MRC datasets (examples with id, title, context, question, answers)."""
from odqa.data.loading import mrc_features, load_mrc_dataset, load_mrc_examples
from odqa.data.validation import ValidationReport, validate_examples

__all__ = ["mrc_features", "load_mrc_dataset", "load_mrc_examples", "ValidationReport", "validate_examples"]
