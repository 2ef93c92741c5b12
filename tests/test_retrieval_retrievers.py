"""Registry, save/load round trips, index errors, tfidf, csv replay, fusion and hybrid."""
from __future__ import annotations

import json

import numpy as np
import pytest

from odqa.errors import ConfigError, DataError, IndexLoadError
from odqa.retrieval.base import Hit
from odqa.retrieval.corpus import Corpus
from odqa.retrieval.fusion import reciprocal_rank_fusion, weighted_sum_fusion, zscore_fusion
from odqa.retrieval.registry import get_retriever, load_retriever, register_retriever, resolve_name

TEXTS = ["서울은 대한민국의 수도이다", "부산은 항구 도시이다", "한강은 서울을 흐른다", "제주도는 섬이다",
         "대전은 과학 도시이다"]
QUERIES = ["서울 수도", "항구 도시", "제주도 섬"]


@pytest.fixture
def corpus():
    return Corpus.from_records([{"id": f"p{i}", "title": "", "text": t} for i, t in enumerate(TEXTS)])


def ids(hits):
    return [[h.passage_id for h in row] for row in hits]


@pytest.mark.parametrize("name,cls_name,params", [
    ("bm25", "BM25Retriever", {}), ("SparseRetrieval_BM25P", "BM25Retriever", {"variant": "bm25+"}),
    ("sparseretrieval_bm25", "BM25Retriever", {"variant": "okapi"}),
    ("SparseRetrieval_TFIDF", "TfidfRetriever", {}), ("tfidf", "TfidfRetriever", {}),
    ("get_retrieved_df", "CsvRetriever", {}), ("csv", "CsvRetriever", {}),
])
def test_registry_names_and_aliases(name, cls_name, params):
    r = get_retriever(name, **({"tokenizer": "whitespace"} if "csv" not in cls_name.lower() else {})) \
        if cls_name != "CsvRetriever" else get_retriever(name)
    assert type(r).__name__ == cls_name
    for key, value in params.items():
        assert getattr(r, key) == value


def test_registry_errors_and_extension():
    assert resolve_name("DenseRetrieval")[0] == resolve_name("dpr")[0] == "dense"
    with pytest.raises(ConfigError, match="unknown retriever 'bm99'"):
        get_retriever("bm99")
    register_retriever("bm25-copy", "odqa.retrieval.bm25:BM25Retriever", aliases={"MyBM25": {"k1": 1.1}})
    assert get_retriever("mybm25", tokenizer="whitespace").k1 == 1.1


@pytest.mark.parametrize("name,params", [("bm25", {"variant": "okapi"}), ("bm25", {"variant": "bm25l"}),
                                          ("tfidf", {})])
def test_save_load_round_trip(tmp_path, corpus, name, params):
    r = get_retriever(name, tokenizer="whitespace+bigram", **params).index(corpus)
    before = r.retrieve(QUERIES, top_k=3)
    r.save(tmp_path / "idx")
    meta = json.loads((tmp_path / "idx" / "meta.json").read_text())
    assert meta["format"] == "odqa-index" and meta["version"] == 1 and meta["retriever"] == name
    assert meta["tokenizer"] == "whitespace+bigram"
    loaded = load_retriever(tmp_path / "idx")
    assert type(loaded) is type(r) and loaded.corpus.ids == corpus.ids
    after = loaded.retrieve(QUERIES, top_k=3)
    assert ids(after) == ids(before)
    np.testing.assert_allclose([[h.score for h in row] for row in after], [[h.score for h in row] for row in before])
    assert not list(tmp_path.glob(".idx*"))  # no temp dirs left behind
    r.save(tmp_path / "idx")  # overwriting an existing index works
    assert load_retriever(tmp_path / "idx").corpus.ids == corpus.ids


def test_corrupt_or_mismatched_index_errors(tmp_path, corpus):
    r = get_retriever("bm25", tokenizer="whitespace").index(corpus)
    r.save(tmp_path / "idx")
    with pytest.raises(IndexLoadError, match="index directory not found"):
        load_retriever(tmp_path / "nope")
    meta_path = tmp_path / "idx" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "version": 99}))
    with pytest.raises(IndexLoadError, match="version 99.*rebuild"):
        load_retriever(tmp_path / "idx")
    meta_path.write_text("{not json")
    with pytest.raises(IndexLoadError, match="meta.json: unreadable"):
        load_retriever(tmp_path / "idx")
    meta_path.write_text(json.dumps({**meta, "retriever": "tfidf"}))
    with pytest.raises(IndexLoadError, match="unexpected parameters.*rebuild"):
        load_retriever(tmp_path / "idx")
    meta_path.write_text(json.dumps(meta))
    (tmp_path / "idx" / "bm25s" / "data.csc.index.npy").write_bytes(b"garbage")
    with pytest.raises(IndexLoadError, match="missing or corrupt"):
        load_retriever(tmp_path / "idx")
    (tmp_path / "plain").mkdir()
    with pytest.raises(IndexLoadError, match="not an odqa index"):
        load_retriever(tmp_path / "plain")


def test_tfidf_is_cosine_of_sklearn_vectors(corpus):
    from sklearn.feature_extraction.text import TfidfVectorizer

    r = get_retriever("tfidf", tokenizer="whitespace").index(corpus)
    vec = TfidfVectorizer(analyzer=str.split, sublinear_tf=True)
    docs = vec.fit_transform([t.lower() for t in TEXTS])
    expected = (vec.transform(QUERIES) @ docs.T).toarray()
    for row, hits in zip(expected, r.retrieve(QUERIES, top_k=5)):
        np.testing.assert_allclose([h.score for h in hits], np.sort(row)[::-1], atol=1e-6)
        assert hits[0].passage_id == f"p{int(np.argmax(row))}"


