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

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from odqa.errors import ConfigError
from odqa.reader.abstention import apply_threshold
from odqa.reader.answers import Answer, PassageToRead
from odqa.reader.inference import MODEL_INPUTS, forward_windows, timed
from odqa.reader.postprocessing import softmax
from odqa.reader.processor import QAProcessor, WindowConfig
from odqa.runtime.quantization import DEFAULT_CALIBRATION_WINDOWS, calibration_sample
from odqa.utils.progress import datasets_progress, wants_progress

READ_MODES = ("passage", "concat")
# passages retrieved and read per question: the one default of the CLI, the Python API and the quickstart
# (on held-out KorQuAD articles top-5 answers as well as top-20 at a quarter of the reading, BENCHMARKS.md)
DEFAULT_TOP_K = 5
# span score += this x the retriever score of its passage; the one default of the CLI, the Python API and
# the quickstart, chosen on the TRAINING articles of the KorQuAD split (BENCHMARKS.md, end to end)
DEFAULT_RETRIEVER_WEIGHT = 0.2
CONCAT_SEPARATOR = "\n\n"


@dataclass
class ReadOptions:
    """How answers are chosen across a question's passages."""

    mode: str = "passage"
    retriever_weight: float = DEFAULT_RETRIEVER_WEIGHT
    add_title: bool = False  # read "<title>: <passage>", as a reader trained with --add_title expects
    # abstain ("no answer") when the best answer's no_answer_score is above this; None: always answer
    no_answer_threshold: float | None = None

    def check(self) -> None:
        if self.mode not in READ_MODES:
            raise ConfigError(f"unknown read mode {self.mode!r}; choose one of {', '.join(READ_MODES)}.")


@dataclass
class _Segment:
    """Where one passage sits inside an example's context, and whose question the example reads."""

    passage: PassageToRead
    offset: int
    question: int


