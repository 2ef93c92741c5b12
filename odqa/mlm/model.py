"""Any encoder with a masked-language-model head, and an MLM loss computed on masked positions only.

A checkpoint without an MLM head (e5-small is a bare ``BertModel``) gets one from
``AutoModelForMaskedLM``: the transform layer freshly initialised, the decoder tied to the word
embeddings (``tie_word_embeddings``), so no 250k x 384 output matrix is added. The loss runs the head on
the masked positions only: with a 250k vocabulary, logits for every position of a 16 x 256 batch would
take 4 GB.
"""
from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F
from transformers import TrainerCallback
from transformers.modeling_outputs import MaskedLMOutput

from odqa.errors import ConfigError
from odqa.mlm.masking import IGNORE_INDEX

HEAD_ATTRIBUTES = ("cls", "lm_head", "generator_lm_head", "pred_layer")


def mlm_head(model) -> torch.nn.Module:
    for name in HEAD_ATTRIBUTES:
        head = getattr(model, name, None)
        if isinstance(head, torch.nn.Module):
            return head
    raise ConfigError(f"{type(model).__name__}: cannot find its MLM head (looked for {', '.join(HEAD_ATTRIBUTES)}).")


def masked_positions_forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None,
                             **kwargs: Any) -> MaskedLMOutput:
    """The model's own forward, except that the head and the loss see masked positions only."""
    base = getattr(self, self.base_model_prefix)
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
    if token_type_ids is not None:
        inputs["token_type_ids"] = token_type_ids
    hidden = base(**inputs, return_dict=True).last_hidden_state
    if labels is None:
        return MaskedLMOutput(logits=mlm_head(self)(hidden))
    selected = labels != IGNORE_INDEX
    logits = mlm_head(self)(hidden[selected])  # (masked tokens, vocab)
    # a batch without masked tokens: a zero loss still tied to whatever trains (the head alone during warm-up)
    loss = F.cross_entropy(logits.float(), labels[selected]) if logits.numel() else logits.sum() + hidden.sum() * 0.0
    return MaskedLMOutput(loss=loss, logits=logits)


def load_mlm_model(name_or_path: str, **kwargs: Any):
    """``AutoModelForMaskedLM`` for an alias, hub name or folder (head built and tied when missing), whose
    forward computes the loss on masked positions only."""
    from transformers import AutoModelForMaskedLM

    from odqa.offline import resolve_model_name
    from odqa.reader.modeling import _load_config

    path = resolve_model_name(name_or_path)
    config = _load_config(path, name_or_path)
    config.tie_word_embeddings = True
    model = AutoModelForMaskedLM.from_pretrained(path, config=config, **kwargs)
    cls = type(model)
    sparse = type(f"MaskedPositions{cls.__name__}", (cls,), {"forward": masked_positions_forward})
    model.__class__ = sparse  # same parameters and saving; only the forward changes
    return model


class HeadWarmupCallback(TrainerCallback):
    """Freeze the encoder (and the word embeddings, which the decoder shares) for the first ``steps`` optimizer
    steps, so only the head's own layers learn; then everything trains. The optimizer holds every parameter
    from the start (it is built before training begins); frozen ones simply get no gradient."""

    def __init__(self, model, steps: int) -> None:
        self.encoder = getattr(model, model.base_model_prefix)
        self.steps = steps

    def _set(self, trainable: bool) -> None:
        for parameter in self.encoder.parameters():
            parameter.requires_grad_(trainable)

    def on_train_begin(self, args, state, control, **kwargs):
        self._set(state.global_step >= self.steps)  # a resumed run past the warm-up trains everything

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.steps:
            self._set(True)

    def on_train_end(self, args, state, control, **kwargs):
        self._set(True)


def head_is_tied(model) -> bool:
    """Whether the MLM decoder shares the word-embedding matrix (no extra vocabulary-sized weights)."""
    output = model.get_output_embeddings()
    return output is not None and output.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
