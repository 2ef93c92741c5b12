"""Whole-word masking for Korean, from character offsets.

A *word* is a whitespace-separated eojeol (``word``) or a Kiwi morpheme (``morpheme``: particles and
endings are their own units, 세종이 -> 세종 + 이); every token whose first character lies in a word belongs
to it. Because groups come from offsets, not from ``##``/``▁`` piece markers, the same code is right
for WordPiece and SentencePiece vocabularies. ``token`` masks tokens independently (BERT's original rule).
"""
from __future__ import annotations

import bisect
import re
from typing import Sequence

import torch

WHOLE_WORD_MODES = ("word", "morpheme", "token")
_EOJEOL = re.compile(r"\S+")
IGNORE_INDEX = -100


def word_spans(text: str, mode: str) -> list[tuple[int, int]]:
    """Character spans of the masking units of ``text``, in order."""
    if mode == "word":
        return [(m.start(), m.end()) for m in _EOJEOL.finditer(text)]
    if mode == "morpheme":
        from odqa.utils.kiwi import get_kiwi

        return [(t.start, t.start + t.len) for t in get_kiwi().tokenize(text)]
    raise ValueError(f"unknown whole-word mode {mode!r}: choose one of {', '.join(WHOLE_WORD_MODES)}.")


def group_tokens(text: str, offsets: Sequence[tuple[int, int]], mode: str) -> list[int]:
    """For each token (its ``(start, end)`` character offsets in ``text``), the index of its masking unit.

    ``token`` mode: every token its own unit. Tokens that cover no character (e.g. a lone ``▁``) join the
    unit of the next token, so a word is never split between masked and unmasked pieces.
    """
    if mode == "token":
        return list(range(len(offsets)))
    spans = word_spans(text, mode)
    starts = [s for s, _ in spans]
    groups: list[int] = []
    pending = 0
    for start, end in offsets:
        if end <= start:  # an empty piece: decided by the token that follows
            pending += 1
            continue
        first = start
        while first < end and text[first].isspace():  # SentencePiece offsets may include the leading space
            first += 1
        unit = max(bisect.bisect_right(starts, first) - 1, 0)
        groups.extend([unit] * (pending + 1))
        pending = 0
    groups.extend([groups[-1] if groups else 0] * pending)
    return groups


def mask_whole_words(input_ids: torch.Tensor, word_ids: torch.Tensor, mask_token_id: int, vocab_size: int,
                     probability: float = 0.15, generator: torch.Generator | None = None,
                     special_ids: Sequence[int] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's 80/10/10 masking applied to whole units: (masked input ids, labels with -100 elsewhere).

    ``word_ids``: per token, its unit id (unique within a row; -1 for special tokens and padding). Each
    unit is selected with ``probability``; its tokens are then replaced by the mask token (80%), a random
    token (10%) or kept (10%), one draw per unit so a word is never half masked.
    """
    input_ids, word_ids = input_ids.clone(), word_ids.long()
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    valid = word_ids >= 0
    if special_ids:
        valid &= ~torch.isin(input_ids, torch.tensor(list(special_ids), dtype=input_ids.dtype))
    if not valid.any():
        return input_ids, labels
    n_units = int(word_ids.max()) + 1
    rows = input_ids.size(0)
    # one draw per (row, unit): selected, and which of the 80/10/10 it gets
    selected = torch.rand(rows, n_units, generator=generator) < probability
    action = torch.rand(rows, n_units, generator=generator)
    safe = word_ids.clamp(min=0)
    token_selected = torch.gather(selected, 1, safe) & valid
    token_action = torch.gather(action, 1, safe)
    labels[token_selected] = input_ids[token_selected]
    to_mask = token_selected & (token_action < 0.8)
    to_random = token_selected & (token_action >= 0.8) & (token_action < 0.9)
    input_ids[to_mask] = mask_token_id
    random_tokens = torch.randint(vocab_size, input_ids.shape, generator=generator, dtype=input_ids.dtype)
    input_ids[to_random] = random_tokens[to_random]
    return input_ids, labels


class WholeWordMaskCollator:
    """Pads a batch of chunks and masks it afresh every time (dynamic masking).

    Chunks carrying ``labels`` already (the fixed evaluation masking) are only padded.
    """

    def __init__(self, tokenizer, probability: float = 0.15, seed: int | None = None) -> None:
        if tokenizer.mask_token_id is None:
            raise ValueError("masked-language-model training needs a tokenizer with a mask token.")
        if not 0.0 < probability < 1.0:
            raise ValueError(f"--mlm_probability must be in (0, 1) (got {probability}).")
        self.tokenizer = tokenizer
        self.probability = probability
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)

        def pad(key: str, value: int) -> torch.Tensor:
            return torch.tensor([list(r[key]) + [value] * (width - len(r[key])) for r in rows], dtype=torch.long)

        batch = {"input_ids": pad("input_ids", self.pad_id),
                 "attention_mask": torch.tensor([[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"]))
                                                 for r in rows], dtype=torch.long)}
        if "labels" in rows[0]:
            batch["labels"] = pad("labels", IGNORE_INDEX)
            return batch
        batch["input_ids"], batch["labels"] = mask_whole_words(
            batch["input_ids"], pad("word_ids", -1), self.tokenizer.mask_token_id, len(self.tokenizer),
            self.probability, self.generator, self.tokenizer.all_special_ids)
        return batch


def fixed_masking(rows: list[dict], tokenizer, probability: float = 0.15, seed: int = 0) -> list[dict]:
    """The evaluation chunks masked once, with a seeded generator: the same masks in every run, so
    perplexities before and after training (and across runs) are comparable."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for row in rows:
        ids, labels = mask_whole_words(torch.tensor([row["input_ids"]]), torch.tensor([row["word_ids"]]),
                                       tokenizer.mask_token_id, len(tokenizer), probability, generator,
                                       tokenizer.all_special_ids)
        out.append({"input_ids": ids[0].tolist(), "labels": labels[0].tolist()})
    return out
