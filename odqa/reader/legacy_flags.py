"""The training options of the competition code odqa replaces (``train_mrc.py``, ``train_mrc_v2.py``),
translated into odqa's own before parsing, so its users' commands run unchanged.

Plain renames are field aliases (``--dataset_path`` and ``--custom_model`` in ``odqa.reader.train``,
``--stride_len`` and the other window spellings in ``odqa.reader.processor.WindowArguments``); this module handles the options whose values or meaning change, and prints one
note per translated option saying what it became. ``--help`` lists odqa's names only.
"""
from __future__ import annotations

import json

from odqa.errors import ConfigError
from odqa.reader.heads import HEADS
from odqa.utils.args import is_true, take_option

# model/custom_models.py class names (given to --head or --custom_model) -> odqa heads
HEAD_CLASS_SUFFIXES = {
    "WithLSTMLNHead": "lstm_ln",
    "WithRNNHead": "rnn",
    "WithCNNHead": "cnn",
    "WithLSTMCNNHead": "lstm_cnn",
    "WithAttentionHead": "attention",
    "WithAttentionHead_V2": "attention",
    "WithAttentionWithLNHead": "attention_ln",
    "WithAttentionWithLNHead_V2": "attention_ln",
    "WithMultiHeadAttentionHead": "multihead_attention",
}
FREEZE_TYPE_VALUES = {"roberta": "backbone", "embeddings": "embedding"}


def head_from_class_name(value: str) -> str:
    """``CustomRobertaForQuestionAnsweringWithLSTMLNHead`` -> ``lstm_ln``; odqa names pass through."""
    if value in HEADS:
        return value
    for suffix, head in sorted(HEAD_CLASS_SUFFIXES.items(), key=lambda item: -len(item[0])):
        if value.endswith(suffix):
            return head
    raise ConfigError(f"unknown head {value!r}: choose one of {', '.join(HEADS)} (or a class name of the "
                      f"original code ending in {', '.join(sorted(HEAD_CLASS_SUFFIXES))}).")


def translate_train_flags(argv: list[str]) -> tuple[list[str], list[str]]:
    """Rewrite the original's training options; returns (odqa argv, one note per translation)."""
    notes: list[str] = []
    for name in ("--head", "--custom_model"):
        value, argv = take_option(argv, name)
        if value is not None:
            head = head_from_class_name(value)
            if name == "--custom_model" or head != value:
                notes.append(f"{name} {value} -> --head {head}")
            argv += ["--head", head]

    value, argv = take_option(argv, "--freeze_type")
    if value is not None:
        if value in FREEZE_TYPE_VALUES:
            notes.append(f"--freeze_type {value} -> --freeze_type {FREEZE_TYPE_VALUES[value]} "
                         "(odqa names what is frozen, for any encoder family)")
        argv += ["--freeze_type", FREEZE_TYPE_VALUES.get(value, value)]

    mode, argv = take_option(argv, "--freeze_pretrained_weight")
    epochs, argv = take_option(argv, "--freeze_pretrained_weight_epoch")
    if mode is not None and mode != "none":
        if mode not in {"all", "first", "last"}:
            raise ConfigError(f"--freeze_pretrained_weight {mode}: choose none, all, first or last.")
        try:
            n = float(epochs) if epochs is not None else 1.0
        except ValueError:
            raise ConfigError(f"--freeze_pretrained_weight_epoch {epochs}: give a number of epochs.") from None
        translated = ["--freeze_type", "backbone", "--freeze_epoch", "inf" if mode == "all" else f"{n:g}"]
        if mode == "last":
            translated += ["--freeze_when", "last"]
        notes.append(f"--freeze_pretrained_weight {mode}" + (f" --freeze_pretrained_weight_epoch {n:g}" if
                                                               mode != "all" else "")
                     + f" -> {' '.join(translated)} (everything but the span head is frozen)")
        argv += translated

    value, argv = take_option(argv, "--freeze_embedding_layer_weight", flag=True)
    if is_true(value):
        notes.append("--freeze_embedding_layer_weight -> --freeze_word_embeddings (the word-embedding matrix is "
                     "fixed for the whole run; position and type embeddings still train)")
        argv += ["--freeze_word_embeddings"]

    value, argv = take_option(argv, "--warmup_cycles")
    if value is not None:
        try:
            cycles = int(value)
        except ValueError:
            raise ConfigError(f"--warmup_cycles {value}: give a whole number of restarts.") from None
        translated = ["--lr_scheduler_type", "cosine_with_restarts", "--lr_scheduler_kwargs",
                      json.dumps({"num_cycles": cycles})]
        notes.append(f"--warmup_cycles {cycles} -> {' '.join(translated)}")
        argv += translated
    return argv, notes

