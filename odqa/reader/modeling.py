"""Extractive QA models: any ``AutoModel`` encoder plus a span head (``odqa.reader.heads``), and loading.

All heads live in one :class:`ODQAForQuestionAnswering` class so that training, saving and
loading never depend on which head was chosen: the head name is stored in ``config.json``
(``odqa_head``) next to the backbone's own config, and :func:`load_reader` rebuilds the
right head from it in one call. The backbone config keeps its ``model_type`` (``bert``,
``roberta``...), so ``AutoConfig`` reads the folder and ``AutoModel.from_config`` rebuilds
the exact backbone before the weights are restored from ``model.safetensors``.
"""
from __future__ import annotations

import copy
import inspect
import logging
import os
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from transformers import AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel
from transformers.modeling_outputs import QuestionAnsweringModelOutput

from odqa.errors import ConfigError
from odqa.offline import missing_model_error, resolve_model_name
from odqa.reader.heads import HEADS, build_head, check_head  # noqa: F401  (HEADS re-exported)
from odqa.utils.progress import quiet_weight_loading

logger = logging.getLogger(__name__)

DEFAULT_HEAD = "linear"
DEFAULT_HEAD_DROPOUT = 0.1
# Config fields that hold the encoder's dropout probabilities, by family (BERT/RoBERTa/ELECTRA first).
DROPOUT_FIELDS = {
    "attention": ("attention_probs_dropout_prob", "attention_dropout"),
    "hidden": ("hidden_dropout_prob", "hidden_dropout", "dropout"),
}
READER_CONFIG_KEYS = ("odqa_head", "odqa_head_dropout_ratio", "label_smoothing_factor")


# ---------------------------------------------------------------------------- model
def _backbone_supports(config: PreTrainedConfig, flag: str) -> bool:
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    try:
        backbone_class = MODEL_MAPPING[type(config)]
    except (KeyError, ValueError):
        return False
    return bool(getattr(backbone_class, flag, False))


class ODQAForQuestionAnswering(PreTrainedModel):
    """Encoder (``self.backbone``) + span head (``self.head``) → start/end logits.

    The config is the backbone's own config carrying three extra fields: ``odqa_head``,
    ``odqa_head_dropout_ratio`` and ``label_smoothing_factor``.
    """

    config_class = PreTrainedConfig
    base_model_prefix = "backbone"
    main_input_name = "input_ids"
    # Our loss is a plain per-batch mean: let the Trainer scale it for gradient accumulation.
    accepts_loss_kwargs = False
    supports_gradient_checkpointing = True

    # Attention back-ends are implemented by the backbone: mirror what its class supports.
    @property
    def _supports_sdpa(self) -> bool:
        return _backbone_supports(self.config, "_supports_sdpa")

    @property
    def _supports_flash_attn(self) -> bool:
        return _backbone_supports(self.config, "_supports_flash_attn")

    @property
    def _supports_flex_attn(self) -> bool:
        return _backbone_supports(self.config, "_supports_flex_attn")

    @property
    def _supports_attention_backend(self) -> bool:
        return _backbone_supports(self.config, "_supports_attention_backend")

    def __init__(self, config: PreTrainedConfig) -> None:
        super().__init__(config)
        head = getattr(config, "odqa_head", None) or DEFAULT_HEAD
        check_head(head)
        dropout = getattr(config, "odqa_head_dropout_ratio", None)
        dropout = DEFAULT_HEAD_DROPOUT if dropout is None else float(dropout)
        self.backbone = AutoModel.from_config(config)
        self.head = build_head(head, config.hidden_size, dropout)
        self._backbone_takes_token_types = "token_type_ids" in inspect.signature(self.backbone.forward).parameters
        self.post_init()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args: Any, **kwargs: Any):
        """As in transformers, but the config is read with ``AutoConfig`` so the backbone type is kept."""
        if kwargs.get("config") is None:
            kwargs["config"] = AutoConfig.from_pretrained(pretrained_model_name_or_path)
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    @property
    def head_name(self) -> str:
        return getattr(self.config, "odqa_head", None) or DEFAULT_HEAD

    def get_input_embeddings(self) -> nn.Module:
        return self.backbone.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.backbone.set_input_embeddings(value)

    def span_logits(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Start and end logits from the encoder's last hidden state (also used by the int8 reader,
        whose encoder runs outside PyTorch)."""
        logits = self.head(hidden, attention_mask)
        start_logits, end_logits = (t.squeeze(-1).contiguous() for t in logits.split(1, dim=-1))
        return start_logits, end_logits

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        start_positions: torch.Tensor | None = None,
        end_positions: torch.Tensor | None = None,
        label_smoothing_factor: float | None = None,
        **kwargs: Any,
    ) -> QuestionAnsweringModelOutput:
        """Span logits for every token (nothing masked: post-processing rejects invalid spans).

        ``label_smoothing_factor`` overrides ``config.label_smoothing_factor`` for this call.
        Extra keyword arguments (e.g. ``return_dict``) are accepted and ignored, except
        ``inputs_embeds``/``position_ids`` which are forwarded to the backbone.
        """
        backbone_kwargs: dict[str, Any] = {"attention_mask": attention_mask}
        if token_type_ids is not None and self._backbone_takes_token_types:
            backbone_kwargs["token_type_ids"] = token_type_ids
        for key in ("inputs_embeds", "position_ids"):
            if kwargs.get(key) is not None:
                backbone_kwargs[key] = kwargs[key]
        outputs = self.backbone(input_ids=input_ids, return_dict=True, **backbone_kwargs)
        start_logits, end_logits = self.span_logits(outputs.last_hidden_state, attention_mask)

        loss = None
        if start_positions is not None and end_positions is not None:
            if label_smoothing_factor is None:
                label_smoothing_factor = float(getattr(self.config, "label_smoothing_factor", 0.0) or 0.0)
            loss = span_loss(start_logits, end_logits, start_positions, end_positions, label_smoothing_factor)
        return QuestionAnsweringModelOutput(
            loss=loss,
            start_logits=start_logits,
            end_logits=end_logits,
            hidden_states=getattr(outputs, "hidden_states", None),
            attentions=getattr(outputs, "attentions", None),
        )


def span_loss(start_logits: torch.Tensor, end_logits: torch.Tensor, start_positions: torch.Tensor,
              end_positions: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean of start and end cross-entropies; positions outside the sequence are ignored (as in HF)."""
    if start_positions.dim() > 1:
        start_positions = start_positions.squeeze(-1)
    if end_positions.dim() > 1:
        end_positions = end_positions.squeeze(-1)
    ignored_index = start_logits.size(1)
    start_positions = start_positions.clamp(0, ignored_index).to(start_logits.device)
    end_positions = end_positions.clamp(0, ignored_index).to(end_logits.device)
    start_loss = F.cross_entropy(start_logits, start_positions, ignore_index=ignored_index,
                                 label_smoothing=label_smoothing)
    end_loss = F.cross_entropy(end_logits, end_positions, ignore_index=ignored_index,
                               label_smoothing=label_smoothing)
    return (start_loss + end_loss) / 2


