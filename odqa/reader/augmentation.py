"""Training-data augmentation of the competition code, made reproducible and offset-safe.

Two kinds, as the original had them:

* **Copies of examples** (``--concat_aug``), added next to the originals with ids ``<id>#<kind>``:
  ``mask_word`` masks random words (eojeol) of the question; ``mask_entity`` masks proper nouns
  (Kiwi ``NNP``) of the question, particles kept (세종이 -> <mask>이); ``mask_context`` masks context words
  that share a morpheme with the question — the model cannot lean on lexical overlap alone — never
  inside an answer, with every ``answer_start`` moved so ``context[start:start+len(text)] == text``.
* **Question-token masking of the features** (``--token_masking_ratio/--token_masking_max``): each
  question token becomes the mask token with that probability, at most ``max`` per question, the same
  tokens in every window of one question; ``--token_masking_with_normal_data`` keeps the unmasked
  features too.

Every draw comes from ``numpy.random.default_rng(seed)`` (the training seed), so a run is reproducible.
"""
from __future__ import annotations

import bisect
import re
import zlib
from typing import Any, Sequence

import numpy as np

from odqa.errors import ConfigError

AUGMENTATIONS = ("mask_word", "mask_entity", "mask_context")
DEFAULT_MASK_RATIO = 0.2
DEFAULT_MAX_MASKS = 2
CONTENT_POS = ("NNG", "NNP", "NNB", "NR", "NP", "VV", "VA", "XR", "SL", "SH", "SN")
_WORD = re.compile(r"\S+")


def _choose(rng: np.random.Generator, candidates: Sequence[Any], ratio: float, max_masks: int) -> list[Any]:
    """Each candidate with probability ``ratio``, then at most ``max_masks`` of them (the original's rule)."""
    picked = [c for c, draw in zip(candidates, rng.random(len(candidates))) if draw < ratio]
    if len(picked) > max_masks:
        keep = sorted(rng.choice(len(picked), max_masks, replace=False))
        picked = [picked[i] for i in keep]
    return picked


def _replace_spans(text: str, spans: Sequence[tuple[int, int]], mask_token: str) -> str:
    out, last = [], 0
    for start, end in sorted(spans):
        out += [text[last:start], mask_token]
        last = end
    return "".join(out) + text[last:]


def mask_question_words(question: str, mask_token: str, rng: np.random.Generator,
                        ratio: float = DEFAULT_MASK_RATIO, max_masks: int = DEFAULT_MAX_MASKS) -> str:
    """Random whole words (whitespace-separated eojeol) of ``question`` replaced by ``mask_token``."""
    words = [(m.start(), m.end()) for m in _WORD.finditer(question)]
    return _replace_spans(question, _choose(rng, words, ratio, max_masks), mask_token)


def mask_question_entities(question: str, mask_token: str, rng: np.random.Generator,
                           ratio: float = 1.0, max_masks: int = DEFAULT_MAX_MASKS) -> str:
    """Proper nouns (Kiwi NNP) of ``question`` masked, their particles kept."""
    from odqa.utils.kiwi import get_kiwi

    spans = [(t.start, t.start + t.len) for t in get_kiwi().tokenize(question) if t.tag == "NNP"]
    return _replace_spans(question, _choose(rng, spans, ratio, max_masks), mask_token)


def mask_context_overlap(context: str, question: str, answers: dict[str, list], mask_token: str,
                         rng: np.random.Generator, max_masks: int = DEFAULT_MAX_MASKS
                         ) -> tuple[str, dict[str, list]]:
    """Up to ``max_masks`` context words sharing a content morpheme with the question masked (never a word
    that overlaps an answer); returns the new context and the answers with their starts moved."""
    from odqa.utils.kiwi import get_kiwi

    kiwi = get_kiwi()
    question_forms = {t.form for t in kiwi.tokenize(question) if t.tag in CONTENT_POS}
    answer_spans = [(s, s + len(t)) for t, s in zip(answers["text"], answers["answer_start"])]
    words = [(m.start(), m.end()) for m in _WORD.finditer(context)]
    word_starts = [start for start, _ in words]
    shared = {bisect.bisect_right(word_starts, t.start) - 1 for t in kiwi.tokenize(context)
              if t.tag in CONTENT_POS and t.form in question_forms}
    overlapping = [words[i] for i in sorted(shared) if i >= 0 and not any(
        words[i][0] < a_end and a_start < words[i][1] for a_start, a_end in answer_spans)]
    spans = _choose(rng, overlapping, 1.0, max_masks)
    new_context = _replace_spans(context, spans, mask_token)

    def moved(position: int) -> int:
        return position + sum(len(mask_token) - (end - start) for start, end in spans if end <= position)

    starts = [moved(s) for s in answers["answer_start"]]
    for text, start in zip(answers["text"], starts):
        assert new_context[start:start + len(text)] == text, "masking moved an answer"  # internal invariant
    return new_context, {"text": list(answers["text"]), "answer_start": starts}


