"""The index body (settings + mappings) for Korean passages, as pure functions of a settings object.

Analysis follows the Elasticsearch nori plugin documentation: ``nori_tokenizer`` (``decompound_mode``,
optional user dictionary) -> ``nori_part_of_speech`` (stop tags; default the plugin's own list) ->
``nori_readingform`` (hanja to hangul) -> ``lowercase``. Synonyms are applied at search time with a
``synonym_graph`` filter (the documented way for multi-word synonyms). ``analyzer="standard"`` is the
explicit fallback for clusters without the plugin. Fields: ``title`` and ``text`` (BM25 with the
configured k1/b), ``document_id``/``start`` to map split passages back, and an optional
``dense_vector`` ``embedding`` filled by odqa's dual encoder.
"""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odqa.errors import ConfigError

ANALYZERS = ("nori", "standard")
DECOMPOUND_MODES = ("none", "discard", "mixed")
SIMILARITIES = ("cosine", "dot_product", "max_inner_product", "l2_norm")
# the nori_part_of_speech filter's own defaults (Elasticsearch plugin docs)
NORI_DEFAULT_STOPTAGS = ("E", "IC", "J", "MAG", "MAJ", "MM", "SP", "SSC", "SSO", "SC", "SE", "XPN", "XSA", "XSN",
                         "XSV", "UNA", "NA", "VSV")
VECTOR_FIELD = "embedding"
TEXT_ANALYZER = "odqa_text"
SEARCH_ANALYZER = "odqa_search"
_BAD_NAME = re.compile(r'[\\/*?"<>|,# :A-Z]')


def check_index_name(name: str) -> str:
    """Elasticsearch's index-name rules, checked before the cluster rejects them."""
    if not name or _BAD_NAME.search(name) or name[0] in "-_+" or name in {".", ".."} or len(name.encode()) > 255:
        raise ConfigError(f"--es_index {name!r}: an Elasticsearch index name is lower case, at most 255 bytes, "
                          "does not start with -, _ or +, and has none of \\ / * ? \" < > | , # : or spaces.")
    return name


@dataclass
class EsIndexSettings:
    """How passages are analysed and stored; json-able, saved in the index folder's meta.json."""

    analyzer: str = "nori"
    decompound_mode: str = "mixed"
    stoptags: list[str] | None = None  # None: the plugin's default list
    readingform: bool = True
    user_dictionary_rules: list[str] = field(default_factory=list)  # e.g. ["세종대왕", "c++"]
    synonyms: list[str] = field(default_factory=list)  # Solr format: "한글, 훈민정음"
    k1: float = 1.2
    b: float = 0.75
    shards: int | None = None  # None: the cluster's default
    replicas: int | None = None
    similarity: str = "cosine"  # of the dense_vector field
    hnsw_m: int = 16
    hnsw_ef_construction: int = 100
    overrides: dict[str, Any] = field(default_factory=dict)  # deep-merged into the body last

    def check(self) -> None:
        if self.analyzer not in ANALYZERS:
            raise ConfigError(f"--es_analyzer {self.analyzer!r}: choose one of {', '.join(ANALYZERS)}.")
        if self.decompound_mode not in DECOMPOUND_MODES:
            raise ConfigError(f"--es_decompound_mode {self.decompound_mode!r}: choose one of "
                              f"{', '.join(DECOMPOUND_MODES)}.")
        if self.similarity not in SIMILARITIES:
            raise ConfigError(f"--es_similarity {self.similarity!r}: choose one of {', '.join(SIMILARITIES)}.")
        if self.k1 < 0 or not 0 <= self.b <= 1:
            raise ConfigError(f"BM25 needs k1 >= 0 and 0 <= b <= 1 (got k1={self.k1}, b={self.b}).")
        if (self.shards is not None and self.shards < 1) or (self.replicas is not None and self.replicas < 0):
            raise ConfigError("--es_shards must be at least 1 and --es_replicas at least 0.")
        if self.hnsw_m < 2 or self.hnsw_ef_construction < self.hnsw_m:
            raise ConfigError("HNSW needs m >= 2 and ef_construction >= m.")