# ---------------------------------------------------------------------------- loading
def _load_config(name: str, original: str, **kwargs: Any) -> PreTrainedConfig:
    hint = ("pass an offline alias (`e5-small`, `minilm`), a folder holding config.json, "
            "or a hub name such as klue/roberta-base")
    if os.path.isdir(name):
        if not os.path.exists(os.path.join(name, "config.json")):
            raise ConfigError(f"{original}: this folder has no config.json, so it is not a model folder; {hint}.")
    elif os.path.exists(name):
        raise ConfigError(f"{original}: is a file, not a model folder; {hint}.")
    else:
        error = missing_model_error(name)
        if error is not None:
            raise error
    try:
        return AutoConfig.from_pretrained(name, **kwargs)
    except (OSError, ValueError) as err:
        raise ConfigError(f"{original}: could not load a model config ({err}); {hint}.") from None


def _is_hf_qa_checkpoint(config: PreTrainedConfig) -> bool:
    return any(a.endswith("ForQuestionAnswering") and a != ODQAForQuestionAnswering.__name__
               for a in (getattr(config, "architectures", None) or []))


def dropout_overrides(config: PreTrainedConfig, attention_dropout: float | None = None,
                      hidden_dropout: float | None = None) -> dict[str, float]:
    """Config fields to set so the encoder uses these dropout probabilities (``None`` keeps the model's).

    Why it matters on CPU: with attention dropout > 0, PyTorch's fused attention kernel cannot be
    used in training; the attention matrix is materialised and a random mask drawn for it, which
    makes a MiniLM-L6 training step at 384 tokens about 3x slower (benchmarks/reader_learning.py).
    """
    overrides: dict[str, float] = {}
    for kind, value in (("attention", attention_dropout), ("hidden", hidden_dropout)):
        if value is None:
            continue
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{kind} dropout must be in [0, 1) (got {value}).")
        field_name = next((f for f in DROPOUT_FIELDS[kind] if hasattr(config, f)), None)
        if field_name is None:
            raise ConfigError(f"{type(config).__name__} has none of the {kind} dropout fields "
                              f"{', '.join(DROPOUT_FIELDS[kind])}; drop the {kind} dropout option for this model.")
        overrides[field_name] = float(value)
    return overrides


