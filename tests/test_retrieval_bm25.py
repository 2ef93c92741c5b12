"""BM25 on bm25s must score exactly like rank-bm25 (the parity reference) for the same variant."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rank_bm25

from odqa.retrieval.bm25 import BM25Retriever
from odqa.retrieval.corpus import Corpus


def random_corpus(seed: int, n_docs: int = 60, vocab: int = 40):
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(vocab)]
    # Zipf-like frequencies so some terms occur in more than half the documents (negative okapi idf)
    p = 1.0 / np.arange(1, vocab + 1)
    p /= p.sum()
    docs, seen = [], set()
    while len(docs) < n_docs:
        doc = " ".join(rng.choice(words, size=int(rng.integers(1, 25)), p=p))
        if doc not in seen:
            seen.add(doc)
            docs.append(doc)
    queries = [" ".join(rng.choice(words + ["unseen"], size=int(rng.integers(1, 6)))) for _ in range(25)]
    return docs, queries


def all_scores(retriever: BM25Retriever, queries: list[str]) -> np.ndarray:
    """Dense (queries x passages) scores through the public retrieve() with top_k = corpus size."""
    n = len(retriever.corpus)
    out = np.zeros((len(queries), n))
    for i, hits in enumerate(retriever.retrieve(queries, top_k=n)):
        assert [h.rank for h in hits] == list(range(1, n + 1))
        for h in hits:
            out[i, int(h.passage_id)] = h.score
    return out


def build(docs, **params) -> BM25Retriever:
    corpus = Corpus.from_records([{"id": str(i), "text": t} for i, t in enumerate(docs)])
    return BM25Retriever(tokenizer="whitespace", **params).index(corpus)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("variant,reference,params", [
    ("okapi", rank_bm25.BM25Okapi, {"k1": 1.2, "b": 0.75, "epsilon": 0.25}),
    ("okapi", rank_bm25.BM25Okapi, {"k1": 0.9, "b": 0.4, "epsilon": 0.5}),
    ("bm25+", rank_bm25.BM25Plus, {"k1": 1.5, "b": 0.6, "delta": 1.0}),
    ("bm25+", rank_bm25.BM25Plus, {"k1": 0.9, "b": 0.3, "delta": 0.5}),
])
def test_scores_equal_rank_bm25(seed, variant, reference, params):
    docs, queries = random_corpus(seed)
    ref = reference([d.split() for d in docs], **params)
    expected = np.array([ref.get_scores(q.split()) for q in queries])
    ours64 = all_scores(build(docs, variant=variant, dtype="float64", **params), queries)
    np.testing.assert_allclose(ours64, expected, atol=1e-6, rtol=0)


def test_default_float32_index_is_close_to_rank_bm25():
    docs, queries = random_corpus(3)
    ref = rank_bm25.BM25Plus([d.split() for d in docs], k1=1.2, b=0.75, delta=1.0)
    ours = all_scores(build(docs, variant="bm25+", k1=1.2, b=0.75, delta=1.0), queries)
    np.testing.assert_allclose(ours, [ref.get_scores(q.split()) for q in queries], atol=1e-5, rtol=1e-5)


def test_okapi_negative_idf_is_floored_like_rank_bm25():
    docs = ["a b", "a c", "a d", "e f"]  # 'a' in 3 of 4 documents -> negative Robertson idf
    ref = rank_bm25.BM25Okapi([d.split() for d in docs], epsilon=0.25)
    assert ref.idf["a"] > 0 and np.log(0.5 / 3.5) < 0  # rank-bm25 replaced it by epsilon * mean idf
    ours = all_scores(build(docs, variant="okapi", k1=1.5, b=0.75, dtype="float64"), ["a", "a e"])
    np.testing.assert_allclose(ours, [ref.get_scores(["a"]), ref.get_scores(["a", "e"])], atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_bm25l_matches_lv_zhai_with_rank_bm25_idf(seed):
    """rank-bm25's BM25L multiplies each term by an extra raw tf (its known bug); we follow the paper
    (and bm25s): idf * (k1+1)(c+delta)/(k1+c+delta), c = tf / (1-b+b*dl/avgdl), for every document.
    rank-bm25's idf, document lengths and term counts are the reference."""
    docs, queries = random_corpus(seed)
    k1, b, delta = 1.2, 0.75, 0.5
    ref = rank_bm25.BM25L([d.split() for d in docs], k1=k1, b=b, delta=delta)
    doc_len = np.array(ref.doc_len)
    expected = np.zeros((len(queries), len(docs)))
    for i, q in enumerate(queries):
        for term in q.split():
            if term not in ref.idf:
                continue
            tf = np.array([d.get(term, 0) for d in ref.doc_freqs])
            c = tf / (1 - b + b * doc_len / ref.avgdl)
            expected[i] += ref.idf[term] * (k1 + 1) * (c + delta) / (k1 + c + delta)
    ours = all_scores(build(docs, variant="bm25l", k1=k1, b=b, delta=delta, dtype="float64"), queries)
    np.testing.assert_allclose(ours, expected, atol=1e-6)