class ExtractiveReader:
    """A span-extraction model with its tokenizer and window settings.

    >>> reader = ExtractiveReader.from_pretrained("e5-small-korquad", quantize="int8")
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
        # the no-answer threshold stored with the reader folder (odqa choose-threshold); None: always answer
        self.no_answer_threshold: float | None = None

    @property
    def window(self) -> WindowConfig:
        return self.processor.config

    @classmethod
    def from_pretrained(cls, path: str, window: WindowConfig | None = None, batch_size: int = 32,
                        quantize: str | None = None, show_progress: bool | None = None,
                        calibration_windows: int = DEFAULT_CALIBRATION_WINDOWS,
                        tokenizer: str | None = None) -> "ExtractiveReader":
        """Load a trained reader folder (any head) and its tokenizer (or ``tokenizer``, a folder or hub name).

        ``quantize``: ``int8`` (static int8 encoder, OpenVINO), ``int8-dynamic`` (PyTorch), ``fp32-openvino`` or
        ``bf16`` (the encoder compiled by OpenVINO unquantized) for faster CPU inference; see
        :mod:`odqa.runtime.quantization`.
        """
        from odqa.offline import resolve_model_name
        from odqa.reader.abstention import read_stored_threshold
        from odqa.reader.modeling import load_reader
        from odqa.reader.tokenizer import load_tokenizer
        from odqa.runtime.quantization import quantize_reader

        folder = resolve_model_name(path)  # an alias becomes its folder once, for the model, tokenizer and threshold
        model = quantize_reader(load_reader(folder), quantize)
        reader = cls(model, load_tokenizer(tokenizer or folder), window, batch_size, show_progress, calibration_windows)
        reader.no_answer_threshold = read_stored_threshold(folder)
        return reader

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
                segments.append([_Segment(p, int(o) + shift, qi) for p, o, (_, shift) in zip(group, starts, blocks)])
            else:
                for pi, (passage, (text, shift)) in enumerate(zip(group, blocks)):
                    ids.append(f"{qi}/{pi}")
                    contexts.append(text)
                    texts.append(question)
                    segments.append([_Segment(passage, shift, qi)])
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
        if self.needs_calibration:
            with timed(timings, "calibrate"):
                self._calibrate_on(features)
        return forward_windows(self.model, self.tokenizer, features, self.batch_size,
                               show_progress=self.show_progress, timings=timings)

    def postprocess(self, examples, features, logits, segments: list[list[_Segment]], num_questions: int,
                    retriever_weight: float = DEFAULT_RETRIEVER_WEIGHT,
                    no_answer_threshold: float | None = None) -> list[list[Answer]]:
        """Best spans per example (shared post-processing), mapped to passages, ranked per question; with a
        ``no_answer_threshold``, a question whose best answer scores above it is marked ``no_answer``."""
        _, nbest = self.processor.post_processing_function(examples, features, logits, probabilities=False)
        per_question: list[list[tuple[dict, _Segment]]] = [[] for _ in range(num_questions)]
        for example_id, segs in zip(examples["id"], segments):
            for cand in nbest.get(example_id, []):
                placed = _place(cand, segs)
                if placed is not None:
                    per_question[placed.question].append((cand, placed))
        return [apply_threshold(_rank(found, self.window.n_best_size, retriever_weight), no_answer_threshold)
                for found in per_question]

    # ------------------------------------------------------------------ all stages
    def read(self, questions: Sequence[str], passages: Sequence[Sequence[PassageToRead]],
             options: ReadOptions | None = None, timings: dict[str, float] | None = None) -> list[list[Answer]]:
        """For each question, its n-best answers across its passages (best first; [] without passages), and
        the best answer of every passage read (after the n-best when it is not among them).

        ``timings`` (if given) accumulates seconds per stage: preprocess (examples, tokenization into
        windows), collate (length sorting, padding), forward (the model), postprocess (spans, ranking);
        and ``windows``, the number of windows read (a count, not seconds).
        """
        options = options or ReadOptions()
        options.check()
        with timed(timings, "preprocess"):
            examples, segments = self.build_examples(questions, passages, options.mode, options.add_title)
            if not len(examples):
                return [[] for _ in questions]
            features = self.featurize(examples)
        if timings is not None:
            timings["windows"] = timings.get("windows", 0) + len(features)
        logits = self.forward(features, timings)
        with timed(timings, "postprocess"):
            return self.postprocess(examples, features, logits, segments, len(questions), options.retriever_weight,
                                    options.no_answer_threshold)


def _place(candidate: dict, segments: list[_Segment]) -> _Segment | None:
    """The passage segment holding the candidate span; None for an empty span or one crossing two passages."""
    start, end = candidate["offsets"]
    if end <= start:
        return None
    return next((seg for seg in segments
                 if 0 <= start - seg.offset and end - seg.offset <= len(seg.passage.text)), None)


def _rank(found: list[tuple[dict, _Segment]], n_best: int, retriever_weight: float) -> list[Answer]:
    """A question's best ``n_best`` candidates as Answers, scored reader score + ``retriever_weight`` x the
    retriever's score of their passage, plus the best candidate of every passage read that has none among them
    (so the n-best shows what each passage offered, and the reader can be scored on the gold passage from the
    same read); ``probability`` is the softmax over that list, computed here, once."""
    ranked = sorted(((float(c["score"]) + retriever_weight * seg.passage.score, c, seg) for c, seg in found),
                    key=lambda t: t[0], reverse=True)
    scored, passages_in = ranked[:n_best], {id(t[2].passage) for t in ranked[:n_best]}
    for t in ranked[n_best:]:
        if id(t[2].passage) not in passages_in:  # this passage's best: the first of it in score order
            passages_in.add(id(t[2].passage))
            scored.append(t)
    answers = []
    for (score, cand, seg), probability in zip(scored, softmax([t[0] for t in scored])):
        p = seg.passage
        local_start, local_end = cand["offsets"][0] - seg.offset, cand["offsets"][1] - seg.offset
        answers.append(Answer(text=p.text[local_start:local_end], score=score, reader_score=float(cand["score"]),
                              probability=float(probability), passage_id=p.passage_id, title=p.title,
                              start=local_start, end=local_end, retriever_score=p.score, passage_rank=p.rank,
                              passage=p.text, document_id=p.document_id or p.passage_id,
                              document_start=p.document_start + local_start,
                              document_end=p.document_start + local_end,
                              no_answer_score=float(cand.get("no_answer_score", 0.0))))
    return answers
