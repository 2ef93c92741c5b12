"""Command-line options of the ``elasticsearch`` retriever (``--es_*``), shared by index, eval-retrieval and infer.

Credentials are deliberately not options: they come from ``ODQA_ES_API_KEY`` or
``ODQA_ES_USERNAME``/``ODQA_ES_PASSWORD`` (see :mod:`odqa.retrieval.es.connection`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from odqa.retrieval.es.connection import API_KEY_ENV, URL_ENV


@dataclass
class ElasticsearchArguments:
    es_url: Optional[str] = field(default=None, metadata={
        "help": f"elasticsearch: cluster URL without credentials (default ${URL_ENV}, else http://localhost:9200). "
                f"Credentials come from the environment only: {API_KEY_ENV}, or ODQA_ES_USERNAME + ODQA_ES_PASSWORD."})
    es_index: str = field(default="odqa", metadata={
        "help": "elasticsearch: index (alias) name; a rebuild loads a new index behind it and swaps it in."})
    es_mode: str = field(default="bm25", metadata={
        "help": "elasticsearch: bm25 (nori BM25 over title and text), dense (kNN on --dense_model vectors stored in "
                "the index) or hybrid (both, fused by --es_fusion).", "choices": ["bm25", "dense", "hybrid"]})
    es_fusion: str = field(default="zscore", metadata={
        "help": "elasticsearch hybrid: zscore, weighted or rrf (in odqa, like the local hybrid) or server "
                "(Elasticsearch adds the boosted scores).", "choices": ["zscore", "weighted", "rrf", "server"]})
    es_fusion_weight: float = field(default=0.8, metadata={
        "help": "elasticsearch hybrid: BM25's share in [0, 1] (0.8: the best bm25 + dense share measured locally)."})
    es_analyzer: str = field(default="nori", metadata={
        "help": "elasticsearch: nori (Korean morphology; needs the analysis-nori plugin) or standard (fallback).",
        "choices": ["nori", "standard"]})
    es_decompound_mode: str = field(default="mixed", metadata={
        "help": "elasticsearch nori: compounds kept whole (none), split (discard) or both (mixed).",
        "choices": ["none", "discard", "mixed"]})
    es_stoptags: Optional[list[str]] = field(default=None, metadata={
        "help": "elasticsearch nori: part-of-speech tags to drop (default: the plugin's list: endings, particles, "
                "punctuation, ...)."})
    es_readingform: bool = field(default=True, metadata={"help": "elasticsearch nori: hanja to hangul."})
    es_user_dictionary: Optional[str] = field(default=None, metadata={
        "help": "elasticsearch nori: file of user dictionary rules, one per line (e.g. `세종대왕` or "
                "`삼성전자 삼성 전자`)."})
    es_synonyms: Optional[str] = field(default=None, metadata={
        "help": "elasticsearch: synonyms file, Solr format (`한글, 훈민정음`), applied at search time."})
    es_title_boost: float = field(default=2.0, metadata={"help": "elasticsearch: weight of a title match (0: text only)."})
    es_shards: Optional[int] = field(default=None, metadata={"help": "elasticsearch: primary shards (cluster default)."})
    es_replicas: Optional[int] = field(default=None, metadata={"help": "elasticsearch: replicas (cluster default)."})
    es_similarity: str = field(default="cosine", metadata={
        "help": "elasticsearch dense: similarity of the dense_vector field.",
        "choices": ["cosine", "dot_product", "max_inner_product", "l2_norm"]})
    es_hnsw_m: int = field(default=16, metadata={"help": "elasticsearch dense: HNSW links per node."})
    es_hnsw_ef_construction: int = field(default=100, metadata={"help": "elasticsearch dense: HNSW build beam."})
    es_num_candidates: int = field(default=100, metadata={"help": "elasticsearch dense: kNN candidates per shard."})
    es_settings: Optional[str] = field(default=None, metadata={
        "help": "elasticsearch: JSON file with \"settings\"/\"mappings\" merged into odqa's index body last."})
    es_timeout: float = field(default=30.0, metadata={"help": "elasticsearch: seconds per request."})
    es_max_retries: int = field(default=3, metadata={
        "help": "elasticsearch: retries on timeouts, 429 and 502-504 (bulk documents: with exponential backoff)."})
    es_verify_certs: bool = field(default=True, metadata={"help": "elasticsearch: verify TLS certificates."})
    es_ca_certs: Optional[str] = field(default=None, metadata={"help": "elasticsearch: CA bundle for TLS."})
    es_chunk_size: int = field(default=500, metadata={"help": "elasticsearch: documents per bulk request."})
    es_batch_size: int = field(default=64, metadata={"help": "elasticsearch: questions per _msearch request."})


def elasticsearch_retriever(args: Any, show_progress: bool | None = True, attach: bool = False) -> Any:
    """An ``ElasticsearchRetriever`` from parsed options (``--es_*``, ``--k1/--b``, ``--dense_model``): un-indexed,
    or with ``attach`` searching the existing cluster index ``--es_index`` directly."""
    from odqa.retrieval.es.connection import EsConnection
    from odqa.retrieval.es.retriever import ElasticsearchRetriever, EsSearch
    from odqa.retrieval.es.schema import EsIndexSettings, read_lines, read_overrides

    settings = EsIndexSettings(
        analyzer=args.es_analyzer, decompound_mode=args.es_decompound_mode, stoptags=args.es_stoptags,
        readingform=args.es_readingform,
        user_dictionary_rules=read_lines(args.es_user_dictionary, "--es_user_dictionary"),
        synonyms=read_lines(args.es_synonyms, "--es_synonyms"),
        k1=1.2 if args.k1 is None else args.k1, b=0.75 if args.b is None else args.b,
        shards=args.es_shards, replicas=args.es_replicas, similarity=args.es_similarity, hnsw_m=args.es_hnsw_m,
        hnsw_ef_construction=args.es_hnsw_ef_construction, overrides=read_overrides(args.es_settings))
    search = EsSearch(mode=args.es_mode, title_boost=args.es_title_boost, fusion=args.es_fusion,
                      weight=args.es_fusion_weight, num_candidates=args.es_num_candidates,
                      batch_size=args.es_batch_size)
    connection = EsConnection(url=args.es_url, request_timeout=args.es_timeout, max_retries=args.es_max_retries,
                              verify_certs=args.es_verify_certs, ca_certs=args.es_ca_certs,
                              bulk_chunk_size=args.es_chunk_size)
    options = {"search": search, "connection": connection, "settings": settings, "dense_model": args.dense_model,
               "show_progress": show_progress}
    if attach:
        return ElasticsearchRetriever.attach(args.es_index, **options)
    return ElasticsearchRetriever(args.es_index, **options)
