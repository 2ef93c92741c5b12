"""Opt-in int8 inference on CPU.

* ``int8`` — static post-training quantization of the reader's ENCODER with OpenVINO and NNCF:
  weights and activations in int8 (the attention products too), activation ranges calibrated on
  a sample of real windows; the span head (linear, BiLSTM or CNN) stays in PyTorch on the
  encoder's output. About 2.5x our fp32 forward pass on a 2-core AVX-512 VNNI CPU, see BENCHMARKS.md.
  Needs ``pip install "odqa[int8]"`` (openvino, nncf).
* ``int8-dynamic`` — PyTorch dynamic quantization of the Linear layers
  (``torch.ao.quantization.quantize_dynamic``): nothing to install, no calibration, but only the
  Linear layers speed up (~1.4x).

Dynamic quantization cannot reach 2x: on a MiniLM forward at 384 tokens the Linear layers are
~64% of the time; attention, GELU and copies stay in fp32. Static quantization covers those.

OpenVINO's converter and NNCF send usage telemetry unless told otherwise; odqa imports them with
``openvino_telemetry`` blocked (both then use their built-in no-op stand-in), so nothing is sent.
(If your program imported openvino itself before, its own settings apply: opt out with
``opt_in_out --opt_out``.)
"""
from __future__ import annotations

import logging
import sys
import time
import warnings
from typing import Any, Sequence

import numpy as np

from odqa.errors import ConfigError

logger = logging.getLogger(__name__)

QUANTIZE_CHOICES = ("none", "int8", "int8-dynamic")
DEFAULT_CALIBRATION_WINDOWS = 128
ENCODER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def quantize_reader(model: Any, mode: str | None) -> Any:
    """``model`` unchanged (``none``), a static-int8 wrapper that calibrates before its first use (``int8``),
    or a dynamically quantized copy (``int8-dynamic``)."""
    if mode in (None, "", "none"):
        return model
    if mode == "int8":
        return StaticInt8Reader(model)
    if mode == "int8-dynamic":
        import torch
        from torch import nn

        with warnings.catch_warnings():  # deprecation notices about torch.ao, once per layer: not the user's concern
            warnings.simplefilter("ignore")
            return torch.ao.quantization.quantize_dynamic(model.eval(), {nn.Linear}, dtype=torch.qint8)
    raise ConfigError(f"unknown --quantize {mode!r}; choose one of {', '.join(QUANTIZE_CHOICES)}.")


def _import_openvino():
    """openvino and nncf, with their telemetry blocked (they fall back to a no-op when it is absent)."""
    sys.modules.setdefault("openvino_telemetry", None)  # a None entry makes `import openvino_telemetry` fail
    try:
        import nncf
        import openvino
    except ImportError as err:
        raise ConfigError(f"--quantize int8 needs OpenVINO and NNCF ({err.name} is missing): "
                          "`pip install \"odqa[int8]\"`, or use --quantize int8-dynamic (PyTorch only, "
                          "slower).") from None
    return openvino, nncf


def _encoder_module(backbone: Any):
    """An encoder as a function of named tensors (inputs → last hidden state), for conversion."""
    from torch import nn

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = backbone

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                inputs["token_type_ids"] = token_type_ids
            return self.backbone(**inputs, return_dict=True).last_hidden_state

    return Encoder().eval()