def augment_examples(examples, kinds: Sequence[str], mask_token: str | None, seed: int = 42,
                     ratio: float = DEFAULT_MASK_RATIO, max_masks: int = DEFAULT_MAX_MASKS):
    """``examples`` (a ``datasets.Dataset`` of MRC rows) plus one augmented copy per answerable row and kind."""
    from datasets import Dataset, concatenate_datasets

    from odqa.data.loading import mrc_features

    unknown = [k for k in kinds if k not in AUGMENTATIONS]
    if unknown:
        hint = " (add_ner needs a NER model; mask_entity masks Kiwi's proper nouns instead)" \
            if "add_ner" in unknown else ""
        raise ConfigError(f"unknown --concat_aug {', '.join(unknown)}: choose from {', '.join(AUGMENTATIONS)}{hint}.")
    if not kinds:
        return examples
    if not mask_token:
        raise ConfigError("--concat_aug masks words, but this tokenizer has no mask token; drop --concat_aug.")
    rng = np.random.default_rng(seed)
    copies = []
    for row in examples:
        if not row["answers"]["text"]:
            continue  # unanswerable rows (retrieved negatives) are not copied
        for kind in kinds:
            new = dict(row, id=f"{row['id']}#{kind}")
            if kind == "mask_word":
                new["question"] = mask_question_words(row["question"], mask_token, rng, ratio, max_masks)
            elif kind == "mask_entity":
                new["question"] = mask_question_entities(row["question"], mask_token, rng, max_masks=max_masks)
            else:
                new["context"], new["answers"] = mask_context_overlap(row["context"], row["question"], row["answers"],
                                                                      mask_token, rng, max_masks)
            if new["question"] != row["question"] or new["context"] != row["context"]:
                copies.append(new)
    if not copies:
        return examples
    return concatenate_datasets([examples, Dataset.from_list(copies, features=examples.features
                                                             if examples.features is not None else mrc_features())])


def mask_question_tokens(features, tokenizer, ratio: float, max_masks: int = DEFAULT_MAX_MASKS, seed: int = 42,
                         keep_unmasked: bool = False):
    """Question tokens of tokenized training windows replaced by the mask token (see the module docstring).

    The question is the first segment (between the first token and the first separator), as the
    processor builds windows for right-padding tokenizers; the draw is seeded by the question's token
    ids, so every window of one question gets the same mask.
    """
    from datasets import concatenate_datasets

    if not 0.0 <= ratio <= 1.0:
        raise ConfigError(f"--token_masking_ratio must be in [0, 1] (got {ratio}).")
    if ratio == 0.0:
        return features
    if tokenizer.mask_token_id is None or tokenizer.sep_token_id is None:
        raise ConfigError("--token_masking_ratio needs a tokenizer with mask and separator tokens.")
    if tokenizer.padding_side != "right":
        raise ConfigError("--token_masking_ratio supports question-first windows (right-padding tokenizers) only.")
    mask_id, sep_id, special = tokenizer.mask_token_id, tokenizer.sep_token_id, set(tokenizer.all_special_ids)

    def mask(batch: dict[str, list]) -> dict[str, list]:
        out = []
        for ids in batch["input_ids"]:
            ids = list(ids)
            end = ids.index(sep_id) if sep_id in ids else 0
            positions = [i for i in range(1, end) if ids[i] not in special]
            question_seed = zlib.crc32(np.asarray(ids[1:end], dtype=np.int64).tobytes()) ^ seed
            for i in _choose(np.random.default_rng(question_seed), positions, ratio, max_masks):
                ids[i] = mask_id
            out.append(ids)
        return {"input_ids": out}

    masked = features.map(mask, batched=True, desc="masking question tokens")
    return concatenate_datasets([masked, features]) if keep_unmasked else masked
