"""The extractive reader at inference time: questions x retrieved passages -> ranked answers.

transformers 5 removed ``pipeline("question-answering")``; this is its replacement, built on the
same :class:`~odqa.reader.processor.QAProcessor` windows and numpy post-processing as training,
so train-time evaluation and inference cannot disagree. Work is done once and in bulk:

* every (question, passage) pair becomes one example (``passage`` mode), or each question gets
  one example whose context is its passages joined (``concat`` mode);
* all examples are tokenized into windows in one call;
* windows of ALL questions are sorted by length and batched with dynamic padding, so a batch
  of short windows costs short-window time; the forward pass runs under ``inference_mode``;
* spans are scored start + end logit, optionally plus ``retriever_weight`` x the retriever's
  score of their passage, and the best answers of a question are taken across its passages.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from odqa.errors import ConfigError
from odqa.pipeline.answers import Answer, PassageToRead
from odqa.pipeline.quantization import DEFAULT_CALIBRATION_WINDOWS, calibration_sample
from odqa.reader.processor import QAProcessor, WindowConfig
from odqa.utils.progress import datasets_progress, wants_progress

READ_MODES = ("passage", "concat")
# passages retrieved and read per question: the one default of the CLI, the Python API and the quickstart
# (on held-out KorQuAD articles top-5 answers as well as top-20 at a quarter of the reading, BENCHMARKS.md)
DEFAULT_TOP_K = 5
# span score += this x the retriever score of its passage; the one default of the CLI, the Python API and
# the quickstart, chosen on the TRAINING articles of the KorQuAD split (BENCHMARKS.md, end to end)
DEFAULT_RETRIEVER_WEIGHT = 0.2
CONCAT_SEPARATOR = "\n\n"
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass
class ReadOptions:
    """How answers are chosen across a question's passages."""

    mode: str = "passage"
    retriever_weight: float = DEFAULT_RETRIEVER_WEIGHT
    add_title: bool = False  # read "<title>: <passage>", as a reader trained with --add_title expects

    def check(self) -> None:
        if self.mode not in READ_MODES:
            raise ConfigError(f"unknown read mode {self.mode!r}; choose one of {', '.join(READ_MODES)}.")


@dataclass
class _Segment:
    """Where one passage sits inside an example's context."""

    passage: PassageToRead
    offset: int