def test_rrf_and_weighted_fusion_on_hand_made_rankings():
    a = [Hit("x", 10.0, 1), Hit("y", 5.0, 2), Hit("z", 0.0, 3)]
    b = [Hit("y", 0.9, 1), Hit("w", 0.8, 2)]
    rrf = reciprocal_rank_fusion([a, b], k=60)
    assert [h.passage_id for h in rrf] == ["y", "x", "w", "z"]
    assert rrf[0].score == pytest.approx(1 / 62 + 1 / 61) and [h.rank for h in rrf] == [1, 2, 3, 4]
    ws = weighted_sum_fusion([a, b], weights=[0.5, 0.5])
    # min-max: a -> x 1, y .5, z 0 ; b -> y 1, w 0
    assert {h.passage_id: h.score for h in ws} == pytest.approx({"x": 0.5, "y": 0.75, "z": 0.0, "w": 0.0})
    assert ws[0].passage_id == "y"
    only_first = weighted_sum_fusion([a, b], weights=[1.0, 0.0])
    assert [h.passage_id for h in only_first][:2] == ["x", "y"]


def test_zscore_fusion_on_hand_made_rankings():
    a = [Hit("x", 10.0, 1), Hit("y", 5.0, 2), Hit("z", 0.0, 3)]  # z-scores +1.22, 0, -1.22
    b = [Hit("y", 0.9, 1), Hit("w", 0.7, 2)]  # z-scores +1, -1
    z = {h.passage_id: h.score for h in zscore_fusion([a, b], weights=[0.5, 0.5])}
    s = np.sqrt(1.5)
    # a passage missing from a list gets that list's lowest z-score
    assert z == pytest.approx({"x": 0.5 * s - 0.5, "y": 0.5, "z": -0.5 * s - 0.5, "w": -0.5 * s - 0.5})
    assert [h.passage_id for h in zscore_fusion([a, b], weights=[1.0, 0.0])][:2] == ["x", "y"]
    assert [h.passage_id for h in zscore_fusion([a, [Hit("q", 1.0, 1)]], weights=[0.5, 0.5])][0] == "x"


def test_hybrid_end_to_end_and_round_trip(tmp_path, corpus):
    first = get_retriever("bm25", tokenizer="bigram")
    second = get_retriever("tfidf", tokenizer="bigram")
    hybrid = get_retriever("hybrid", first=first, second=second, fusion="rrf").index(corpus)
    hits = hybrid.retrieve(QUERIES, top_k=2)
    assert [row[0].passage_id for row in hits] == ["p0", "p1", "p3"]
    hybrid.save(tmp_path / "h")
    loaded = load_retriever(tmp_path / "h")
    assert ids(loaded.retrieve(QUERIES, top_k=2)) == ids(hits)
    # fuse() is what retrieve() does with the parts' own rankings
    depth = [part.retrieve(QUERIES, 100) for part in hybrid.parts]
    assert ids(hybrid.fuse(*depth, top_k=2)) == ids(hits)
    zscore = get_retriever("hybrid", first=first, second=second, fusion="zscore", weight=0.7).index(corpus)
    assert ids(load_retriever(zscore.save(tmp_path / "z")).retrieve(QUERIES, top_k=2)) == \
        ids(zscore.retrieve(QUERIES, top_k=2))
    with pytest.raises(ConfigError, match="unknown fusion"):
        get_retriever("hybrid", first=first, second=second, fusion="max")


def test_csv_replay_round_trip_and_column_errors(tmp_path, corpus):
    from odqa.retrieval.table import retrieve_table, write_table_csv

    bm25 = get_retriever("bm25", tokenizer="bigram").index(corpus)
    questions = [{"id": f"q{i}", "question": q} for i, q in enumerate(QUERIES)]
    table = retrieve_table(bm25, questions, top_k=2)
    assert list(table.columns) == ["id", "question", "passage_ids", "scores", "contexts"]
    assert table.loc[0, "contexts"][0] == corpus[table.loc[0, "passage_ids"][0]].text
    write_table_csv(table, tmp_path / "r.csv")
    replay = get_retriever("csv").from_csv(tmp_path / "r.csv").index()  # passages from the CSV itself
    assert ids(replay.retrieve(QUERIES, top_k=2)) == ids(bm25.retrieve(QUERIES, top_k=2))
    replay.save(tmp_path / "csv_idx")
    (tmp_path / "r.csv").unlink()  # the saved index does not need the CSV any more
    assert ids(load_retriever(tmp_path / "csv_idx").retrieve(QUERIES, top_k=1)) == ids(bm25.retrieve(QUERIES, 1))
    assert ids(bm25.retrieve(QUERIES, 1)) == [["p0"], ["p1"], ["p3"]]
    with pytest.raises(DataError, match="no replayed results for question"):
        replay.retrieve(["전혀 다른 질문"], top_k=1)

    bad = tmp_path / "bad.csv"
    bad.write_text("question,passage_ids\n서울 수도,p0\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.csv: row 0, column 'passage_ids' must be a JSON list"):
        get_retriever("csv").from_csv(bad)
    bad.write_text("query,passage_ids\n", encoding="utf-8")
    with pytest.raises(DataError, match="no 'question' column"):
        get_retriever("csv").from_csv(bad)
    bad.write_text('question,passage_ids\n서울 수도,"[""p9""]"\n', encoding="utf-8")
    with pytest.raises(DataError, match="not in corpus.*'p9'"):
        get_retriever("csv").from_csv(bad).index(corpus)
    bad.write_text("question,other\n서울 수도,x\n", encoding="utf-8")
    with pytest.raises(DataError, match="none of 'passage_ids', 'contexts', 'context'"):
        get_retriever("csv").from_csv(bad)
