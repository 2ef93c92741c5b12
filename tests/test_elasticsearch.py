"""The elasticsearch retriever: index and query bodies, and every client path against a loopback fake cluster.

No Elasticsearch server can run here, so the bodies are checked against the request shapes of the REST
documentation, and the client paths (bulk retries, count check, alias swap, msearch, auth, errors) run
against ``tests/fake_elasticsearch.py``, whose received requests are asserted. The last test runs
against a real cluster when ``ODQA_ES_URL`` is set.
"""
from __future__ import annotations

import json
import os
import socket

import pytest

from odqa.cli import main
from odqa.errors import ConfigError, IndexLoadError
from odqa.retrieval import get_retriever, load_retriever
from odqa.retrieval.corpus import Corpus, Passage
from odqa.retrieval.es.connection import ElasticsearchError, EsConnection, auth_from_environment
from odqa.retrieval.es.queries import bm25_body, knn_body, msearch_searches, server_hybrid_body
from odqa.retrieval.es.retriever import ElasticsearchRetriever, corpus_fingerprint
from odqa.retrieval.es.schema import (NORI_DEFAULT_STOPTAGS, EsIndexSettings, check_index_name, index_body,
                                      read_overrides)
from odqa.retrieval.registry import resolve_name
from tests.conftest import KORQUAD_HALF, PARAGRAPHS
from tests.fake_elasticsearch import FakeElasticsearch

pytest.importorskip("elasticsearch", reason="the elasticsearch client is not installed (pip install odqa[elasticsearch])")

PASSAGES = [Passage("p0", "한강 은 서울 을 가로질러 흐르는 강 이다", "한강"),
            Passage("p1", "세종 이 훈민정음 을 창제 하였다", "훈민정음"),
            Passage("p2", "겨울 은 가장 추운 계절 이다", "계절"),
            Passage("p3", "부산 은 대한민국 의 항구 도시 이다", "부산")]
