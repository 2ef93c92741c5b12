"""Moved to :mod:`odqa.runtime.quantization` (below both its users, the reader and dense retrieval's
encoder); this name stays so that existing imports keep working."""
from odqa.runtime.quantization import (  # noqa: F401
    DEFAULT_CALIBRATION_WINDOWS,
    ENCODER_INPUTS,
    QUANTIZE_CHOICES,
    StaticInt8Encoder,
    StaticInt8Reader,
    calibration_sample,
    quantize_reader,
)
