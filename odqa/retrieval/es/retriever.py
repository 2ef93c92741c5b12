"""``ElasticsearchRetriever``: odqa's retriever interface on an Elasticsearch cluster.

The cluster holds the searchable index (nori BM25, and a ``dense_vector`` field when a dual encoder is
used); the local index folder holds what a reader needs and what keeps the two honest: ``meta.json``
(index name, analysis, query settings, the cluster URL without credentials), ``corpus.jsonl`` (passage
texts by id) and, for dense modes, ``dual_encoder/`` (queries must be encoded by the model that encoded
the passages). The cluster index records a fingerprint of the corpus in its mapping's ``_meta``;
loading checks it, so a folder and a cluster index built from different corpora never meet silently.
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from odqa.errors import ConfigError, IndexLoadError
from odqa.retrieval.base import Hit, IndexedRetriever
from odqa.retrieval.corpus import Corpus, Passage
from odqa.retrieval.es.connection import URL_ENV, ElasticsearchError, EsConnection, connect, translate_errors
from odqa.retrieval.es.indexing import (bulk_load, concrete_index_name, delete_quietly, finish_and_count,
                                        indices_behind, passage_actions, swap_alias)
from odqa.retrieval.es.queries import bm25_body, knn_body, msearch_searches, ranked_ids, server_hybrid_body
from odqa.retrieval.es.schema import EsIndexSettings, check_index_name, index_body
from odqa.retrieval.hybrid import FUSIONS, fuse_rankings
from odqa.utils.progress import wants_progress

logger = logging.getLogger(__name__)

ENCODER_DIR = "dual_encoder"
SOURCE_FIELDS = ["title", "text", "document_id", "start"]
MODES = ("bm25", "dense", "hybrid")
DEFAULT_ES_INDEX = "odqa"


@dataclass
class EsSearch:
    """How questions are searched.

    ``mode``: ``bm25`` (nori BM25 over title and text), ``dense`` (kNN on the dual encoder's vectors) or
    ``hybrid`` (both; ``fusion`` ``zscore``/``weighted``/``rrf`` fuse in odqa exactly like the local hybrid,
    ``server`` lets Elasticsearch add the two boosted scores). ``weight`` is BM25's share.
    """

    mode: str = "bm25"
    title_boost: float = 2.0
    fusion: str = "zscore"
    weight: float = 0.8
    num_candidates: int = 100
    depth: int = 100  # candidates per part before odqa-side fusion
    batch_size: int = 64  # questions per _msearch request

    def check(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"--es_mode {self.mode!r}: choose one of {', '.join(MODES)}.")
        if self.fusion not in (*FUSIONS, "server"):
            raise ConfigError(f"--fusion {self.fusion!r} for elasticsearch: choose one of "
                              f"{', '.join((*FUSIONS, 'server'))}.")
        if not 0.0 <= self.weight <= 1.0:
            raise ConfigError(f"--fusion_weight must be within [0, 1] (got {self.weight}).")
        if self.title_boost < 0 or self.num_candidates < 1 or self.depth < 1 or self.batch_size < 1:
            raise ConfigError("--es_title_boost must be >= 0 and --es_num_candidates, depth and batch size >= 1.")

    @property
    def uses_vectors(self) -> bool:
        return self.mode in ("dense", "hybrid")


def corpus_fingerprint(corpus: Corpus) -> str:
    """A digest of every passage's id, title and text: equal digests mean the same passages."""
    digest = hashlib.sha256()
    for p in corpus.passages:
        digest.update(f"{p.id}\x1f{p.title}\x1f{p.text}\x1e".encode("utf-8"))
    return digest.hexdigest()


def _coerce(value: Any, cls: type) -> Any:
    if value is None:
        return cls()
    return cls(**value) if isinstance(value, dict) else value


class ElasticsearchRetriever(IndexedRetriever):
    """Retrieve from the Elasticsearch index (or alias) ``es_index``; see the module docstring.

    ``index(corpus)`` builds a fresh concrete index behind the alias ``es_index`` and swaps it in;
    an existing one is replaced only with ``overwrite=True``.
    """

    name: ClassVar[str] = "elasticsearch"

    def __init__(self, es_index: str = DEFAULT_ES_INDEX, search: EsSearch | dict | None = None,
                 connection: EsConnection | dict | None = None, settings: EsIndexSettings | dict | None = None,
                 dense_model: str = "e5-small", show_progress: bool | None = None, overwrite: bool = False,
                 fingerprint: str | None = None, dimension: int | None = None, client: Any = None,
                 encoder: Any = None) -> None:
        self.es_index = check_index_name(es_index)
        self.search: EsSearch = _coerce(search, EsSearch)
        self.connection: EsConnection = _coerce(connection, EsConnection)
        self.settings: EsIndexSettings = _coerce(settings, EsIndexSettings)
        self.search.check()
        self.connection.check()
        self.settings.check()
        self.dense_model, self.show_progress, self.overwrite = dense_model, show_progress, overwrite
        self.fingerprint, self.dimension = fingerprint, dimension
        self._client, self.encoder = client, encoder
        self.corpus: Corpus | None = None
        self._attached_size: int | None = None  # set by attach(): passages come back with the hits

    @classmethod
    def attach(cls, es_index: str, **options: Any) -> "ElasticsearchRetriever":
        """Search an existing cluster index that has no odqa index folder (e.g. filled by other tools).

        Hits bring their ``title``/``text`` back from ``_source``, and ``corpus`` holds the passages seen
        so far, so ``retrieve_table`` and the ``retrieve`` command work; evaluation needs a real folder.
        """
        retriever = cls(es_index, **options)
        with retriever._errors():
            retriever._attached_size = int(retriever.client.count(index=es_index)["count"])
        retriever.corpus = Corpus([], source=f"elasticsearch index {es_index}")
        return retriever

    def params(self) -> dict[str, Any]:
        return {"es_index": self.es_index, "search": asdict(self.search),
                "connection": {**asdict(self.connection), "url": self.connection.display_url()},
                "settings": asdict(self.settings), "dense_model": self.dense_model if self.search.uses_vectors else None,
                "fingerprint": self.fingerprint, "dimension": self.dimension}

    # ---------------------------------------------------------------- plumbing
    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = connect(self.connection)
        return self._client

    def _errors(self):
        return translate_errors(self.connection, self.es_index)

    def _get_encoder(self) -> Any:
        if self.encoder is None:
            from odqa.dense.encoder import DualEncoder

            self.encoder = DualEncoder.from_pretrained(self.dense_model)
        return self.encoder

    # ---------------------------------------------------------------- building
    def index(self, corpus: Corpus) -> "ElasticsearchRetriever":
        """Load ``corpus`` into a new concrete index, count it, then point the alias at it."""
        fingerprint = corpus_fingerprint(corpus)
        encoder = self._get_encoder() if self.search.uses_vectors else None
        dimension = encoder.dimension if encoder is not None else None
        encode = (lambda texts: encoder.encode_passages(texts, show_progress=False)) if encoder else None
        meta = {"odqa": {"fingerprint": fingerprint, "passages": len(corpus), "alias": self.es_index,
                         "dense_model": self.dense_model if encoder is not None else None}}
        client = self.client
        with self._errors():
            old, is_alias = indices_behind(client, self.es_index)
            if old and not self.overwrite:
                raise ConfigError(f"{self.connection.display_url()}: index {self.es_index!r} already exists; pass "
                                  "--overwrite to rebuild it (the old one serves until the new one is complete), or "
                                  "choose another --es_index.")
            new = concrete_index_name(self.es_index)
            client.indices.create(index=new, body=index_body(self.settings, dimension, meta))
            try:
                failed = bulk_load(client, passage_actions(new, corpus, encode), len(corpus),
                                   chunk_size=self.connection.bulk_chunk_size,
                                   max_retries=max(self.connection.max_retries, 1),
                                   initial_backoff=self.connection.initial_backoff, show_progress=self.show_progress)
                finish_and_count(client, new, len(corpus), failed)
                if old and not is_alias:  # a plain index holds the name: it must go before the alias can exist
                    logger.warning("%s is a plain index, not an alias: deleting it before the alias takes its name "
                                   "(searches fail for a moment; later rebuilds swap atomically).", self.es_index)
                    client.indices.delete(index=self.es_index)
                    old = []
                swap_alias(client, self.es_index, new, old)
            except BaseException:
                delete_quietly(client, new)
                raise
        self.corpus, self.fingerprint, self.dimension = corpus, fingerprint, dimension
        return self

    # ---------------------------------------------------------------- searching
    def retrieve(self, queries: list[str], top_k: int) -> list[list[Hit]]:
        self._require_index()
        if not queries:
            return []
        if top_k < 1:
            raise ConfigError(f"top_k must be at least 1 (got {top_k}).")
        size = self._attached_size if self._attached_size is not None else len(self.corpus)
        k = max(1, min(top_k, size))
        search = self.search
        vectors = None
        if search.uses_vectors:
            vectors = self._get_encoder().encode_queries(queries, show_progress=self.show_progress)
        if search.mode == "bm25":
            return self._run([bm25_body(q, k, search.title_boost) for q in queries])
        if search.mode == "dense":
            return self._run([knn_body(v, k, search.num_candidates) for v in vectors])
        if search.fusion == "server":
            return self._run([server_hybrid_body(q, v, k, search.num_candidates, search.title_boost, search.weight)
                              for q, v in zip(queries, vectors)])
        depth = max(k, min(search.depth, size))
        sparse = self._run([bm25_body(q, depth, search.title_boost) for q in queries])
        dense = self._run([knn_body(v, depth, max(search.num_candidates, depth)) for v in vectors])
        return fuse_rankings(sparse, dense, k, search.fusion, search.weight)

    def _run(self, bodies: list[dict[str, Any]]) -> list[list[Hit]]:
        """``_msearch`` in batches; every response becomes a ranked list of Hits."""
        from tqdm.auto import tqdm

        size = self.search.batch_size
        results: list[list[Hit]] = []
        bar = tqdm(total=len(bodies), desc="search elasticsearch", unit="question",
                   disable=not wants_progress(self.show_progress, len(bodies)))
        with bar, self._errors():
            for start in range(0, len(bodies), size):
                batch = bodies[start:start + size]
                if self._attached_size is not None:
                    batch = [{**body, "_source": SOURCE_FIELDS} for body in batch]
                response = self.client.msearch(body=msearch_searches(self.es_index, batch))
                for n, item in enumerate(response["responses"]):
                    if "error" in item:
                        error = item["error"]
                        reason = error.get("reason", error) if isinstance(error, dict) else error
                        raise ElasticsearchError(f"{self.connection.display_url()}: search {start + n} on "
                                                 f"{self.es_index!r} failed ({item.get('status', '?')}): {reason}")
                    if self._attached_size is not None:
                        self._remember_passages(item)
                    results.append(self._hits(ranked_ids(item)))
                bar.update(len(batch))
        return results

    def _remember_passages(self, response: dict[str, Any]) -> None:
        new = []
        for hit in response["hits"]["hits"]:
            source = hit.get("_source") or {}
            if hit["_id"] not in self.corpus:
                if not isinstance(source.get("text"), str):
                    raise ElasticsearchError(f"index {self.es_index!r}: document {hit['_id']!r} has no string field "
                                             "'text'; odqa reads passages from the fields 'text' (and 'title').")
                new.append(Passage(hit["_id"], source["text"], str(source.get("title") or ""),
                                   str(source.get("document_id") or ""), int(source.get("start") or 0)))
        if new:
            self.corpus = Corpus(self.corpus.passages + new, source=self.corpus.source)

    def _hits(self, ranked: list[tuple[str, float]]) -> list[Hit]:
        hits = []
        for rank, (passage_id, score) in enumerate(ranked, 1):
            if passage_id not in self.corpus:
                raise IndexLoadError(f"index {self.es_index!r} returned passage {passage_id!r}, which this index "
                                     "folder's corpus does not have; rebuild with `odqa index --overwrite`.")
            hits.append(Hit(passage_id, score, rank))
        return hits

    # ---------------------------------------------------------------- saving and loading
    def _save_arrays(self, directory: Path) -> None:
        if self.search.uses_vectors:
            self._get_encoder().save_pretrained(directory / ENCODER_DIR)

    def _load_arrays(self, directory: Path) -> None:
        if os.environ.get(URL_ENV):  # the environment points a saved index at another (moved) cluster
            self.connection.url = None
        if self.search.uses_vectors:
            from odqa.dense.encoder import DualEncoder

            if not (directory / ENCODER_DIR).is_dir():
                raise IndexLoadError(f"{directory / ENCODER_DIR}: missing; a {self.search.mode} Elasticsearch index "
                                     "needs the encoder that made its vectors. Rebuild it with `odqa index`.")
            self.encoder = DualEncoder.from_pretrained(str(directory / ENCODER_DIR))
        self.verify_cluster(directory)

    def verify_cluster(self, directory: Path | str = "this index folder") -> None:
        """The cluster index exists and was built from this corpus (its ``_meta`` fingerprint)."""
        with self._errors():
            mappings = self.client.indices.get_mapping(index=self.es_index)
        metas = [((m.get("mappings") or {}).get("_meta") or {}).get("odqa", {}) for m in mappings.values()]
        found = {m.get("fingerprint") for m in metas}
        if found != {self.fingerprint}:
            raise IndexLoadError(f"{directory}: the cluster index {self.es_index!r} at "
                                 f"{self.connection.display_url()} was not built from this folder's corpus "
                                 f"(fingerprint {sorted(map(str, found))} vs {self.fingerprint}); rebuild both with "
                                 "`odqa index --retriever elasticsearch --overwrite`.")