def get_model(
    model_name_or_path: str,
    head: str | None = None,
    head_dropout_ratio: float | None = None,
    label_smoothing_factor: float | None = None,
    attention_dropout: float | None = None,
    hidden_dropout: float | None = None,
    config_name: str | None = None,
    **kwargs: Any,
) -> ODQAForQuestionAnswering:
    """Build (or restore) a reader.

    * A folder saved by this module: its saved head is restored when ``head`` is None or
      the same; a different ``head`` keeps the trained backbone and starts a fresh head.
    * An encoder checkpoint (``e5-small``, ``minilm``, a hub name, a folder): the backbone is loaded with
      ``AutoModel.from_pretrained`` and ``head`` (default ``linear``) is freshly initialised.
    * A Hugging Face ``*ForQuestionAnswering`` checkpoint with ``head`` None/``linear``: its
      trained ``qa_outputs`` layer becomes our linear head, so fine-tuned QA models keep working.

    ``head_dropout_ratio`` / ``label_smoothing_factor`` default to the saved values, else 0.1 / 0.0.
    ``attention_dropout`` / ``hidden_dropout`` override the encoder's own dropout (see
    :func:`dropout_overrides`); ``None`` keeps what the checkpoint's config says. ``config_name``: a
    config (folder or hub name) used instead of the checkpoint's own (the weights still come from it).
    Other keyword arguments go to ``from_pretrained`` (e.g. ``revision``, ``attn_implementation``).
    """
    if head is not None:
        check_head(head)
    path = resolve_model_name(model_name_or_path)
    config = saved_config = _load_config(path, model_name_or_path)
    saved_head = getattr(saved_config, "odqa_head", None)
    if config_name:
        config = _load_config(resolve_model_name(config_name), config_name)
        for key in READER_CONFIG_KEYS:  # what the checkpoint's reader was saved with still holds
            if getattr(config, key, None) is None and getattr(saved_config, key, None) is not None:
                setattr(config, key, getattr(saved_config, key))

    overrides: dict[str, Any] = {"odqa_head": head or saved_head or DEFAULT_HEAD}
    if head_dropout_ratio is not None:
        overrides["odqa_head_dropout_ratio"] = float(head_dropout_ratio)
    elif getattr(config, "odqa_head_dropout_ratio", None) is None:
        overrides["odqa_head_dropout_ratio"] = DEFAULT_HEAD_DROPOUT
    if label_smoothing_factor is not None:
        overrides["label_smoothing_factor"] = float(label_smoothing_factor)
    elif getattr(config, "label_smoothing_factor", None) is None:
        overrides["label_smoothing_factor"] = 0.0
    encoder_dropout = dropout_overrides(config, attention_dropout, hidden_dropout)
    overrides.update(encoder_dropout)
    keys = (*READER_CONFIG_KEYS, *encoder_dropout)
    for key, value in overrides.items():
        setattr(config, key, value)

    if saved_head is not None:
        if config.odqa_head == saved_head:
            return ODQAForQuestionAnswering.from_pretrained(path, config=config, **kwargs)
        logger.info("%s: replacing the saved %s head with a new %s head", model_name_or_path, saved_head, head)
        saved = ODQAForQuestionAnswering.from_pretrained(path, **kwargs)
        return _with_backbone(config, saved.backbone, keys)

    if config.odqa_head == "linear" and _is_hf_qa_checkpoint(saved_config):
        return _from_hf_qa_checkpoint(path, config, keys, **kwargs)

    if config_name:
        kwargs["config"] = config
    return _with_backbone(config, AutoModel.from_pretrained(path, **kwargs), keys)


def _with_backbone(config: PreTrainedConfig, backbone: PreTrainedModel,
                   keys: tuple[str, ...] = READER_CONFIG_KEYS) -> ODQAForQuestionAnswering:
    """A fresh head on a copy of ``backbone``'s weights (copied, so no re-initialisation can touch them)."""
    model = ODQAForQuestionAnswering(_reader_config(config, backbone, keys))
    model.backbone.load_state_dict(backbone.state_dict(), strict=True)
    return model


def _reader_config(config: PreTrainedConfig, backbone: PreTrainedModel,
                   keys: tuple[str, ...] = READER_CONFIG_KEYS) -> PreTrainedConfig:
    """The loaded backbone's config (which may hold load-time settings) plus our fields in ``keys``."""
    reader_config = copy.deepcopy(backbone.config)
    for key in keys:
        setattr(reader_config, key, getattr(config, key))
    reader_config.architectures = [ODQAForQuestionAnswering.__name__]
    return reader_config