def analysis_settings(settings: EsIndexSettings) -> dict[str, Any]:
    """``settings.analysis``: the text analyzer and the search analyzer (text + synonyms)."""
    if settings.analyzer == "standard":
        analyzer: dict[str, Any] = {"type": "custom", "tokenizer": "standard", "filter": ["lowercase"]}
        analysis: dict[str, Any] = {"analyzer": {TEXT_ANALYZER: analyzer}, "filter": {}}
    else:
        tokenizer: dict[str, Any] = {"type": "nori_tokenizer", "decompound_mode": settings.decompound_mode}
        if settings.user_dictionary_rules:
            tokenizer["user_dictionary_rules"] = list(settings.user_dictionary_rules)
        pos: dict[str, Any] = {"type": "nori_part_of_speech"}
        if settings.stoptags is not None:
            pos["stoptags"] = list(settings.stoptags)
        filters = ["odqa_pos"] + (["nori_readingform"] if settings.readingform else []) + ["lowercase"]
        analyzer = {"type": "custom", "tokenizer": "odqa_nori", "filter": filters}
        analysis = {"tokenizer": {"odqa_nori": tokenizer}, "filter": {"odqa_pos": pos},
                    "analyzer": {TEXT_ANALYZER: analyzer}}
    if settings.synonyms:
        analysis["filter"]["odqa_synonyms"] = {"type": "synonym_graph", "synonyms": list(settings.synonyms)}
        analysis["analyzer"][SEARCH_ANALYZER] = {**analyzer, "filter": analyzer["filter"] + ["odqa_synonyms"]}
    if not analysis["filter"]:
        del analysis["filter"]
    return analysis


def index_body(settings: EsIndexSettings, dimension: int | None = None,
               meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The body of ``PUT /<index>``; ``dimension`` adds the dense_vector field, ``meta`` goes to ``_meta``."""
    settings.check()
    index: dict[str, Any] = {"refresh_interval": "-1"}  # no refreshes while bulk loading; restored afterwards
    if settings.shards is not None:
        index["number_of_shards"] = settings.shards
    if settings.replicas is not None:
        index["number_of_replicas"] = settings.replicas
    text_field: dict[str, Any] = {"type": "text", "analyzer": TEXT_ANALYZER, "similarity": "odqa_bm25"}
    if settings.synonyms:
        text_field["search_analyzer"] = SEARCH_ANALYZER
    properties: dict[str, Any] = {"title": dict(text_field), "text": dict(text_field),
                                  "document_id": {"type": "keyword"}, "start": {"type": "integer"}}
    if dimension is not None:
        properties[VECTOR_FIELD] = {"type": "dense_vector", "dims": int(dimension), "index": True,
                                    "similarity": settings.similarity,
                                    "index_options": {"type": "hnsw", "m": settings.hnsw_m,
                                                      "ef_construction": settings.hnsw_ef_construction}}
    body = {"settings": {"index": index, "analysis": analysis_settings(settings),
                         "similarity": {"odqa_bm25": {"type": "BM25", "k1": settings.k1, "b": settings.b}}},
            "mappings": {"dynamic": "strict", "_meta": dict(meta or {}), "properties": properties}}
    return deep_merge(body, settings.overrides)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``override`` merged in (dicts recursively; anything else replaced)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_lines(path: str | None, option: str) -> list[str]:
    """Non-empty, non-comment lines of a user dictionary or synonyms file."""
    if not path:
        return []
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{option} {p}: file not found.")
    return [line.strip() for line in p.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def read_overrides(path: str | None) -> dict[str, Any]:
    """``--es_settings FILE``: a JSON object merged into the index body (e.g. other filters, shards)."""
    if not path:
        return {}
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--es_settings {p}: file not found.")
    try:
        value = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ConfigError(f"--es_settings {p}: not valid JSON ({err.msg}, line {err.lineno}).") from None
    if not isinstance(value, dict) or not set(value) <= {"settings", "mappings"}:
        raise ConfigError(f"--es_settings {p}: expected a JSON object with \"settings\" and/or \"mappings\" "
                          "(merged into odqa's index body).")
    return value
