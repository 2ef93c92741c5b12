"""TF-IDF with cosine ranking: scikit-learn's TfidfVectorizer over our tokenizers.

Persistence is vocabulary (json) + idf (npy) + the l2-normalised passage matrix (scipy
sparse npz); the vectorizer is rebuilt from them on load, so nothing is pickled.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from odqa.retrieval.base import Hit, IndexedRetriever, hits_from_arrays
from odqa.retrieval.corpus import Corpus
from odqa.retrieval.tokenizers import DEFAULT_TOKENIZER, make_tokenizer

_QUERY_CHUNK = 256


def _identity(tokens: list[str]) -> list[str]:
    return tokens


def top_k_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of a dense (queries x passages) matrix: the k best columns, best first, and their scores."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)


class TfidfRetriever(IndexedRetriever):
    name: ClassVar[str] = "tfidf"

    def __init__(self, tokenizer: str = DEFAULT_TOKENIZER, sublinear_tf: bool = True, min_df: int = 1,
                 stopwords: list[str] | None = None, show_progress: bool = False) -> None:
        self.tokenizer_spec, self.sublinear_tf, self.min_df = tokenizer, sublinear_tf, min_df
        self.stopwords, self.show_progress = list(stopwords or []), show_progress
        self.tokenizer = make_tokenizer(tokenizer, self.stopwords)
        self.corpus: Corpus | None = None
        self._vectorizer = None
        self._matrix = None

    def params(self) -> dict[str, Any]:
        return {"tokenizer": self.tokenizer_spec, "sublinear_tf": self.sublinear_tf, "min_df": self.min_df,
                "stopwords": self.stopwords}

    def _new_vectorizer(self, vocabulary: dict[str, int] | None = None):
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(analyzer=_identity, sublinear_tf=self.sublinear_tf, min_df=self.min_df,
                               vocabulary=vocabulary, dtype=np.float32)

    def index(self, corpus: Corpus) -> "TfidfRetriever":
        tokens = self.tokenizer.tokenize(corpus.texts, show_progress=self.show_progress)
        self._vectorizer = self._new_vectorizer()
        self._matrix = self._vectorizer.fit_transform(tokens).tocsr()
        self.corpus = corpus
        return self

    def retrieve(self, queries: list[str], top_k: int) -> list[list[Hit]]:
        self._require_index()
        hits: list[list[Hit]] = []
        for start in range(0, len(queries), _QUERY_CHUNK):
            q = self._vectorizer.transform(self.tokenizer.tokenize(list(queries[start:start + _QUERY_CHUNK])))
            scores = (q @ self._matrix.T).toarray()
            rows, row_scores = top_k_rows(scores, top_k)
            hits.extend(hits_from_arrays(self.corpus, r, s) for r, s in zip(rows, row_scores))
        return hits

    def _save_arrays(self, directory: Path) -> None:
        import scipy.sparse as sp

        terms = self._vectorizer.get_feature_names_out().tolist()
        (directory / "vocabulary.json").write_text(json.dumps(terms, ensure_ascii=False), encoding="utf-8")
        np.save(directory / "idf.npy", self._vectorizer.idf_, allow_pickle=False)
        sp.save_npz(directory / "passages.npz", self._matrix)

    def _load_arrays(self, directory: Path) -> None:
        import scipy.sparse as sp

        terms = json.loads((directory / "vocabulary.json").read_text(encoding="utf-8"))
        self._vectorizer = self._new_vectorizer({t: i for i, t in enumerate(terms)})
        self._vectorizer.fit([[]] if not terms else [terms])  # sets up the fixed vocabulary
        self._vectorizer.idf_ = np.load(directory / "idf.npy", allow_pickle=False)
        self._matrix = sp.load_npz(directory / "passages.npz").tocsr()
        if self._matrix.shape != (len(self.corpus), len(terms)):
            raise ValueError(f"passages.npz has shape {self._matrix.shape}, expected ({len(self.corpus)}, {len(terms)})")