def _from_hf_qa_checkpoint(path: str, config: PreTrainedConfig, keys: tuple[str, ...] = READER_CONFIG_KEYS,
                           **kwargs: Any) -> ODQAForQuestionAnswering:
    from transformers import AutoModelForQuestionAnswering

    qa_model = AutoModelForQuestionAnswering.from_pretrained(path, **kwargs)
    qa_outputs = getattr(qa_model, "qa_outputs", None)
    base = qa_model.base_model
    if not isinstance(qa_outputs, nn.Linear) or qa_outputs.out_features != 2 or base is qa_model:
        raise ConfigError(
            f"{path}: this {type(qa_model).__name__} checkpoint has no plain `qa_outputs` linear layer to reuse; "
            "pass an explicit head (any but linear) together with an encoder checkpoint."
        )
    model = ODQAForQuestionAnswering(_reader_config(config, base, keys))
    model.backbone.load_state_dict(base.state_dict(), strict=False)
    model.head.qa_outputs.load_state_dict(qa_outputs.state_dict())
    return model


def load_encoder(name_or_path: str, **kwargs: Any) -> PreTrainedModel:
    """A bare encoder (``AutoModel``) by alias, hub name or folder, with the same clear errors as the reader."""
    path = resolve_model_name(name_or_path)
    _load_config(path, name_or_path)
    with quiet_weight_loading():
        return AutoModel.from_pretrained(path, **kwargs)


def load_reader(path: str, **kwargs: Any) -> ODQAForQuestionAnswering:
    """Load a trained reader in one call, with the head it was saved with.

    Refuses a bare encoder (its span head would be random): use :func:`get_model` to train one.
    """
    resolved = resolve_model_name(path)
    config = _load_config(resolved, path)
    if getattr(config, "odqa_head", None) is None and not _is_hf_qa_checkpoint(config):
        raise ConfigError(
            f"{path}: not a trained reader (config.json has no `odqa_head` and is not a *ForQuestionAnswering "
            "model); train one first, or build a new reader with get_model()."
        )
    with quiet_weight_loading():
        return get_model(path, **kwargs)


# ---------------------------------------------------------------------------- introspection
def _top_level_modules(model: nn.Module) -> str:
    names = [name for name, _ in model.named_children()]
    return ", ".join(names) if names else "(none)"


def _get_submodule(model: nn.Module, name: str, what: str) -> nn.Module:
    try:
        module = model.get_submodule(name)
    except AttributeError:
        module = None
    if not isinstance(module, nn.Module):
        raise ConfigError(
            f"{type(model).__name__} has no {what} module {name!r}; its top-level modules are: "
            f"{_top_level_modules(model)}."
        )
    return module


def find_backbone(model: nn.Module, name: str | None = None) -> nn.Module:
    """The encoder inside a QA model (``model.backbone``, ``model.bert``, ``model.roberta``...).

    ``name`` (a dotted attribute path) overrides the automatic search.
    """
    if name:
        return _get_submodule(model, name, "backbone")
    candidates = ["backbone", getattr(model, "base_model_prefix", None) or ""]
    for candidate in candidates:
        module = getattr(model, candidate, None) if candidate else None
        if isinstance(module, nn.Module) and module is not model:
            return module
    # A bare encoder (e.g. BertModel) is its own backbone.
    if isinstance(model, PreTrainedModel) and isinstance(getattr(model, "embeddings", None), nn.Module):
        return model
    raise ConfigError(
        f"cannot find the encoder backbone of {type(model).__name__}: pass its attribute name "
        f"(backbone_name); its top-level modules are: {_top_level_modules(model)}."
    )


def find_embeddings(model: nn.Module, name: str | None = None, backbone_name: str | None = None) -> nn.Module:
    """The backbone's embeddings block (word + position + type embeddings and their LayerNorm).

    ``name`` is a dotted path from ``model`` (e.g. ``"bert.embeddings"``) overriding the search.
    """
    if name:
        return _get_submodule(model, name, "embeddings")
    backbone = find_backbone(model, backbone_name)
    embeddings = getattr(backbone, "embeddings", None)
    if isinstance(embeddings, nn.Module):
        return embeddings
    get_input = getattr(backbone, "get_input_embeddings", None)
    if callable(get_input):
        try:
            module = get_input()
        except NotImplementedError:
            module = None
        if isinstance(module, nn.Module):
            return module
    raise ConfigError(
        f"cannot find the embeddings of {type(backbone).__name__}: pass their dotted name; "
        f"its top-level modules are: {_top_level_modules(backbone)}."
    )
