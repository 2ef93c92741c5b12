"""Opt-in int8 inference on CPU: dynamic quantization of the reader's Linear layers.

Weights are stored as int8 and activations quantized on the fly, so the transformer's matrix
products (almost all of its CPU time) run in int8. Uses ``torch.ao.quantization.quantize_dynamic``:
it works in torch 2.13 but is deprecated in favour of torchao; the switch is this one function.
"""
from __future__ import annotations

import warnings

from torch import nn

from odqa.errors import ConfigError

QUANTIZE_CHOICES = ("none", "int8")


def quantize_reader(model: nn.Module, mode: str | None) -> nn.Module:
    """Return ``model`` unchanged for ``none``/None, or an int8 dynamically quantized copy for ``int8``."""
    if mode in (None, "", "none"):
        return model
    if mode != "int8":
        raise ConfigError(f"unknown --quantize {mode!r}; choose one of {', '.join(QUANTIZE_CHOICES)}.")
    import torch

    with warnings.catch_warnings():  # deprecation notices about torch.ao, once per layer: not the user's concern
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model.eval(), {nn.Linear}, dtype=torch.qint8)
