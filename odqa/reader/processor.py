"""QAProcessor: examples → features → predictions, importable (not hidden inside ``main()``).

Vocabulary (as in Hugging Face): *examples* are raw rows (id, title, context, question,
answers); *features* are tokenized windows of ``max_seq_length`` tokens over the context,
``doc_stride`` tokens apart, each with the question first; *predictions* are answer strings
cut from the ORIGINAL context by character offsets.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from odqa.errors import ConfigError, DataError

logger = logging.getLogger(__name__)


@dataclass
class WindowConfig:
    """How contexts are cut into windows and answers read back."""

    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64
    max_answer_length: int = 30
    n_best_size: int = 20
    pad_to_max_length: bool = False
    morpheme_boundaries: bool = True  # answers may end inside a token, before Korean particles
    score_against_null: bool = True  # span score minus its window's no-answer score (comparable across passages)

    def check(self, tokenizer) -> None:
        if self.doc_stride >= self.max_seq_length - self.max_query_length - 3:
            raise ConfigError(
                f"doc_stride ({self.doc_stride}) must be smaller than max_seq_length - max_query_length - 3 "
                f"({self.max_seq_length - self.max_query_length - 3}); lower --doc_stride.")
        limit = getattr(tokenizer, "model_max_length", None)
        if limit and limit < 1_000_000 and self.max_seq_length > limit:
            raise ConfigError(f"max_seq_length ({self.max_seq_length}) exceeds the tokenizer's model_max_length "
                              f"({limit}); lower --max_seq_length.")


_DEFAULT_WINDOW = WindowConfig()


@dataclass(kw_only=True)
class WindowArguments:
    """The window and span options of every command that reads (train-mrc, infer, check-data), declared once
    with one spelling each; the old spellings stay as aliases. :meth:`window_config` turns them into the
    processor's :class:`WindowConfig`, whose defaults they share."""

    max_seq_len: int = field(default=_DEFAULT_WINDOW.max_seq_length, metadata={
        "aliases": ["--max_seq_length"], "help": "Tokens per window (question + context)."})
    doc_stride: int = field(default=_DEFAULT_WINDOW.doc_stride, metadata={
        "aliases": ["--stride_len"], "help": "Token overlap between consecutive windows of one context."})
    max_query_len: int = field(default=_DEFAULT_WINDOW.max_query_length, metadata={
        "aliases": ["--max_query_length"], "help": "Questions are cut to this many tokens."})
    max_ans_len: int = field(default=_DEFAULT_WINDOW.max_answer_length, metadata={
        "aliases": ["--max_answer_length"], "help": "Longest answer span, in tokens."})
    n_best_size: int = field(default=_DEFAULT_WINDOW.n_best_size, metadata={
        "help": "Candidate spans kept per question (the nbest file)."})
    morpheme_boundaries: bool = field(default=_DEFAULT_WINDOW.morpheme_boundaries, metadata={
        "help": "Answers may end inside a token before Korean particles or a copula (정육점을 -> 정육점); "
                "`--morpheme_boundaries false` keeps token boundaries only."})
    score_against_null: bool = field(default=_DEFAULT_WINDOW.score_against_null, metadata={
        "help": "Score a span as start + end logit minus its window's no-answer score (comparable across windows "
                "and passages); false: the raw start + end logit."})

    def window_config(self, **extra: Any) -> WindowConfig:
        """The processor's config of these options (``extra``: fields not on the command line)."""
        return WindowConfig(max_seq_length=self.max_seq_len, doc_stride=self.doc_stride,
                            max_query_length=self.max_query_len, max_answer_length=self.max_ans_len,
                            n_best_size=self.n_best_size, morpheme_boundaries=self.morpheme_boundaries,
                            score_against_null=self.score_against_null, **extra)


def label_window(offsets: list[tuple[int, int] | None], start_char: int, end_char: int,
                 cls_index: int = 0) -> tuple[int, int]:
    """Token labels of the span [start_char, end_char) inside one window.

    ``offsets`` holds a (start, end) char pair per token, None for non-context tokens. Several
    tokens may share one character (uncased BERT splits a Hangul syllable into 2–3 jamo
    tokens, all with the syllable's offsets), so we label the FIRST token that covers the
    answer start and the LAST token that covers the answer end; Hugging Face's run_qa walks
    inwards from both ends and puts the end before the start for one-syllable answers (봄).
    Answers not wholly inside the window point at CLS.
    """
    starts = np.array([o[0] if o is not None else -1 for o in offsets])
    ends = np.array([o[1] if o is not None else -1 for o in offsets])
    context = starts >= 0
    if not context.any():
        return cls_index, cls_index
    first, last = np.flatnonzero(context)[[0, -1]]
    if not (starts[first] <= start_char and ends[last] >= end_char):
        return cls_index, cls_index
    covers_start = np.flatnonzero(context & (starts <= start_char) & (ends > start_char))
    covers_end = np.flatnonzero(context & (starts < end_char) & (ends >= end_char))
    if len(covers_start) == 0:  # answer starts on a character no token covers (e.g. a space)
        covers_start = np.flatnonzero(context & (starts >= start_char))
    if len(covers_end) == 0:
        covers_end = np.flatnonzero(context & (ends <= end_char))
    if len(covers_start) == 0 or len(covers_end) == 0:
        return cls_index, cls_index
    start_token, end_token = int(covers_start[0]), int(covers_end[-1])
    if end_token < start_token:
        return cls_index, cls_index
    return start_token, end_token