QUESTIONS = ["훈민정음 을 창제 한 왕", "가장 추운 계절", "서울 을 흐르는 강"]
EXPECTED_TOP = ["p1", "p2", "p0"]


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch):
    for name in ("ODQA_ES_URL", "ODQA_ES_API_KEY", "ODQA_ES_USERNAME", "ODQA_ES_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def corpus():
    return Corpus(list(PASSAGES))


def retriever_for(url: str, **options) -> ElasticsearchRetriever:
    connection = {"url": url, "initial_backoff": 0.01, "max_retries": 3}
    return ElasticsearchRetriever(connection=connection, show_progress=False, **options)


# ------------------------------------------------------------------ bodies (REST documentation shapes)
def test_nori_index_body_follows_the_plugin_documentation():
    body = index_body(EsIndexSettings(user_dictionary_rules=["세종대왕"], k1=0.9, b=0.4, shards=2, replicas=0),
                      meta={"odqa": {"fingerprint": "abc"}})
    analysis = body["settings"]["analysis"]
    assert analysis["tokenizer"]["odqa_nori"] == {"type": "nori_tokenizer", "decompound_mode": "mixed",
                                                  "user_dictionary_rules": ["세종대왕"]}
    assert analysis["filter"]["odqa_pos"] == {"type": "nori_part_of_speech"}  # the plugin's default stop tags
    assert analysis["analyzer"]["odqa_text"]["filter"] == ["odqa_pos", "nori_readingform", "lowercase"]
    assert body["settings"]["similarity"]["odqa_bm25"] == {"type": "BM25", "k1": 0.9, "b": 0.4}
    assert body["settings"]["index"] == {"refresh_interval": "-1", "number_of_shards": 2, "number_of_replicas": 0}
    props = body["mappings"]["properties"]
    assert props["title"] == props["text"] == {"type": "text", "analyzer": "odqa_text", "similarity": "odqa_bm25"}
    assert "embedding" not in props and body["mappings"]["_meta"] == {"odqa": {"fingerprint": "abc"}}


def test_stoptags_synonyms_dense_field_and_overrides():
    settings = EsIndexSettings(stoptags=list(NORI_DEFAULT_STOPTAGS[:3]), readingform=False, synonyms=["한글, 훈민정음"],
                               similarity="dot_product", hnsw_m=8, hnsw_ef_construction=64,
                               overrides={"settings": {"index": {"number_of_shards": 3}},
                                          "mappings": {"properties": {"text": {"index_options": "offsets"}}}})
    body = index_body(settings, dimension=384)
    analysis = body["settings"]["analysis"]
    assert analysis["filter"]["odqa_pos"]["stoptags"] == ["E", "IC", "J"]
    assert analysis["analyzer"]["odqa_text"]["filter"] == ["odqa_pos", "lowercase"]
    assert analysis["filter"]["odqa_synonyms"] == {"type": "synonym_graph", "synonyms": ["한글, 훈민정음"]}
    assert analysis["analyzer"]["odqa_search"]["filter"] == ["odqa_pos", "lowercase", "odqa_synonyms"]
    text = body["mappings"]["properties"]["text"]
    assert text["search_analyzer"] == "odqa_search" and text["index_options"] == "offsets"  # merged, not replaced
    assert body["settings"]["index"]["number_of_shards"] == 3
    assert body["mappings"]["properties"]["embedding"] == {
        "type": "dense_vector", "dims": 384, "index": True, "similarity": "dot_product",
        "index_options": {"type": "hnsw", "m": 8, "ef_construction": 64}}
    standard = index_body(EsIndexSettings(analyzer="standard"))
    assert "nori" not in json.dumps(standard)


def test_query_bodies():
    body = bm25_body("한강", 5, title_boost=2.0)
    assert body == {"query": {"multi_match": {"query": "한강", "fields": ["title^2", "text"], "type": "most_fields"}},
                    "size": 5, "_source": False, "track_total_hits": False}
    assert bm25_body("한강", 5, title_boost=0)["query"]["multi_match"]["fields"] == ["text"]
    knn = knn_body([0.5, 0.25], 20, num_candidates=10)["knn"]
    assert knn == {"field": "embedding", "query_vector": [0.5, 0.25], "k": 20, "num_candidates": 20}
    hybrid = server_hybrid_body("한강", [1.0], 3, 50, 1.0, weight=0.8)
    assert hybrid["query"]["multi_match"]["boost"] == 0.8 and hybrid["knn"]["boost"] == pytest.approx(0.2)
    assert msearch_searches("wiki", [{"a": 1}, {"b": 2}]) == [{"index": "wiki"}, {"a": 1}, {"index": "wiki"}, {"b": 2}]


def test_options_that_are_refused(tmp_path, monkeypatch):
    for bad in ("Wiki", "a b", "_x", "a/b", ""):
        with pytest.raises(ConfigError, match="index name"):
            check_index_name(bad)
    with pytest.raises(ConfigError, match="credentials in the URL"):
        EsConnection(url="https://elastic:secret@es.example:9200").check()
    with pytest.raises(ConfigError, match="--es_mode"):
        ElasticsearchRetriever(search={"mode": "sparse"})
    with pytest.raises(ConfigError, match="--es_analyzer"):
        index_body(EsIndexSettings(analyzer="mecab"))
    bad_json = tmp_path / "settings.json"
    bad_json.write_text("{oops", encoding="utf-8")
    with pytest.raises(ConfigError, match="settings.json: not valid JSON"):
        read_overrides(str(bad_json))
    monkeypatch.setenv("ODQA_ES_USERNAME", "elastic")
    with pytest.raises(ConfigError, match="ODQA_ES_PASSWORD"):
        auth_from_environment()
    monkeypatch.setenv("ODQA_ES_PASSWORD", "pw")
    assert auth_from_environment() == {"basic_auth": ("elastic", "pw")}
    monkeypatch.setenv("ODQA_ES_API_KEY", "k")
    assert auth_from_environment() == {"api_key": "k"}


def test_aliases_resolve():
    for name in ("elasticsearch", "ElasticSearch", "es", "es_retrieval", "ElasticsearchRetriever"):
        assert resolve_name(name)[0] == "elasticsearch"


# ------------------------------------------------------------------ client paths on the fake cluster
def test_index_retrieve_save_load_round_trip(corpus, tmp_path):
    with FakeElasticsearch() as fake:
        retriever = retriever_for(fake.url, es_index="wiki").index(corpus)
        hits = retriever.retrieve(QUESTIONS, top_k=2)
        assert [h[0].passage_id for h in hits] == EXPECTED_TOP
        assert all(h[0].rank == 1 and h[0].score >= h[-1].score for h in hits)
        creates = fake.cluster.calls("PUT")
        concrete = creates[0].path.strip("/")
        assert concrete.startswith("wiki-") and creates[0].body["mappings"]["_meta"]["odqa"]["fingerprint"] == \
            corpus_fingerprint(corpus)
        received = [(r.method, r.path.replace(concrete, "NEW")) for r in fake.cluster.requests]
        assert received == [("HEAD", "/_alias/wiki"), ("HEAD", "/wiki"), ("PUT", "/NEW"), ("PUT", "/_bulk"),
                            ("PUT", "/NEW/_settings"), ("POST", "/NEW/_refresh"), ("POST", "/NEW/_count"),
                            ("POST", "/_aliases"), ("POST", "/_msearch")]
        bulk = [line for r in fake.cluster.calls(endpoint="_bulk") for line in r.body]
        assert sorted(line["index"]["_id"] for line in bulk[::2]) == ["p0", "p1", "p2", "p3"]
        assert bulk[1] == {"title": "한강", "text": PASSAGES[0].text, "document_id": "", "start": 0}
        assert fake.cluster.calls(endpoint="_settings")[0].body == {"index": {"refresh_interval": None}}
        assert fake.cluster.calls(endpoint="_aliases")[0].body == {"actions": [{"add": {"index": concrete,
                                                                                       "alias": "wiki"}}]}
        searches = fake.cluster.calls(endpoint="_msearch")[0].body
        assert searches[0] == {"index": "wiki"} and searches[1]["query"]["multi_match"]["query"] == QUESTIONS[0]

        retriever.save(tmp_path / "idx")
        meta = json.loads((tmp_path / "idx" / "meta.json").read_text(encoding="utf-8"))
        assert meta["retriever"] == "elasticsearch" and meta["connection"]["url"] == fake.url
        loaded = load_retriever(tmp_path / "idx")
        assert fake.cluster.calls("GET", "_mapping")  # the fingerprint was checked
        assert loaded.retrieve(QUESTIONS, top_k=2) == hits


def test_rejected_documents_and_requests_are_retried(corpus):
    with FakeElasticsearch(bulk_item_rejections=3, request_rejections={"_msearch": 1}) as fake:
        retriever = retriever_for(fake.url).index(corpus)
        assert len(fake.cluster.calls(endpoint="_bulk")) >= 2  # the 429'd documents went again
        (concrete,) = fake.cluster.aliases["odqa"]
        assert len(fake.cluster.indices[concrete]["docs"]) == 4
        assert [h[0].passage_id for h in retriever.retrieve(QUESTIONS, 1)] == EXPECTED_TOP
        assert len(fake.cluster.calls(endpoint="_msearch")) == 2  # one 429, one retry


def test_failed_documents_are_named_and_the_old_index_keeps_serving(corpus):
    with FakeElasticsearch() as fake:
        retriever_for(fake.url).index(corpus)
        (first,) = fake.cluster.aliases["odqa"]
        fake.cluster.bulk_item_failures = {"p2"}
        with pytest.raises(ElasticsearchError, match=r"holds 3 of 4 passages; failed: p2 \(400: failed to parse"):
            retriever_for(fake.url, overwrite=True).index(corpus)
        assert fake.cluster.aliases["odqa"] == {first} and set(fake.cluster.indices) == {first}


def test_rebuild_needs_overwrite_and_swaps_the_alias_atomically(corpus):
    with FakeElasticsearch() as fake:
        retriever_for(fake.url).index(corpus)
        (first,) = fake.cluster.aliases["odqa"]
        with pytest.raises(ConfigError, match="already exists; pass --overwrite"):
            retriever_for(fake.url).index(corpus)
        retriever_for(fake.url, overwrite=True).index(Corpus(PASSAGES[:2]))
        (second,) = fake.cluster.aliases["odqa"]
        swap = fake.cluster.calls(endpoint="_aliases")[-1].body["actions"]
        assert swap == [{"remove": {"index": first, "alias": "odqa"}}, {"add": {"index": second, "alias": "odqa"}}]
        assert set(fake.cluster.indices) == {second}


def test_missing_nori_plugin_says_how_to_install_it(corpus):
    with FakeElasticsearch(nori=False) as fake:
        with pytest.raises(ElasticsearchError, match="analysis-nori.*--es_analyzer standard"):
            retriever_for(fake.url).index(corpus)
        assert not fake.cluster.indices
        retriever = retriever_for(fake.url, settings={"analyzer": "standard"}).index(corpus)
        assert [h[0].passage_id for h in retriever.retrieve(QUESTIONS, 1)] == EXPECTED_TOP


def test_authentication_comes_from_the_environment(corpus, monkeypatch):
    with FakeElasticsearch(api_key="s3cret") as fake:
        with pytest.raises(ElasticsearchError, match="authentication failed.*ODQA_ES_API_KEY"):
            retriever_for(fake.url).index(corpus)
        monkeypatch.setenv("ODQA_ES_API_KEY", "s3cret")
        retriever = retriever_for(fake.url).index(corpus)
        assert all(r.headers.get("authorization") == "ApiKey s3cret" for r in fake.cluster.requests[1:])
        assert "s3cret" not in json.dumps(retriever.params())


def test_unreachable_cluster_and_missing_index_are_one_line_errors(corpus, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    with pytest.raises(ElasticsearchError, match="cannot reach Elasticsearch.*--es_url"):
        ElasticsearchRetriever(connection={"url": f"http://127.0.0.1:{closed_port}", "max_retries": 0}).index(corpus)
    with FakeElasticsearch() as fake:
        retriever_for(fake.url).index(corpus).save(tmp_path / "idx")
        fake.cluster.indices.clear()
        fake.cluster.aliases.clear()
        with pytest.raises(ElasticsearchError, match="index 'odqa' not found.*odqa index --retriever elasticsearch"):
            load_retriever(tmp_path / "idx")


def test_a_folder_and_a_cluster_index_of_different_corpora_do_not_load(corpus, tmp_path):
    with FakeElasticsearch() as fake:
        retriever_for(fake.url).index(corpus).save(tmp_path / "idx")
        retriever_for(fake.url, overwrite=True).index(Corpus(PASSAGES[:3]))
        with pytest.raises(IndexLoadError, match="not built from this folder's corpus"):
            load_retriever(tmp_path / "idx")


def test_dense_and_hybrid_modes_store_and_search_vectors(corpus, tmp_path):
    from odqa.dense.encoder import DualEncoder
    from tests.helpers_models import save_tiny_bert

    encoder = DualEncoder.from_pretrained(str(save_tiny_bert(tmp_path / "enc", seed=3)))
    expected = encoder.encode_queries(QUESTIONS) @ encoder.encode_passages(corpus.texts).T
    with FakeElasticsearch() as fake:
        dense = retriever_for(fake.url, es_index="dense", search={"mode": "dense"}, encoder=encoder).index(corpus)
        create = fake.cluster.calls("PUT")[0].body
        assert create["mappings"]["properties"]["embedding"]["dims"] == encoder.dimension
        hits = dense.retrieve(QUESTIONS, top_k=4)
        for row, ranked in zip(expected, hits):  # the cluster scored odqa's own vectors: (1 + cos) / 2
            assert sorted(h.passage_id for h in ranked) == corpus.ids
            assert [h.score for h in ranked] == pytest.approx([(1 + row[corpus.row(h.passage_id)]) / 2
                                                               for h in ranked], abs=1e-5)
        knn = fake.cluster.calls(endpoint="_msearch")[-1].body[1]["knn"]
        assert len(knn["query_vector"]) == encoder.dimension and knn["k"] == 4

        for fusion in ("zscore", "server"):
            hybrid = retriever_for(fake.url, es_index=f"hybrid-{fusion}", encoder=encoder,
                                   search={"mode": "hybrid", "fusion": fusion, "weight": 1.0}).index(corpus)
            assert [h[0].passage_id for h in hybrid.retrieve(QUESTIONS, 1)] == EXPECTED_TOP  # all BM25 weight
        hybrid.save(tmp_path / "hybrid")
        assert (tmp_path / "hybrid" / "dual_encoder").is_dir()
        assert load_retriever(tmp_path / "hybrid").retrieve(QUESTIONS, 1) == hybrid.retrieve(QUESTIONS, 1)


def test_cli_retrieve_on_the_cluster_then_read_anywhere_from_the_csv(squad_file, tmp_path, capsys):
    with FakeElasticsearch() as fake:
        common = ["--retriever", "es", "--es_url", fake.url, "--es_index", "tiny"]
        assert main(["index", *common, "--corpus", str(squad_file), "--output", str(tmp_path / "idx")]) == 0
        assert main(["index", *common, "--corpus", str(squad_file), "--output", str(tmp_path / "idx")]) == 2
        assert "already exists" in capsys.readouterr().err
        assert main(["retrieve", "--index", str(tmp_path / "idx"), "--questions", str(squad_file),
                     "--output", str(tmp_path / "retrieved.csv"), "--top_k", "2"]) == 0
        capsys.readouterr()
        questions = [q for _, _, qas in PARAGRAPHS for q, _ in qas]
        cluster_hits = load_retriever(tmp_path / "idx").retrieve(questions, 2)
        assert main(["eval-retrieval", "--dataset", str(squad_file), "--index", str(tmp_path / "idx"),
                     "--top_k", "1", "2"]) == 0
        report = json.loads(capsys.readouterr().out)
    assert report["passages"] == 3 and report["recall@2"] > 50
    # read anywhere: the CSV replays without the cluster (the fake is gone), same passages, same order
    replay = get_retriever("csv").from_csv(tmp_path / "retrieved.csv").index(None)
    questions = [q for _, _, qas in PARAGRAPHS for q, _ in qas]
    assert any(cluster_hits) and [[h.passage_id for h in q] for q in replay.retrieve(questions, 2)] == \
        [[h.passage_id for h in q] for q in cluster_hits]


def test_cli_retrieve_straight_from_a_cluster_index_other_tools_filled(squad_file, tmp_path, capsys):
    with FakeElasticsearch() as fake:
        docs = {f"doc{n}": {"title": title, "text": context} for n, (title, context, _) in enumerate(PARAGRAPHS)}
        fake.cluster.indices["legacy"] = {"body": {"mappings": {}}, "docs": docs, "settings": {}}
        assert main(["retrieve", "--retriever", "es", "--es_url", fake.url, "--es_index", "legacy",
                     "--questions", str(squad_file), "--output", str(tmp_path / "r.csv"), "--top_k", "3"]) == 0
        searches = fake.cluster.calls(endpoint="_msearch")[0].body
        assert searches[1]["_source"] == ["title", "text", "document_id", "start"]
        assert main(["retrieve", "--questions", str(squad_file), "--output", str(tmp_path / "x.csv")]) == 2
        assert "--index DIR is required" in capsys.readouterr().err
    replay = get_retriever("csv").from_csv(tmp_path / "r.csv").index(None)  # texts came back with the hits
    hits = replay.retrieve([PARAGRAPHS[1][2][0][0]], 1)[0]
    assert hits and replay.corpus[hits[0].passage_id].text == PARAGRAPHS[1][1]


@pytest.mark.elasticsearch
@pytest.mark.skipif(not os.environ.get("ODQA_ES_URL"), reason="set ODQA_ES_URL to a cluster with analysis-nori "
                                                               "to run against real Elasticsearch")
def test_real_cluster_recall_next_to_local_bm25(squad_file, tmp_path, capsys):
    """Index the KorQuAD half (or the tiny set) on the cluster; its recall is printed next to local bm25's."""
    dataset = KORQUAD_HALF if KORQUAD_HALF.exists() else squad_file
    assert main(["index", "--retriever", "es", "--es_index", "odqa-test", "--corpus", str(dataset),
                 "--output", str(tmp_path / "idx"), "--overwrite"]) == 0
    capsys.readouterr()
    reports = {}
    for name, args in {"elasticsearch": ["--index", str(tmp_path / "idx")], "bm25": ["--retriever", "bm25"]}.items():
        assert main(["eval-retrieval", "--dataset", str(dataset), "--top_k", "1", "5", "20", *args]) == 0
        reports[name] = json.loads(capsys.readouterr().out)
    with capsys.disabled():
        for name, report in reports.items():
            print(f"\n{dataset.name} {name}: " + ", ".join(f"{k} {report[k]:.2f}" for k in ("recall@1", "recall@5",
                                                                                        "recall@20", "mrr@20")))
    assert reports["elasticsearch"]["recall@20"] >= 90
