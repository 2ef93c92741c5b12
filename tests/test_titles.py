"""--add_title: contexts read as "<title>: <context>" in training and reading, offsets mapped back."""
from __future__ import annotations

import json

import pytest

from odqa.reader.answers import PassageToRead
from odqa.reader.extractive import _place, _rank


def test_prepend_titles_moves_the_answers_along(squad_file):
    from odqa.data import load_mrc_dataset
    from odqa.data.titles import prepend_titles

    examples = load_mrc_dataset(squad_file)
    titled = prepend_titles(examples)
    for before, after in zip(examples, titled):
        assert after["context"] == f"{before['title']}: {before['context']}"
        for text, start in zip(after["answers"]["text"], after["answers"]["answer_start"]):
            assert after["context"][start:start + len(text)] == text


@pytest.mark.parametrize("mode", ["passage", "concat"])
def test_reading_with_titles_maps_spans_back_into_the_passage(mode):
    from odqa.reader.extractive import ExtractiveReader

    passages = [PassageToRead("p1", "세종은 훈민정음을 만들었다.", title="세종", score=2.0),
                PassageToRead("p2", "경복궁은 1395년에 지어졌다.", title="경복궁", score=1.0, rank=2)]
    reader = ExtractiveReader.__new__(ExtractiveReader)  # build_examples needs no model
    examples, segments = reader.build_examples(["질문?"], [passages], mode, add_title=True)
    contexts = list(examples["context"])
    assert contexts[0].startswith("세종: 세종은")
    last = contexts[-1]
    start = last.index("1395년")
    answer = _answer({"offsets": (start, start + 5), "score": 1.0}, segments[-1], 0.0)
    assert (answer.passage_id, answer.text, answer.passage[answer.start:answer.end]) == ("p2", "1395년", "1395년")
    title_start = last.index("경복궁: ")
    assert _answer({"offsets": (title_start, title_start + 3), "score": 9.0}, segments[-1], 0.0) is None


def test_a_reader_trained_with_titles_reads_with_titles(tmp_path, squad_file):
    from odqa.pipeline import ExtractiveReader, ODQAPipeline
    from odqa.reader.train import main
    from odqa.retrieval import get_retriever, load_corpus
    from tests.helpers_models import save_tiny_bert

    encoder = save_tiny_bert(tmp_path / "encoder", vocab_size=200)
    out = tmp_path / "reader"
    assert main(["--model", str(encoder), "--train_dataset", str(squad_file), "--eval_dataset", str(squad_file),
                 "--output_dir", str(out), "--num_train_epochs", "1", "--max_seq_len", "64", "--doc_stride", "16",
                 "--max_query_length", "16", "--add_title", "--report_to", "none"]) == 0
    assert json.loads((out / "config.json").read_text(encoding="utf-8"))["odqa_add_title"] is True
    from odqa.reader.processor import WindowConfig

    reader = ExtractiveReader.from_pretrained(str(out), window=WindowConfig(max_seq_length=64, doc_stride=16,
                                                                            max_query_length=16))
    pipe = ODQAPipeline(get_retriever("bm25", tokenizer="bigram").index(load_corpus(str(squad_file))), reader)
    assert reader.trained_with_titles and pipe.read_options.add_title
    answers = pipe("세종대왕은 무엇을 창제하였나?", top_k=2)
    assert all(a.passage[a.start:a.end] == a.text for a in answers)


def test_answers_in_split_passages_carry_their_offsets_in_the_source_document():
    """A document split into passages: each answer also says where it sits in the whole document."""
    import pandas as pd

    from odqa.pipeline.pipeline import passages_from_table
    from odqa.retrieval.corpus import Corpus
    from odqa.retrieval.splitting import split_corpus

    document = "조선의 수도는 한양이었다. " * 8 + "경복궁은 1395년에 지어졌다. " + "궁궐은 여러 번 불탔다. " * 8
    corpus = split_corpus(Corpus.from_records([{"id": "doc", "title": "경복궁", "text": document}]), size=60)
    assert len(corpus) > 2
    hit = next(p for p in corpus if "1395년" in p.text)
    table = pd.DataFrame({"passage_ids": [[hit.id]], "scores": [[1.0]], "contexts": [[hit.text]]})
    [[passage]] = passages_from_table(table, corpus)
    assert (passage.document_id, passage.document_start) == ("doc", hit.start)
    # the pipeline's own path: the hits carry their passages from the retriever to the reader, no table
    from odqa.pipeline.pipeline import passages_from_hits
    from odqa.retrieval import get_retriever
    from odqa.retrieval.table import retrieve_hits

    [hits] = retrieve_hits(get_retriever("bm25", tokenizer="bigram").index(corpus),
                           [{"id": "q", "question": "경복궁 1395년"}], top_k=3)
    assert hits[0].passage_id == hit.id and hits[0].passage == hit
    [read] = passages_from_hits([hits])
    assert (read[0].text, read[0].title, read[0].document_id, read[0].document_start) == (
        hit.text, "경복궁", "doc", hit.start)
    assert [p.rank for p in read] == [1, 2, 3]
    start = hit.text.index("1395년")
    answer = _answer({"offsets": (start, start + 5), "score": 1.0}, [_segment(passage)], 0.0)
    assert document[answer.document_start:answer.document_end] == answer.text == "1395년"
    assert answer.document_id == "doc" and answer.to_dict()["document_start"] == hit.start + start


def _segment(passage):
    from odqa.reader.extractive import _Segment

    return _Segment(passage, 0, 0)


def _answer(candidate, segments, retriever_weight):
    """The candidate as the pipeline turns it into an Answer (None when it lies outside every passage)."""
    segment = _place(candidate, segments)
    return None if segment is None else _rank([(candidate, segment)], 1, retriever_weight)[0]
