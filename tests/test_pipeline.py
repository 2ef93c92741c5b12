"""The reader at inference time and the notebook API, on a tiny random reader over data/sample."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from odqa.errors import ConfigError
from odqa.pipeline import (
    Answer,
    ExtractiveReader,
    ODQAPipeline,
    PassageToRead,
    ReadOptions,
    passages_from_table,
)
from odqa.reader.extractive import DEFAULT_RETRIEVER_WEIGHT
from odqa.reader.processor import WindowConfig
from tests.conftest import SAMPLE_DIR

WINDOW = WindowConfig(max_seq_length=64, doc_stride=24, max_query_length=16)
TINY_WINDOW = ["--max_seq_len", "64", "--doc_stride", "24", "--max_query_length", "16"]
SAMPLE_CORPUS = [str(SAMPLE_DIR / "train.json"), str(SAMPLE_DIR / "validation.json"),
                 str(SAMPLE_DIR / "extra_passages.jsonl")]


def save_tiny_reader(path: Path, tokenizer_dir: Path, head: str = "linear", seed: int = 0) -> Path:
    """A 2-layer BERT reader (random weights, ``head``) with the given tokenizer: a folder load_reader accepts."""
    from transformers import AutoTokenizer

    from odqa.reader.modeling import get_model
    from tests.helpers_models import save_tiny_bert

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    encoder = save_tiny_bert(path / "encoder", vocab_size=len(tokenizer), seed=seed, with_tokenizer=False)
    model = get_model(str(encoder), head=head)
    model.save_pretrained(path / "reader")
    tokenizer.save_pretrained(path / "reader")
    return path / "reader"


def write_question_subset(path: Path, n_paragraphs: int = 4, max_questions: int = 3) -> Path:
    """The first paragraphs of the sample validation set, a few questions each (keeps CLI tests fast)."""
    payload = json.loads((SAMPLE_DIR / "validation.json").read_text(encoding="utf-8"))
    articles = payload["data"][:n_paragraphs]
    for article in articles:
        for paragraph in article["paragraphs"]:
            paragraph["qas"] = paragraph["qas"][:max_questions]
    path.write_text(json.dumps({"version": "subset", "data": articles}, ensure_ascii=False), encoding="utf-8")
    return path


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def reader_dir(tmp_path_factory, char_tokenizer_dir):
    return save_tiny_reader(tmp_path_factory.mktemp("tiny_reader"), char_tokenizer_dir)


@pytest.fixture(scope="module")
def reader(reader_dir):
    return ExtractiveReader.from_pretrained(str(reader_dir), window=WINDOW, batch_size=8, show_progress=False)


@pytest.fixture(scope="module")
def sample_corpus():
    from odqa.retrieval import load_corpus

    return load_corpus(SAMPLE_DIR / "validation.json")


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory, sample_corpus):
    from odqa.retrieval import get_retriever

    path = tmp_path_factory.mktemp("idx") / "bm25"
    get_retriever("bm25", tokenizer="bigram").index(sample_corpus).save(path)
    return path


def _passages(corpus, n=3, scores=None):
    scores = scores or [float(n - i) for i in range(n)]
    return [PassageToRead(p.id, p.text, p.title, s, r) for r, (p, s) in enumerate(zip(corpus.passages[:n], scores), 1)]


def test_answers_point_into_their_passage(reader, sample_corpus):
    passages = _passages(sample_corpus, 3)
    [answers] = reader.read(["경복궁이 처음 지어진 해는?"], [passages])
    assert answers and len(answers) <= WINDOW.n_best_size + len(passages) - 1  # n-best + each passage's best
    by_id = {p.passage_id: p for p in passages}
    for a in answers:
        assert a.passage == by_id[a.passage_id].text and a.passage[a.start:a.end] == a.text != ""
        # the default weight adds a share of the retriever score of the answer's own passage
        assert a.retriever_score == by_id[a.passage_id].score
        assert a.score == pytest.approx(a.reader_score + DEFAULT_RETRIEVER_WEIGHT * a.retriever_score)
    assert [a.score for a in answers] == sorted((a.score for a in answers), reverse=True)
    assert sum(a.probability for a in answers) == pytest.approx(1.0)


def test_best_span_is_the_best_over_passages_read_alone(reader, sample_corpus):
    passages = _passages(sample_corpus, 4)
    question = "이 글의 주제는 무엇인가?"
    [together] = reader.read([question], [passages])
    alone = [reader.read([question], [[p]])[0][0] for p in passages]
    best_alone = max(alone, key=lambda a: a.score)
    assert (together[0].passage_id, together[0].start, together[0].end) == \
        (best_alone.passage_id, best_alone.start, best_alone.end)
    assert together[0].score == pytest.approx(best_alone.score, abs=1e-4)


def test_retriever_weight_moves_the_answer_to_the_best_scored_passage(reader, sample_corpus):
    question = "이 글의 주제는 무엇인가?"
    [plain] = reader.read([question], [_passages(sample_corpus, 3)])
    loser = next(p.passage_id for p in _passages(sample_corpus, 3) if p.passage_id != plain[0].passage_id)
    boosted = [PassageToRead(p.passage_id, p.text, p.title, 1000.0 if p.passage_id == loser else 0.0, p.rank)
               for p in _passages(sample_corpus, 3)]
    [weighted] = reader.read([question], [boosted], ReadOptions(retriever_weight=1.0))
    assert weighted[0].passage_id == loser
    assert weighted[0].score == pytest.approx(weighted[0].reader_score + 1000.0)


def test_length_sorted_dynamic_batches_give_the_logits_of_one_by_one(reader_dir, sample_corpus):
    batched = ExtractiveReader.from_pretrained(str(reader_dir), window=WINDOW, batch_size=5, show_progress=False)
    single = ExtractiveReader.from_pretrained(str(reader_dir), window=WINDOW, batch_size=1, show_progress=False)
    short = [PassageToRead(p.passage_id, p.text[:150], p.title) for p in _passages(sample_corpus, 2)]
    examples, _ = batched.build_examples(["짧은 질문?", "조금 더 긴 질문은 무엇인가?"], [short, short[:1]])
    features = batched.featurize(examples)
    assert len({len(ids) for ids in features["input_ids"]}) > 1  # windows of different lengths share batches
    for a, b in zip(batched.forward(features)[0], single.forward(features)[0]):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_concat_with_one_passage_equals_passage_mode(reader, sample_corpus):
    questions = ["경복궁이 처음 지어진 해는?", "무엇을 만들었나?"]
    passages = [_passages(sample_corpus, 1), _passages(sample_corpus, 1)]
    per_passage = reader.read(questions, passages)
    concat = reader.read(questions, passages, ReadOptions(mode="concat"))
    assert [(a.text, a.start, a.end) for a in per_passage[0]] == [(a.text, a.start, a.end) for a in concat[0]]


def test_concat_offsets_map_back_to_the_source_passage(reader, sample_corpus):
    passages = _passages(sample_corpus, 3)
    [answers] = reader.read(["이 글의 주제는 무엇인가?"], [passages], ReadOptions(mode="concat"))
    by_id = {p.passage_id: p.text for p in passages}
    assert answers
    for a in answers:
        assert by_id[a.passage_id][a.start:a.end] == a.text and "\n\n" not in a.text


def test_questions_without_passages_get_no_answers(reader, sample_corpus):
    assert reader.read(["질문?", "다른 질문?"], [[], _passages(sample_corpus, 1)])[0] == []
    assert reader.read(["질문?"], [[]]) == [[]]


def test_bad_read_options_are_config_errors(reader_dir):
    with pytest.raises(ConfigError, match="read mode"):
        ReadOptions(mode="sliding").check()
    with pytest.raises(ConfigError, match="batch_size"):
        ExtractiveReader.from_pretrained(str(reader_dir), window=WINDOW, batch_size=0)


def test_passage_score_ratio_cuts_low_scored_passages_but_keeps_the_top():
    import pandas as pd

    table = pd.DataFrame({"id": ["a", "b"], "question": ["q", "q2"], "passage_ids": [["p1", "p2", "p3"], ["x"]],
                          "scores": [[10.0, 6.0, 4.0], [0.5]], "contexts": [["t1", "t2", "t3"], ["tx"]]})
    assert [len(g) for g in passages_from_table(table)] == [3, 1]
    cut = passages_from_table(table, score_ratio=0.5)
    assert [p.passage_id for p in cut[0]] == ["p1", "p2"] and [p.rank for p in cut[0]] == [1, 2]
    assert [p.passage_id for p in passages_from_table(table, score_ratio=0.99)[1]] == ["x"]


def test_pipeline_call_single_and_batched(reader_dir, index_dir):
    pipe = ODQAPipeline.from_pretrained(str(reader_dir), str(index_dir), window=WINDOW, show_progress=False)
    answers = pipe("경복궁이 처음 지어진 해는?", top_k=2, num_answers=3)
    assert 0 < len(answers) <= 3 and all(isinstance(a, Answer) for a in answers)
    assert answers[0].passage[answers[0].start:answers[0].end] == answers[0].text
    assert answers[0].passage_id in pipe.retriever.corpus and answers[0].title
    batched = pipe(["경복궁이 처음 지어진 해는?", "태양계에서 가장 큰 행성은?"], top_k=2, num_answers=3)
    assert len(batched) == 2
    assert [(a.passage_id, a.start, a.end) for a in batched[0]] == [(a.passage_id, a.start, a.end) for a in answers]
    np.testing.assert_allclose([a.score for a in batched[0]], [a.score for a in answers], atol=1e-4)


def test_notebook_calls_are_quiet_unless_asked(reader_dir, index_dir, capfd):
    """A library call on a few questions draws no progress bars by default; show_progress=True draws them."""
    pipe = ODQAPipeline.from_pretrained(str(reader_dir), str(index_dir), window=WINDOW)
    capfd.readouterr()
    pipe(["경복궁이 처음 지어진 해는?", "태양계에서 가장 큰 행성은?"], top_k=3)
    assert capfd.readouterr().err == ""
    loud = ODQAPipeline.from_pretrained(str(reader_dir), str(index_dir), window=WINDOW, batch_size=2,
                                        show_progress=True)
    capfd.readouterr()
    loud.run([{"id": "a", "question": "경복궁이 처음 지어진 해는?"}, {"id": "b", "question": "태양계?"}], top_k=3)
    err = capfd.readouterr().err
    assert "test features" in err and "read" in err


def test_progress_policy():
    from datasets.utils import logging as ds_logging

    from odqa.utils.progress import (
        AUTO_PROGRESS_MIN_ITEMS,
        datasets_progress,
        wants_progress,
    )

    assert not wants_progress(None, AUTO_PROGRESS_MIN_ITEMS - 1) and wants_progress(None, AUTO_PROGRESS_MIN_ITEMS)
    assert wants_progress(True, 2) and not wants_progress(True, 1) and not wants_progress(False, 10**6)
    before = ds_logging.is_progress_bar_enabled()
    with datasets_progress(False):
        assert not ds_logging.is_progress_bar_enabled()
    assert ds_logging.is_progress_bar_enabled() == before


def test_python_api_and_cli_share_their_defaults():
    """Top-k, retriever weight and windows: one definition for `odqa infer`, `odqa train-mrc` and the Python API."""
    import inspect

    from odqa.pipeline.cli import InferReaderArguments, InferRunArguments
    from odqa.reader.extractive import DEFAULT_TOP_K
    from odqa.reader.train import ReaderDataArguments

    window = WindowConfig()
    for args in (InferReaderArguments, ReaderDataArguments):
        fields = {f.name: f.default for f in dataclasses.fields(args)}
        assert (fields["max_seq_len"], fields["doc_stride"], fields["max_ans_len"]) == \
            (window.max_seq_length, window.doc_stride, window.max_answer_length)
    assert {f.name: f.default for f in dataclasses.fields(InferRunArguments)}["top_k_retrieval"] == DEFAULT_TOP_K
    assert inspect.signature(ODQAPipeline.__call__).parameters["top_k"].default == DEFAULT_TOP_K
    assert inspect.signature(ODQAPipeline.run).parameters["top_k"].default == DEFAULT_TOP_K
    assert {f.name: f.default for f in dataclasses.fields(InferReaderArguments)}["retriever_weight"] == \
        ReadOptions().retriever_weight == DEFAULT_RETRIEVER_WEIGHT


def test_questions_the_pipeline_refuses_or_cuts(reader_dir, index_dir, caplog):
    pipe = ODQAPipeline.from_pretrained(str(reader_dir), str(index_dir), window=WINDOW)
    for bad, message in (("", "empty"), ("   \n", "empty"), (None, "expects a question string"),
                         (["경복궁?", 3], "a list holding int"), (42, "got int")):
        with pytest.raises(ConfigError, match=message):
            pipe(bad)
    with pytest.raises(ConfigError, match="question 'b'.*empty"):
        pipe.run([{"id": "a", "question": "경복궁?"}, {"id": "b", "question": " "}])
    with caplog.at_level("WARNING", logger="odqa.reader.processor"):
        answers = pipe("경복궁이 처음 지어진 해는? " * 2000, top_k=1)  # ~26,000 characters
    assert answers and answers[0].text
    assert f"cut to their first {WINDOW.max_query_length} tokens" in caplog.text


def test_pipeline_needs_an_indexed_retriever(reader):
    from odqa.retrieval import get_retriever

    with pytest.raises(ConfigError, match="no index"):
        ODQAPipeline(get_retriever("bm25"), reader)


def test_dynamic_int8_replaces_linear_layers_and_still_reads(reader_dir, sample_corpus):
    from odqa.pipeline import quantize_reader

    fp32 = ExtractiveReader.from_pretrained(str(reader_dir), window=WINDOW, show_progress=False)
    int8 = ExtractiveReader.from_pretrained(str(reader_dir), window=WINDOW, quantize="int8-dynamic",
                                            show_progress=False)
    modules = list(int8.model.modules())
    assert any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in modules)
    assert not any(type(m) is torch.nn.Linear for m in modules)
    assert any(isinstance(m, torch.nn.Linear) for m in fp32.model.modules())  # the fp32 model is untouched
    [answers] = int8.read(["경복궁이 처음 지어진 해는?"], [_passages(sample_corpus, 2)])
    assert answers and answers[0].passage[answers[0].start:answers[0].end] == answers[0].text
    with pytest.raises(ConfigError, match="quantize"):
        quantize_reader(fp32.model, "int4")


@pytest.mark.parametrize("head", ["linear", "lstm_ln"])
def test_static_int8_calibrates_on_first_read_and_stays_close_to_fp32(tmp_path, char_tokenizer_dir, sample_corpus,
                                                                       head):
    path = save_tiny_reader(tmp_path, char_tokenizer_dir, head=head, seed=3)
    fp32 = ExtractiveReader.from_pretrained(str(path), window=WINDOW, show_progress=False)
    int8 = ExtractiveReader.from_pretrained(str(path), window=WINDOW, quantize="int8", show_progress=False,
                                            calibration_windows=16)
    questions = ["경복궁이 처음 지어진 해는?", "태양계는 언제 만들어졌나?"]
    passages = [_passages(sample_corpus, 3), _passages(sample_corpus, 2)]
    assert int8.needs_calibration
    timings: dict[str, float] = {}
    answers = int8.read(questions, passages, timings=timings)
    assert not int8.needs_calibration and "calibrate" in timings
    assert all(a and a[0].passage[a[0].start:a[0].end] == a[0].text for a in answers)

    examples, _ = fp32.build_examples(questions, passages)
    features = fp32.featurize(examples)
    ref_start, ref_end = fp32.forward(features)
    q_start, q_end = int8.forward(features)
    ref, got = np.concatenate(ref_start + ref_end), np.concatenate(q_start + q_end)
    assert got.shape == ref.shape and not np.array_equal(got, ref)  # really another (quantized) computation
    assert np.corrcoef(got, ref)[0, 1] > 0.95
    assert np.abs(got - ref).max() < 0.25 * np.abs(ref).max()


@pytest.mark.parametrize("mode", ["fp32-openvino", "bf16"])
def test_openvino_unquantized_reader_compiles_on_first_batch_and_matches_fp32(reader_dir, sample_corpus, mode):
    fp32 = ExtractiveReader.from_pretrained(str(reader_dir), window=WINDOW, show_progress=False)
    fast = ExtractiveReader.from_pretrained(str(reader_dir), window=WINDOW, quantize=mode, show_progress=False)
    assert not fast.needs_calibration and not fast.model.calibrated  # compiled on its first batch instead
    with pytest.raises(ConfigError, match="only a reader loaded with quantize='int8'"):
        fast.calibrate(["질문"], [_passages(sample_corpus, 1)])
    questions = ["경복궁이 처음 지어진 해는?", "태양계는 언제 만들어졌나?"]
    passages = [_passages(sample_corpus, 3), _passages(sample_corpus, 2)]
    examples, _ = fp32.build_examples(questions, passages)
    features = fp32.featurize(examples)
    ref_start, ref_end = fp32.forward(features)
    timings: dict[str, float] = {}
    got_start, got_end = fast.forward(features, timings=timings)
    assert fast.model.calibrated and "calibrate" not in timings
    ref, got = np.concatenate(ref_start + ref_end), np.concatenate(got_start + got_end)
    assert got.shape == ref.shape
    if mode == "fp32-openvino":  # the same computation in the same precision: float rounding only
        np.testing.assert_allclose(got, ref, atol=1e-3 * np.abs(ref).max())
    else:
        assert np.corrcoef(got, ref)[0, 1] > 0.99
    answers = fast.read(questions, passages)
    assert all(a and a[0].passage[a[0].start:a[0].end] == a[0].text for a in answers)


def test_static_int8_explicit_calibration_and_errors(reader_dir, sample_corpus, monkeypatch):
    import sys

    from odqa.pipeline import quantize_reader

    reader = ExtractiveReader.from_pretrained(str(reader_dir), window=WINDOW, quantize="int8", show_progress=False,
                                              calibration_windows=4)
    with pytest.raises(ConfigError, match="not calibrated"):
        reader.model(**{k: torch.ones(1, 8, dtype=torch.long) for k in ("input_ids", "attention_mask")})
    reader.calibrate(["한강은 어디를 흐르나?"] * 6, [_passages(sample_corpus, 1)] * 6)  # more questions than windows
    assert not reader.needs_calibration
    timings: dict[str, float] = {}
    reader.read(["경복궁이 처음 지어진 해는?"], [_passages(sample_corpus, 2)], timings=timings)
    assert "calibrate" not in timings
    fp32 = ExtractiveReader.from_pretrained(str(reader_dir), window=WINDOW, show_progress=False)
    with pytest.raises(ConfigError, match="only a reader loaded with quantize='int8'"):
        fp32.calibrate(["질문"], [_passages(sample_corpus, 1)])
    with pytest.raises(ConfigError, match="calibration_windows"):
        ExtractiveReader(fp32.model, fp32.tokenizer, calibration_windows=0)
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if odqa[int8] were not installed
    with pytest.raises(ConfigError, match=r"odqa\[int8\]"):
        quantize_reader(fp32.model, "int8")


def test_static_int8_sends_no_telemetry():
    """OpenVINO's converter and NNCF phone home unless openvino_telemetry is missing: odqa blocks it."""
    import subprocess
    import sys

    code = ("from odqa.runtime.quantization import _import_openvino; _import_openvino()\n"
            "import openvino.tools.ovc.convert_impl as c, nncf.telemetry.wrapper as w\n"
            "print(c.tm.__name__, type(w.telemetry).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["openvino.tools.ovc.telemetry_stub", "MagicMock"]


@pytest.mark.parametrize("head", ["lstm_ln", "cnn", "rnn", "lstm_cnn", "multihead_attention"])
def test_any_head_reads(tmp_path, char_tokenizer_dir, sample_corpus, head):
    path = save_tiny_reader(tmp_path, char_tokenizer_dir, head=head)
    reader = ExtractiveReader.from_pretrained(str(path), window=WINDOW, show_progress=False)
    assert reader.model.config.odqa_head == head
    [answers] = reader.read(["질문은?"], [_passages(sample_corpus, 2)])
    assert answers and answers[0].passage[answers[0].start:answers[0].end] == answers[0].text


def test_every_passage_read_keeps_its_best_answer(reader_dir, sample_corpus):
    """The n-best is the best n_best spans across passages plus each passage's best span when none of it made
    the cut: what each passage offered stays visible, and it is the answer that passage gives read alone."""
    window = dataclasses.replace(WINDOW, n_best_size=2)
    small = ExtractiveReader.from_pretrained(str(reader_dir), window=window, batch_size=8, show_progress=False)
    passages = _passages(sample_corpus, 5)
    question = "경복궁이 처음 지어진 해는?"
    [answers] = small.read([question], [passages])
    alone = small.read([question] * len(passages), [[p] for p in passages])
    offered = {p.passage_id for p, found in zip(passages, alone) if found}
    assert len(offered) > 2  # more passages offer a span than the n-best holds
    assert {a.passage_id for a in answers} == offered
    assert 2 < len(answers) <= 2 + len(offered) - 1
    assert [a.score for a in answers] == sorted((a.score for a in answers), reverse=True)
    for p, found in zip(passages, alone):
        if found:  # a passage's first answer in the n-best is its best answer when read alone
            mine = next(a for a in answers if a.passage_id == p.passage_id)
            assert (mine.start, mine.end, mine.text) == (found[0].start, found[0].end, found[0].text)


def test_gold_passage_figure_from_the_same_read_equals_reading_gold_passages_alone(reader, sample_corpus):
    """`odqa infer --do_eval` reports the reader alone on the gold passage without reading it twice."""
    from odqa.metrics import compute_metrics
    from odqa.pipeline.outputs import evaluate_result
    from odqa.retrieval import get_retriever
    from odqa.retrieval.questions import load_question_rows

    rows = load_question_rows(str(SAMPLE_DIR / "validation.json"))[:12]
    questions = [{"id": r["id"], "question": r["question"]} for r in rows]
    pipe = ODQAPipeline(get_retriever("bm25", tokenizer="bigram").index(sample_corpus), reader)
    result = pipe.run(questions, top_k=3)
    metrics = evaluate_result(result, rows, sample_corpus, 3)
    gold = metrics["gold_passage"]
    hit = {q["id"] for q, hits in zip(questions, result.hits)
           if any(sample_corpus[h.passage_id].text == r["context"] for h in hits for r in rows if r["id"] == q["id"])}
    assert gold["of"] == 12 and gold["questions"] == len(hit) > 0
    alone = reader.read([r["question"] for r in rows if r["id"] in hit],
                        [[PassageToRead("g", r["context"])] for r in rows if r["id"] in hit])
    expected = compute_metrics({r["id"]: a[0].text for r, a in zip([r for r in rows if r["id"] in hit], alone)},
                               {r["id"]: r["answers"]["text"] for r in rows if r["id"] in hit})
    assert gold["exact_match"] == pytest.approx(expected["exact_match"])
    assert gold["f1"] == pytest.approx(expected["f1"])
    # with the passage cut, only what was read counts
    cut = evaluate_result(result, rows, sample_corpus, 3, score_ratio=0.999)
    assert cut["gold_passage"]["questions"] <= gold["questions"]
    assert evaluate_result(result, rows, sample_corpus, 3, read_mode="concat").get("gold_passage") is None
