"""Texts for MLM: from any odqa corpus or text files, tokenized with offsets, grouped into whole words,
concatenated and cut into equal chunks (``--chunk_size`` tokens including the special ones)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator

from odqa.errors import DataError
from odqa.mlm.masking import group_tokens

TEXT_SUFFIXES = {".txt", ".text", ".md"}


def load_texts(paths: Iterable[str | os.PathLike]) -> list[str]:
    """Passages of odqa corpora (wikipedia_documents.json, SQuAD/KorQuAD contexts, .jsonl/.csv, datasets
    folders) or lines of plain text files (one text per non-empty line)."""
    texts: list[str] = []
    for path in map(Path, paths):
        if path.suffix.lower() in TEXT_SUFFIXES:
            if not path.is_file():
                raise DataError(f"{path}: text file not found.")
            texts += [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        else:
            from odqa.retrieval.corpus import load_corpus

            texts += [p.text for p in load_corpus(path)]
    texts = list(dict.fromkeys(t for t in texts if t.strip()))  # a context shared by many questions counts once
    if not texts:
        raise DataError(f"no text found in {', '.join(map(str, paths))}.")
    return texts


def chunk_texts(texts: list[str], tokenizer, chunk_size: int = 256, mode: str = "word") -> list[dict]:
    """``[{input_ids, word_ids}]``: texts tokenized (no special tokens), whole-word groups numbered per
    chunk, concatenated with a separator between texts and cut into chunks of ``chunk_size`` (the last,
    shorter chunk is kept). ``word_ids`` is -1 on special tokens."""
    if chunk_size < 8:
        raise ValueError(f"--chunk_size must be at least 8 tokens (got {chunk_size}).")
    body = chunk_size - 2  # room for CLS/BOS and SEP/EOS
    cls_id = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    sep_id = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    chunks, ids, words = [], [], []
    next_word = 0
    for text, (token_ids, groups) in zip(texts, _tokenized(texts, tokenizer, mode)):
        ids += token_ids + [sep_id]
        words += [next_word + g for g in groups] + [-1]
        next_word += (max(groups) + 1) if groups else 0
        while len(ids) >= body:
            chunks.append(_chunk(ids[:body], words[:body], cls_id, sep_id))
            ids, words = ids[body:], words[body:]
    if ids:
        chunks.append(_chunk(ids, words, cls_id, sep_id))
    return chunks


def _tokenized(texts: list[str], tokenizer, mode: str) -> Iterator[tuple[list[int], list[int]]]:
    for start in range(0, len(texts), 256):
        batch = texts[start:start + 256]
        encoded = tokenizer(batch, add_special_tokens=False, return_offsets_mapping=True)
        for text, token_ids, offsets in zip(batch, encoded["input_ids"], encoded["offset_mapping"]):
            yield token_ids, group_tokens(text, offsets, mode)


def _chunk(ids: list[int], words: list[int], cls_id: int, sep_id: int) -> dict:
    """Word ids renumbered from 0 within the chunk (the collator sizes its draws by them)."""
    renumber: dict[int, int] = {}
    local = [-1 if w < 0 else renumber.setdefault(w, len(renumber)) for w in words]
    return {"input_ids": [cls_id, *ids, sep_id], "word_ids": [-1, *local, -1]}