@contextmanager
def _timed(timings: dict[str, float] | None, stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        if timings is not None:
            timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start


def _softmax(scores: Sequence[float]) -> np.ndarray:
    x = np.asarray(scores, dtype=np.float64)
    if not len(x):
        return x
    e = np.exp(x - x.max())
    return e / e.sum()


class ExtractiveReader:
    """A span-extraction model with its tokenizer and window settings.

    >>> reader = ExtractiveReader.from_pretrained("models/sample_reader", quantize="int8")
    >>> reader.read(["질문"], [[PassageToRead("p1", "본문")]])   # [[Answer, ...]]

    A static-int8 reader (``quantize="int8"``) is calibrated on ``calibration_windows`` windows:
    those of :meth:`calibrate` if it was called, else a random sample of the first windows it reads.
    """

    def __init__(self, model, tokenizer, window: WindowConfig | None = None, batch_size: int = 32,
                 show_progress: bool | None = None, calibration_windows: int = DEFAULT_CALIBRATION_WINDOWS) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1 (got {batch_size}).")
        if calibration_windows < 1:
            raise ConfigError(f"calibration_windows must be at least 1 (got {calibration_windows}).")
        self.processor = QAProcessor(tokenizer, window or WindowConfig())
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.calibration_windows = calibration_windows

    @property
    def window(self) -> WindowConfig:
        return self.processor.config

    @classmethod
    def from_pretrained(cls, path: str, window: WindowConfig | None = None, batch_size: int = 32,
                        quantize: str | None = None, show_progress: bool | None = None,
                        calibration_windows: int = DEFAULT_CALIBRATION_WINDOWS,
                        tokenizer: str | None = None) -> "ExtractiveReader":
        """Load a trained reader folder (any head) and its tokenizer (or ``tokenizer``, a folder or hub name).

        ``quantize``: ``int8`` (static int8 encoder, OpenVINO) or ``int8-dynamic`` (PyTorch) for faster CPU
        inference; see :mod:`odqa.pipeline.quantization`.
        """
        from odqa.pipeline.quantization import quantize_reader
        from odqa.reader.modeling import load_reader
        from odqa.reader.tokenizer import load_tokenizer

        model = quantize_reader(load_reader(path), quantize)
        return cls(model, load_tokenizer(tokenizer or path), window, batch_size, show_progress, calibration_windows)

    @property
    def trained_with_titles(self) -> bool:
        """Whether the reader was trained on "<title>: <context>" (``train-mrc --add_title``)."""
        return bool(getattr(getattr(self.model, "config", None), "odqa_add_title", False))

    @property
    def needs_calibration(self) -> bool:
        return bool(getattr(self.model, "needs_calibration", False)) and not self.model.calibrated

    def calibrate(self, questions: Sequence[str], passages: Sequence[Sequence[PassageToRead]],
                  mode: str = "passage") -> None:
        """Calibrate a static-int8 reader on the windows of these (question, passages) pairs, e.g. training data."""
        if not getattr(self.model, "needs_calibration", False):
            raise ConfigError("only a reader loaded with quantize='int8' is calibrated.")
        if len(questions) > self.calibration_windows:  # each question gives at least one window: tokenize no more
            keep = sorted(np.random.default_rng(0).choice(len(questions), self.calibration_windows, replace=False))
            questions, passages = [questions[i] for i in keep], [passages[i] for i in keep]
        examples, _ = self.build_examples(questions, passages, mode)
        if not len(examples):
            raise ConfigError("no windows to calibrate on: give questions with at least one passage each.")
        self._calibrate_on(self.featurize(examples))

    def _calibrate_on(self, features) -> None:
        columns = [c for c in MODEL_INPUTS if c in features.column_names]
        self.model.calibrate(calibration_sample({c: list(features[c]) for c in columns}, self.calibration_windows))

    # ------------------------------------------------------------------ stages
    def build_examples(self, questions: Sequence[str], passages: Sequence[Sequence[PassageToRead]],
                       mode: str = "passage", add_title: bool = False):
        """(examples Dataset, segments per example): the MRC examples to read and where each passage sits
        (after its ``"<title>: "`` prefix with ``add_title``)."""
        from datasets import Dataset

        from odqa.data.titles import title_prefix

        def block(p: PassageToRead) -> tuple[str, int]:
            prefix = title_prefix(p.title) if add_title else ""
            return prefix + p.text, len(prefix)

        if len(questions) != len(passages):
            raise ConfigError(f"got {len(questions)} questions but {len(passages)} passage lists.")
        ids, contexts, texts, segments = [], [], [], []
        for qi, (question, group) in enumerate(zip(questions, passages)):
            if not group:
                continue
            blocks = [block(p) for p in group]
            if mode == "concat":
                starts = np.cumsum([0] + [len(text) + len(CONCAT_SEPARATOR) for text, _ in blocks[:-1]])
                ids.append(f"{qi}")
                contexts.append(CONCAT_SEPARATOR.join(text for text, _ in blocks))
                texts.append(question)
                segments.append([_Segment(p, int(o) + shift) for p, o, (_, shift) in zip(group, starts, blocks)])
            else:
                for pi, (passage, (text, shift)) in enumerate(zip(group, blocks)):
                    ids.append(f"{qi}/{pi}")
                    contexts.append(text)
                    texts.append(question)
                    segments.append([_Segment(passage, shift)])
        examples = Dataset.from_dict({"id": ids, "title": [""] * len(ids), "context": contexts, "question": texts})
        return examples, segments

    def featurize(self, examples):
        """Tokenize every example into windows, once (the QAProcessor used in training)."""
        with datasets_progress(wants_progress(self.show_progress, len(examples))):
            return self.processor.get_test_features(examples)

    def forward(self, features, timings: dict[str, float] | None = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Start/end logits per window (each of the window's own length), computed in length-sorted batches.

        ``timings`` (if given) accumulates ``collate`` (padding into tensors) and ``forward`` (the model
        call and copying logits out) separately, so the model's share of the time can be measured.
        """
        import torch
        from tqdm.auto import tqdm

        if self.needs_calibration:
            with _timed(timings, "calibrate"):
                self._calibrate_on(features)
        with _timed(timings, "collate"):
            columns = [c for c in MODEL_INPUTS if c in features.column_names]
            inputs = {c: list(features[c]) for c in columns}
            n = len(inputs["input_ids"])
            lengths = np.array([len(ids) for ids in inputs["input_ids"]])
            order = np.argsort(-lengths, kind="stable")  # longest first: the memory peak comes at once
            starts: list[np.ndarray] = [np.empty(0, np.float32)] * n
            ends: list[np.ndarray] = [np.empty(0, np.float32)] * n
            batches = [order[i:i + self.batch_size] for i in range(0, n, self.batch_size)]
        with torch.inference_mode():
            for batch in tqdm(batches, desc="read", unit="batch", disable=not wants_progress(self.show_progress, n)):
                with _timed(timings, "collate"):
                    padded = self.tokenizer.pad({c: [inputs[c][i] for i in batch] for c in columns},
                                                return_tensors="pt")
                with _timed(timings, "forward"):
                    output = self.model(**padded)
                    start_logits = output.start_logits.float().numpy()
                    end_logits = output.end_logits.float().numpy()
                    for row, i in enumerate(batch):
                        starts[i] = start_logits[row, :lengths[i]]
                        ends[i] = end_logits[row, :lengths[i]]
        return starts, ends

    def postprocess(self, examples, features, logits, segments: list[list[_Segment]], num_questions: int,
                    retriever_weight: float = DEFAULT_RETRIEVER_WEIGHT) -> list[list[Answer]]:
        """Best spans per example (shared post-processing), mapped to passages, ranked per question."""
        _, nbest = self.processor.post_processing_function(examples, features, logits)
        per_question: list[list[Answer]] = [[] for _ in range(num_questions)]
        for example_id, segs in zip(examples["id"], segments):
            qi = int(example_id.split("/")[0])
            for cand in nbest.get(example_id, []):
                answer = _answer_in_passage(cand, segs, retriever_weight)
                if answer is not None:
                    per_question[qi].append(answer)
        return [_rank(answers, self.window.n_best_size) for answers in per_question]

    # ------------------------------------------------------------------ all stages
    def read(self, questions: Sequence[str], passages: Sequence[Sequence[PassageToRead]],
             options: ReadOptions | None = None, timings: dict[str, float] | None = None) -> list[list[Answer]]:
        """For each question, its n-best answers across its passages (best first; [] without passages).

        ``timings`` (if given) accumulates seconds per stage: preprocess (examples, tokenization into
        windows), collate (length sorting, padding), forward (the model), postprocess (spans, ranking);
        and ``windows``, the number of windows read (a count, not seconds).
        """
        options = options or ReadOptions()
        options.check()
        with _timed(timings, "preprocess"):
            examples, segments = self.build_examples(questions, passages, options.mode, options.add_title)
            if not len(examples):
                return [[] for _ in questions]
            features = self.featurize(examples)
        if timings is not None:
            timings["windows"] = timings.get("windows", 0) + len(features)
        logits = self.forward(features, timings)
        with _timed(timings, "postprocess"):
            return self.postprocess(examples, features, logits, segments, len(questions), options.retriever_weight)


def _answer_in_passage(candidate: dict, segments: list[_Segment], retriever_weight: float) -> Answer | None:
    """The candidate as an Answer in its source passage; None for an empty span or one crossing two passages."""
    start, end = candidate["offsets"]
    if end <= start:
        return None
    for seg in segments:
        local_start, local_end = start - seg.offset, end - seg.offset
        if 0 <= local_start and local_end <= len(seg.passage.text):
            p = seg.passage
            reader_score = float(candidate["score"])
            return Answer(text=p.text[local_start:local_end], score=reader_score + retriever_weight * p.score,
                          reader_score=reader_score, probability=0.0, passage_id=p.passage_id, title=p.title,
                          start=local_start, end=local_end, retriever_score=p.score, passage_rank=p.rank,
                          passage=p.text, document_id=p.document_id or p.passage_id,
                          document_start=p.document_start + local_start, document_end=p.document_start + local_end)
    return None


def _rank(answers: list[Answer], n_best: int) -> list[Answer]:
    """Best ``n_best`` answers by score, with their probability over that list."""
    ranked = sorted(answers, key=lambda a: a.score, reverse=True)[:n_best]
    for answer, prob in zip(ranked, _softmax([a.score for a in ranked])):
        answer.probability = float(prob)
    return ranked