class StaticInt8Encoder:
    """Any Hugging Face encoder in OpenVINO int8 (weights and activations): inputs → last hidden state.

    The reader's backbone (:class:`StaticInt8Reader`) and the dense retriever's encoder
    (``odqa.dense.encoder``) both run through it. :meth:`calibrate` on a few hundred real inputs first.
    """

    def __init__(self, backbone: Any, num_threads: int | None = None, takes_token_types: bool = True) -> None:
        import torch

        self.openvino, self.nncf = _import_openvino()
        self.backbone = backbone.eval()
        self.input_names = tuple(n for n in ENCODER_INPUTS if n != "token_type_ids" or takes_token_types)
        self.num_threads = num_threads or torch.get_num_threads()
        self._compiled = None
        self.quantized_model = None
        self.calibration_seconds: float | None = None

    @property
    def calibrated(self) -> bool:
        return self._compiled is not None

    def calibrate(self, inputs: Sequence[dict[str, Sequence[int]]]) -> None:
        """Convert the encoder, quantize it with activation ranges measured on ``inputs``, compile it."""
        if not inputs:
            raise ConfigError("int8 calibration needs at least one input to measure.")
        import torch

        ov, nncf = self.openvino, self.nncf
        start = time.perf_counter()
        # the encoder's inputs that the tokenizer gives (some tokenizers make no token_type_ids)
        self.input_names = tuple(n for n in self.input_names if n in inputs[0])
        samples = [{n: np.asarray([w[n]], dtype=np.int64) for n in self.input_names} for w in inputs]
        encoder = _encoder_module(self.backbone)
        example = {n: torch.from_numpy(samples[0][n]) for n in self.input_names}
        shapes = [(n, [-1, -1], ov.Type.i64) for n in self.input_names]
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python branches
            ov_model = ov.convert_model(encoder, example_input=example, input=shapes)
        quantized = nncf.quantize(ov_model, nncf.Dataset(samples), model_type=nncf.ModelType.TRANSFORMER,
                                  subset_size=len(samples))
        self.quantized_model = quantized
        self.compile()
        self.calibration_seconds = time.perf_counter() - start
        logger.info("int8 encoder calibrated on %d inputs in %.1f s", len(samples), self.calibration_seconds)

    def compile(self, **options: Any) -> None:
        """(Re)compile the quantized model for this CPU; ``options`` are OpenVINO CPU properties."""
        config = {"INFERENCE_PRECISION_HINT": "f32",  # int8 where quantized, fp32 elsewhere (not bf16)
                  "INFERENCE_NUM_THREADS": self.num_threads, **options}
        self._compiled = self.openvino.Core().compile_model(self.quantized_model, "CPU", config)
        self._request = self._compiled.create_infer_request()

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, **_: Any):
        """The last hidden state (a float32 tensor) of a padded batch."""
        import torch

        if not self.calibrated:
            raise ConfigError("this int8 encoder is not calibrated yet: call calibrate(inputs) first.")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        tensors = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        result = self._request.infer({n: tensors[n].numpy() for n in self.input_names})
        return torch.from_numpy(np.array(result[self._compiled.outputs[0]]))


class StaticInt8Reader:
    """A reader whose encoder runs in OpenVINO int8 (:class:`StaticInt8Encoder`) and whose head runs in PyTorch.

    Call :meth:`calibrate` with a few hundred real windows first (``ExtractiveReader`` does it on
    the windows it is about to read when nobody did); then it is called like the model:
    ``reader(input_ids=..., attention_mask=..., token_type_ids=...)`` → start/end logits.
    """

    needs_calibration = True

    def __init__(self, model: Any, num_threads: int | None = None) -> None:
        _import_openvino()
        if not hasattr(model, "backbone") or not hasattr(model, "span_logits"):
            raise ConfigError(f"--quantize int8 needs an odqa reader (backbone + head), got {type(model).__name__}; "
                              "use --quantize int8-dynamic for other models.")
        self.model = model.eval()
        self.encoder = StaticInt8Encoder(model.backbone, num_threads,
                                         getattr(model, "_backbone_takes_token_types", True))

    @property
    def calibrated(self) -> bool:
        return self.encoder.calibrated

    @property
    def calibration_seconds(self) -> float | None:
        return self.encoder.calibration_seconds

    def eval(self) -> "StaticInt8Reader":
        return self

    def calibrate(self, windows: Sequence[dict[str, Sequence[int]]]) -> None:
        """Quantize the encoder with activation ranges measured on ``windows`` (question + passage)."""
        if not windows:
            raise ConfigError("int8 calibration needs at least one window (question + passage) to measure.")
        self.encoder.calibrate(windows)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, **_: Any):
        """Start/end logits (a ``QuestionAnsweringModelOutput``) for a padded batch of windows."""
        import torch
        from transformers.modeling_outputs import QuestionAnsweringModelOutput

        if not self.calibrated:
            raise ConfigError("this int8 reader is not calibrated yet: call calibrate(windows) first.")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.encoder(input_ids, attention_mask, token_type_ids)
        with torch.inference_mode():
            start_logits, end_logits = self.model.span_logits(hidden, attention_mask)
        return QuestionAnsweringModelOutput(start_logits=start_logits, end_logits=end_logits)


def calibration_sample(windows: dict[str, list], size: int, seed: int = 0) -> list[dict[str, list[int]]]:
    """``size`` windows drawn at random (seeded) from columns ``{input_ids: [...], ...}``."""
    n = len(windows["input_ids"])
    rows = np.random.default_rng(seed).choice(n, size=min(size, n), replace=False)
    return [{c: windows[c][int(i)] for c in windows} for i in sorted(rows)]
