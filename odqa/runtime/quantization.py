"""Opt-in faster CPU inference for the reader: int8, or OpenVINO without quantization.

* ``int8`` — static post-training quantization of the reader's ENCODER with OpenVINO and NNCF:
  weights and activations in int8 (the attention products too), activation ranges calibrated on
  a sample of real windows; the span head (linear, BiLSTM or CNN) stays in PyTorch on the
  encoder's output. About 2.5x our fp32 forward pass on a 2-core AVX-512 VNNI CPU, see BENCHMARKS.md.
  Needs ``pip install "odqa[int8]"`` (openvino, nncf).
* ``int8-dynamic`` — PyTorch dynamic quantization of the Linear layers
  (``torch.ao.quantization.quantize_dynamic``): nothing to install, no calibration, but only the
  Linear layers speed up (~1.4x).
* ``fp32-openvino`` — the encoder compiled by OpenVINO in float32: the same numbers as PyTorch (within
  float rounding), from OpenVINO's fused CPU kernels; nothing to calibrate. ~1.3x our PyTorch forward on a
  2-core AVX-512 EPYC (BENCHMARKS.md, peers reader).
* ``bf16`` — the same, with OpenVINO's bfloat16 inference precision: ~2.2x on CPUs with bfloat16
  instructions (AVX-512 BF16, AMX); logits move by ~1e-2. Where the CPU has none, OpenVINO runs float32
  and odqa says so once.

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
from functools import partial
from typing import Any, Callable, Sequence

import numpy as np

from odqa.errors import ConfigError

logger = logging.getLogger(__name__)

QUANTIZE_CHOICES = ("none", "int8", "int8-dynamic", "fp32-openvino", "bf16")
# --quantize value -> OpenVINO inference precision of the unquantized encoder
OPENVINO_PRECISIONS = {"fp32-openvino": "f32", "bf16": "bf16"}
DEFAULT_CALIBRATION_WINDOWS = 128
ENCODER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def quantize_reader(model: Any, mode: str | None) -> Any:
    """``model`` unchanged (``none``), a static-int8 wrapper that calibrates before its first use (``int8``),
    a dynamically quantized copy (``int8-dynamic``), or the encoder compiled by OpenVINO unquantized
    (``fp32-openvino``, ``bf16``)."""
    if mode in (None, "", "none"):
        return model
    if mode == "int8":
        return StaticInt8Reader(model)
    if mode in OPENVINO_PRECISIONS:
        return OpenVINOReader(model, mode)
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
        raise ConfigError(f"--quantize int8, fp32-openvino and bf16 need OpenVINO and NNCF ({err.name} is missing): "
                          "`pip install \"odqa[int8]\"`, or use --quantize none or int8-dynamic (PyTorch only, "
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


class _OpenVINOEncoder:
    """An encoder compiled by OpenVINO: inputs (padded batch) → last hidden state as a float32 tensor.

    Subclasses say how the OpenVINO model is made: quantized after a calibration (:class:`StaticInt8Encoder`)
    or converted as it is on the first batch (:class:`OpenVINOEncoder`).
    """

    precision = "f32"  # OpenVINO's INFERENCE_PRECISION_HINT: what runs in float where nothing is int8

    def __init__(self, backbone: Any, num_threads: int | None = None, takes_token_types: bool = True) -> None:
        import torch

        self.openvino, self.nncf = _import_openvino()
        self.backbone = backbone.eval()
        self.input_names = tuple(n for n in ENCODER_INPUTS if n != "token_type_ids" or takes_token_types)
        self.num_threads = num_threads or torch.get_num_threads()
        self._compiled = None
        self.ov_model = None  # the OpenVINO model compiled (quantized or not)

    @property
    def calibrated(self) -> bool:
        return self._compiled is not None

    def _convert(self, example: dict[str, np.ndarray]) -> Any:
        """The encoder as an OpenVINO model with dynamic batch and length, traced on ``example``."""
        import torch

        ov = self.openvino
        tensors = {n: torch.from_numpy(example[n]) for n in self.input_names}
        shapes = [(n, [-1, -1], ov.Type.i64) for n in self.input_names]
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python branches
            return ov.convert_model(_encoder_module(self.backbone), example_input=tensors, input=shapes)

    def compile(self, **options: Any) -> None:
        """(Re)compile the model for this CPU; ``options`` are OpenVINO CPU properties."""
        config = {"INFERENCE_PRECISION_HINT": self.precision, "INFERENCE_NUM_THREADS": self.num_threads, **options}
        self._compiled = self.openvino.Core().compile_model(self.ov_model, "CPU", config)
        self._request = self._compiled.create_infer_request()

    def _prepare(self, inputs: dict[str, np.ndarray]) -> None:
        """Called before a batch while nothing is compiled."""
        raise ConfigError("this int8 encoder is not calibrated yet: call calibrate(inputs) first.")

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, **_: Any):
        """The last hidden state (a float32 tensor) of a padded batch."""
        import torch

        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        tensors = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        inputs = {n: tensors[n].numpy() for n in self.input_names}
        if not self.calibrated:
            self._prepare(inputs)
        result = self._request.infer(inputs)
        return torch.from_numpy(np.array(result[self._compiled.outputs[0]]))


class StaticInt8Encoder(_OpenVINOEncoder):
    """Any Hugging Face encoder in OpenVINO int8 (weights and activations): inputs → last hidden state.

    The reader's backbone (:class:`StaticInt8Reader`) and the dense retriever's encoder
    (``odqa.dense.encoder``) both run through it. :meth:`calibrate` on a few hundred real inputs first.
    """

    precision = "f32"  # int8 where quantized, fp32 elsewhere (not bf16)

    def __init__(self, backbone: Any, num_threads: int | None = None, takes_token_types: bool = True) -> None:
        super().__init__(backbone, num_threads, takes_token_types)
        self.calibration_seconds: float | None = None

    def calibrate(self, inputs: Sequence[dict[str, Sequence[int]]]) -> None:
        """Convert the encoder, quantize it with activation ranges measured on ``inputs``, compile it."""
        if not inputs:
            raise ConfigError("int8 calibration needs at least one input to measure.")
        nncf = self.nncf
        start = time.perf_counter()
        # the encoder's inputs that the tokenizer gives (some tokenizers make no token_type_ids)
        self.input_names = tuple(n for n in self.input_names if n in inputs[0])
        samples = [{n: np.asarray([w[n]], dtype=np.int64) for n in self.input_names} for w in inputs]
        self.ov_model = nncf.quantize(self._convert(samples[0]), nncf.Dataset(samples),
                                      model_type=nncf.ModelType.TRANSFORMER, subset_size=len(samples))
        self.compile()
        self.calibration_seconds = time.perf_counter() - start
        logger.info("int8 encoder calibrated on %d inputs in %.1f s", len(samples), self.calibration_seconds)


class OpenVINOEncoder(_OpenVINOEncoder):
    """An encoder compiled by OpenVINO unquantized, in ``precision`` ``f32`` or ``bf16``; converted and compiled
    on its first batch (a few seconds), so nothing has to be calibrated."""

    def __init__(self, backbone: Any, precision: str = "f32", num_threads: int | None = None,
                 takes_token_types: bool = True) -> None:
        if precision not in OPENVINO_PRECISIONS.values():
            raise ConfigError(f"unknown OpenVINO precision {precision!r}; choose f32 or bf16.")
        super().__init__(backbone, num_threads, takes_token_types)
        self.precision = precision

    def _prepare(self, inputs: dict[str, np.ndarray]) -> None:
        start = time.perf_counter()
        self.ov_model = self._convert(inputs)
        if self.precision == "bf16" and "BF16" not in self.openvino.Core().get_property(
                "CPU", "OPTIMIZATION_CAPABILITIES"):
            logger.warning("--quantize bf16: this CPU has no bfloat16 instructions, so OpenVINO computes in float32 "
                           "(as --quantize fp32-openvino).")
        self.compile()
        logger.info("encoder compiled by OpenVINO (%s) in %.1f s", self.precision, time.perf_counter() - start)


class _OpenVINOReader:
    """A reader whose encoder OpenVINO runs and whose head (linear, BiLSTM or CNN) runs in PyTorch on the
    encoder's output; called like the model: ``reader(input_ids=..., attention_mask=..., token_type_ids=...)``
    → start/end logits. Subclasses choose the encoder."""

    needs_calibration = False

    def __init__(self, model: Any, mode: str, encoder: Callable[..., _OpenVINOEncoder],
                 num_threads: int | None = None) -> None:
        _import_openvino()
        if not hasattr(model, "backbone") or not hasattr(model, "span_logits"):
            raise ConfigError(f"--quantize {mode} needs an odqa reader (backbone + head), got "
                              f"{type(model).__name__}; use --quantize int8-dynamic for other models.")
        self.mode = mode
        self.model = model.eval()
        self.encoder = encoder(model.backbone, num_threads=num_threads,
                               takes_token_types=getattr(model, "_backbone_takes_token_types", True))

    @property
    def calibrated(self) -> bool:
        return self.encoder.calibrated

    def eval(self) -> "_OpenVINOReader":
        return self

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, **_: Any):
        """Start/end logits (a ``QuestionAnsweringModelOutput``) for a padded batch of windows."""
        import torch
        from transformers.modeling_outputs import QuestionAnsweringModelOutput

        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.encoder(input_ids, attention_mask, token_type_ids)
        with torch.inference_mode():
            start_logits, end_logits = self.model.span_logits(hidden, attention_mask)
        return QuestionAnsweringModelOutput(start_logits=start_logits, end_logits=end_logits)


class StaticInt8Reader(_OpenVINOReader):
    """A reader whose encoder runs in OpenVINO int8 (:class:`StaticInt8Encoder`).

    Call :meth:`calibrate` with a few hundred real windows first (``ExtractiveReader`` does it on
    the windows it is about to read when nobody did); until then a call is refused.
    """

    needs_calibration = True

    def __init__(self, model: Any, num_threads: int | None = None) -> None:
        super().__init__(model, "int8", StaticInt8Encoder, num_threads)

    @property
    def calibration_seconds(self) -> float | None:
        return self.encoder.calibration_seconds

    def calibrate(self, windows: Sequence[dict[str, Sequence[int]]]) -> None:
        """Quantize the encoder with activation ranges measured on ``windows`` (question + passage)."""
        if not windows:
            raise ConfigError("int8 calibration needs at least one window (question + passage) to measure.")
        self.encoder.calibrate(windows)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, **kwargs: Any):
        if not self.calibrated:
            raise ConfigError("this int8 reader is not calibrated yet: call calibrate(windows) first.")
        return super().__call__(input_ids, attention_mask, token_type_ids, **kwargs)


class OpenVINOReader(_OpenVINOReader):
    """A reader whose encoder OpenVINO runs unquantized (:class:`OpenVINOEncoder`): ``mode`` ``fp32-openvino``
    or ``bf16``; compiled on its first batch, so nothing to calibrate."""

    def __init__(self, model: Any, mode: str = "fp32-openvino", num_threads: int | None = None) -> None:
        if mode not in OPENVINO_PRECISIONS:
            raise ConfigError(f"unknown OpenVINO mode {mode!r}; choose one of {', '.join(OPENVINO_PRECISIONS)}.")
        super().__init__(model, mode, partial(OpenVINOEncoder, precision=OPENVINO_PRECISIONS[mode]), num_threads)


def calibration_sample(windows: dict[str, list], size: int, seed: int = 0) -> list[dict[str, list[int]]]:
    """``size`` windows drawn at random (seeded) from columns ``{input_ids: [...], ...}``."""
    n = len(windows["input_ids"])
    rows = np.random.default_rng(seed).choice(n, size=min(size, n), replace=False)
    return [{c: windows[c][int(i)] for c in windows} for i in sorted(rows)]