def test_lucene_variant_formula():
    docs, queries = random_corpus(5)
    k1, b = 0.9, 0.4
    ref = rank_bm25.BM25Okapi([d.split() for d in docs])  # only for counts and lengths
    doc_len, n = np.array(ref.doc_len), len(docs)
    expected = np.zeros((len(queries), n))
    for i, q in enumerate(queries):
        for term in q.split():
            if term not in ref.idf:
                continue
            tf = np.array([d.get(term, 0) for d in ref.doc_freqs])
            df = (tf > 0).sum()
            idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
            expected[i] += idf * tf / (tf + k1 * (1 - b + b * doc_len / ref.avgdl))
    ours = all_scores(build(docs, variant="lucene", k1=k1, b=b, dtype="float64"), queries)
    np.testing.assert_allclose(ours, expected, atol=1e-6)


def test_query_without_known_tokens_and_top_k_larger_than_corpus():
    r = build(["사과 바나나", "바나나 포도", "포도 수박"])
    hits = r.retrieve(["없는단어", "포도"], top_k=10)
    assert len(hits[0]) == 3 and all(h.score == 0 for h in hits[0])
    assert {h.passage_id for h in hits[1][:2]} == {"1", "2"}
    assert hits[1][2].score == 0 and hits[1][0].score > 0
    assert r.retrieve([], top_k=3) == []


def test_unknown_variant_is_a_config_error():
    from odqa.errors import ConfigError

    with pytest.raises(ConfigError, match="variant"):
        BM25Retriever(variant="bm26")


def test_chunked_indexing_equals_indexing_all_tokens_at_once(monkeypatch):
    """index() turns tokens into ids chunk by chunk (to bound memory); the index must not depend on it."""
    import odqa.retrieval.bm25 as bm25_module

    docs, queries = random_corpus(3)
    corpus = Corpus.from_records([{"id": str(i), "title": f"t{i % 4}", "text": t} for i, t in enumerate(docs)])
    whole = BM25Retriever("whitespace", title_weight=1)
    whole.index_tokens(corpus, whole.tokenizer.tokenize(whole.passage_texts(corpus.passages)))
    monkeypatch.setattr(bm25_module, "INDEX_CHUNK", 7)  # 60 passages -> 9 chunks, the last one partial
    chunked = BM25Retriever("whitespace", title_weight=1).index(corpus)
    assert chunked._engine.vocab_dict == whole._engine.vocab_dict
    np.testing.assert_array_equal(all_scores(chunked, queries), all_scores(whole, queries))


def test_numba_kernels_are_cached_on_disk_so_a_new_process_skips_the_jit():
    """bm25s compiles without cache=True; odqa turns the on-disk cache on, and the first query writes it."""
    pytest.importorskip("numba")
    from bm25s.numba import retrieve_utils

    from odqa.retrieval.bm25 import _cache_numba_kernels

    from odqa.retrieval import load_corpus
    from tests.conftest import SAMPLE_DIR

    retriever = BM25Retriever(tokenizer="bigram").index(load_corpus(str(SAMPLE_DIR / "train.json")))
    assert _cache_numba_kernels() >= 3
    kernel = retrieve_utils._retrieve_internal_jitted_serial
    assert type(kernel._cache).__name__ == "FunctionCache"
    retriever.retrieve(["경복궁이 처음 지어진 해는?"], 3)
    cache_dir = Path(kernel._cache.cache_path)
    assert any(p.name.startswith("retrieve_utils._retrieve_internal_jitted") and p.suffix == ".nbi"
               for p in cache_dir.iterdir())


def test_a_memory_mapped_index_answers_as_the_loaded_one(tmp_path):
    """load_retriever(dir, mmap=True): bm25s maps the score matrix from disk; the hits are the same."""
    from odqa.retrieval.registry import load_retriever

    corpus = Corpus.from_records([{"id": f"p{i}", "text": text} for i, text in enumerate(
        ["서울은 대한민국의 수도이다", "부산은 항구 도시이다", "경복궁은 서울에 있다", "한라산은 제주도에 있다"])])
    BM25Retriever(tokenizer="whitespace").index(corpus).save(tmp_path / "idx")
    queries = ["서울 경복궁", "제주도 한라산", "항구"]
    loaded, mapped = load_retriever(tmp_path / "idx"), load_retriever(tmp_path / "idx", mmap=True)
    assert mapped.retrieve(queries, 3) == loaded.retrieve(queries, 3)
    arrays = [v for v in mapped._engine.scores.values() if isinstance(v, np.ndarray)]
    assert arrays and all(isinstance(a, np.memmap) for a in arrays)
    assert not any(isinstance(v, np.memmap) for v in loaded._engine.scores.values())