class QAProcessor:
    """Turns MRC examples into model features and model outputs back into answers.

    >>> processor = QAProcessor(tokenizer, max_seq_length=384, doc_stride=128)
    >>> examples = processor.get_train_examples("data/sample/train.json")
    >>> features = processor.get_train_features(examples)
    """

    def __init__(self, tokenizer, config: WindowConfig | None = None, **overrides: Any) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise ConfigError("QAProcessor needs a fast (Rust) tokenizer for character offsets; "
                              "load it with AutoTokenizer.from_pretrained(..., use_fast=True).")
        self.tokenizer = tokenizer
        self.config = config or WindowConfig()
        for key, value in overrides.items():
            if not hasattr(self.config, key):
                raise ConfigError(f"unknown QAProcessor option {key!r}; valid: {sorted(vars(self.config))}.")
            setattr(self.config, key, value)
        self.config.check(tokenizer)
        self.pad_on_right = tokenizer.padding_side == "right"

    # ------------------------------------------------------------------ examples
    def load_examples(self, source, split: str | None = "validation", require_answers: bool = True,
                      fix_answer_start: bool = False):
        """Examples from a path, a ``Dataset`` or one split of a ``DatasetDict``."""
        from datasets import Dataset, DatasetDict

        from odqa.data import load_mrc_dataset

        data = source
        if isinstance(source, (str, os.PathLike)):
            data = load_mrc_dataset(source, fix_answer_start=fix_answer_start, require_answers=require_answers)
        if isinstance(data, DatasetDict):
            if split not in data:
                raise DataError(f"{source}: no {split!r} split; found {sorted(data)}.")
            data = data[split]
        if not isinstance(data, Dataset):
            raise DataError(f"expected a path, a datasets.Dataset or a DatasetDict, got {type(data).__name__}.")
        if require_answers:
            impossible = data["is_impossible"] if "is_impossible" in data.column_names else [False] * len(data)
            empty = [i for i, a, no in zip(data["id"], data["answers"], impossible) if not a["text"] and not no]
            if empty:
                raise DataError(f"{source}: {len(empty)} example(s) have no answer and are not marked is_impossible "
                                f"(e.g. {empty[:3]}); training and evaluation need answers.")
        return data

    def get_train_examples(self, source, concat_eval: bool = False, fix_answer_start: bool = False):
        """Training examples; with ``concat_eval`` the validation split is added (train on both)."""
        from datasets import DatasetDict, concatenate_datasets

        train = self.load_examples(source, "train", True, fix_answer_start)
        if concat_eval:
            if not isinstance(source, DatasetDict) and not os.path.isdir(str(source)):
                raise ConfigError("concat_eval needs a DatasetDict (or save_to_disk folder) with a validation split.")
            train = concatenate_datasets([train, self.load_examples(source, "validation", True, fix_answer_start)])
        return train

    def get_eval_examples(self, source, fix_answer_start: bool = False):
        return self.load_examples(source, "validation", True, fix_answer_start)

    def get_test_examples(self, source, fix_answer_start: bool = False):
        return self.load_examples(source, "test", False, fix_answer_start)

    # ------------------------------------------------------------------ features
    def _truncate_questions(self, questions: list[str]) -> list[str]:
        """Cut each question to ``max_query_length`` tokens, at a token boundary."""
        limit = self.config.max_query_length
        encoded = self.tokenizer([q.lstrip() for q in questions], add_special_tokens=False,
                                 return_offsets_mapping=True, verbose=False)  # the warning below says it better
        out, cut = [], 0
        for question, offsets in zip(questions, encoded["offset_mapping"]):
            question = question.lstrip()
            cut += len(offsets) > limit
            out.append(question[: offsets[limit - 1][1]] if len(offsets) > limit else question)
        if cut:
            logger.warning("%d question(s) longer than max_query_length were cut to their first %d tokens "
                           "(raise --max_query_length to keep more).", cut, limit)
        return out

    def _tokenize(self, examples: dict[str, list]) -> dict[str, list]:
        questions = self._truncate_questions(examples["question"])
        first, second = (questions, examples["context"]) if self.pad_on_right else (examples["context"], questions)
        return self.tokenizer(
            first, second,
            truncation="only_second" if self.pad_on_right else "only_first",
            max_length=self.config.max_seq_length,
            stride=self.config.doc_stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding="max_length" if self.config.pad_to_max_length else False,
        )

    def _context_offsets(self, tokenized, i: int) -> list[tuple[int, int] | None]:
        context_index = 1 if self.pad_on_right else 0
        sequence_ids = tokenized.sequence_ids(i)
        return [tuple(o) if sequence_ids[k] == context_index else None
                for k, o in enumerate(tokenized["offset_mapping"][i])]

    def _prepare(self, examples: dict[str, list], with_labels: bool, with_offsets: bool) -> dict[str, list]:
        tokenized = self._tokenize(examples)
        sample_map = tokenized.pop("overflow_to_sample_mapping")
        offset_mapping = tokenized["offset_mapping"]
        starts, ends, example_ids, offsets_out = [], [], [], []
        for i in range(len(tokenized["input_ids"])):
            example_index = sample_map[i]
            offsets = self._context_offsets(tokenized, i)
            example_ids.append(examples["id"][example_index])
            offsets_out.append(offsets)
            if with_labels:
                cls_index = tokenized["input_ids"][i].index(self.tokenizer.cls_token_id) \
                    if self.tokenizer.cls_token_id in tokenized["input_ids"][i] else 0
                answers = examples["answers"][example_index]
                if not answers["answer_start"]:
                    starts.append(cls_index)
                    ends.append(cls_index)
                    continue
                start_char = answers["answer_start"][0]
                end_char = start_char + len(answers["text"][0])
                s, e = label_window(offsets, start_char, end_char, cls_index)
                starts.append(s)
                ends.append(e)
        del offset_mapping
        tokenized.pop("offset_mapping")
        if with_labels:
            tokenized["start_positions"] = starts
            tokenized["end_positions"] = ends
        if with_offsets:
            tokenized["example_id"] = example_ids
            tokenized["offset_mapping"] = offsets_out
        return dict(tokenized)

    def _features(self, examples, with_labels: bool, with_offsets: bool, desc: str):
        return examples.map(
            lambda batch: self._prepare(batch, with_labels, with_offsets),
            batched=True, remove_columns=examples.column_names, desc=desc,
        )

    def get_train_features(self, examples):
        """Windows with start/end token labels (CLS when the answer is not in the window)."""
        return self._features(examples, with_labels=True, with_offsets=False, desc="train features")

    def get_eval_features(self, examples):
        """Windows with labels (for eval loss) plus example ids and offsets (for post-processing)."""
        return self._features(examples, with_labels=True, with_offsets=True, desc="eval features")

    def get_test_features(self, examples):
        """Windows with example ids and offsets, no labels (test sets have no answers)."""
        return self._features(examples, with_labels=False, with_offsets=True, desc="test features")

    # ------------------------------------------------------------------ predictions
    def post_processing_function(self, examples, features, predictions, output_dir: str | None = None,
                                 prefix: str | None = None, probabilities: bool = True):
        """Model outputs (start_logits, end_logits) → ``{id: answer text}`` and the n-best lists.

        Writes ``predictions.json`` and ``nbest_predictions.json`` to ``output_dir`` when given.
        ``probabilities=False`` leaves them out of the n-best entries (for callers that rank candidates
        across examples and compute them there, once).
        """
        from odqa.reader.postprocessing import (
            postprocess_qa_predictions,
            write_predictions,
        )

        start_logits, end_logits = predictions[:2] if isinstance(predictions, (tuple, list)) else predictions
        predictions_, nbest = postprocess_qa_predictions(
            examples, features, (start_logits, end_logits),
            n_best_size=self.config.n_best_size, max_answer_length=self.config.max_answer_length,
            morpheme_boundaries=self.config.morpheme_boundaries, score_against_null=self.config.score_against_null,
            probabilities=probabilities,
        )
        if output_dir is not None:
            write_predictions(predictions_, nbest, output_dir, prefix=prefix)
        return predictions_, nbest


def model_inputs(features):
    """Drop the bookkeeping columns (example ids, offsets) before features go to a model."""
    drop = [c for c in ("example_id", "offset_mapping") if c in features.column_names]
    return features.remove_columns(drop)
