"""BM25 on the bm25s engine: an eager sparse (passages x vocabulary) score matrix, numba top-k.

Variants and their scores (rank-bm25 is the parity reference in the tests):

* ``lucene`` - Lucene's BM25 (bm25s default): idf = log(1 + (N-df+.5)/(df+.5)), tf/(tf+k1*norm)
* ``okapi`` - rank-bm25 ``BM25Okapi``: Robertson idf, negative idfs floored at epsilon * mean idf
* ``bm25+`` - rank-bm25 ``BM25Plus``; ``bm25l`` - rank-bm25 ``BM25L`` (both use ``delta``)

bm25s has no epsilon-floored idf, so ``okapi`` is built with bm25s's ATIRE term-frequency
part and its columns rescaled to the floored idf (score = idf(term) x tf-part, so this is exact).
"""
from __future__ import annotations

import functools
import logging
from array import array
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from odqa.errors import ConfigError
from odqa.retrieval.base import Hit, IndexedRetriever, hits_from_arrays
from odqa.retrieval.corpus import Corpus
from odqa.retrieval.tokenizers import DEFAULT_TOKENIZER, make_tokenizer

logger = logging.getLogger(__name__)

# variant -> (bm25s method = term-frequency part, bm25s idf method)
VARIANTS: dict[str, tuple[str, str]] = {
    "lucene": ("lucene", "lucene"),
    "okapi": ("atire", "lucene"),  # idf replaced by okapi_idf() after indexing
    "bm25+": ("bm25+", "bm25+"),
    "bm25l": ("bm25l", "bm25l"),
}
PARALLEL_MIN_QUERIES = 256
INDEX_CHUNK = 8192  # passages tokenized at a time: their tokens become 4-byte ids before the next chunk
EMPTY_TOKEN = ""  # a vocabulary entry in no passage: queries with no known token score 0 everywhere


def okapi_idf(df: np.ndarray, n_docs: int, epsilon: float) -> np.ndarray:
    """rank-bm25's BM25Okapi idf: log((N-df+.5)/(df+.5)), negatives set to epsilon x mean idf."""
    idf = np.log(n_docs - df + 0.5) - np.log(df + 0.5)
    floored = idf.copy()
    floored[idf < 0] = epsilon * idf.mean()
    return floored


def lucene_idf(df: np.ndarray, n_docs: int) -> np.ndarray:
    return np.log(1 + (n_docs - df + 0.5) / (df + 0.5))


class BM25Retriever(IndexedRetriever):
    """Sparse BM25 over a tokenizer spec; ``title_weight`` n > 0 indexes the title n times with the text.

    Defaults (kiwi+bigram, k1 0.6, b 0.75, title once) were picked on a coarse grid on the even
    articles of the KorQuAD dev half and checked on the odd ones (benchmarks/retrieval_quality.py).
    """

    name: ClassVar[str] = "bm25"

    def __init__(self, tokenizer: str = DEFAULT_TOKENIZER, variant: str = "lucene", k1: float = 0.6, b: float = 0.75,
                 delta: float = 1.0, epsilon: float = 0.25, title_weight: int = 1, stopwords: list[str] | None = None,
                 dtype: str = "float32", n_threads: int = -1, show_progress: bool = False) -> None:
        if variant not in VARIANTS:
            raise ConfigError(f"unknown BM25 variant {variant!r}; choose one of {', '.join(VARIANTS)}.")
        self.tokenizer_spec, self.variant, self.k1, self.b, self.delta = tokenizer, variant, k1, b, delta
        self.epsilon, self.title_weight, self.stopwords, self.dtype = epsilon, title_weight, list(stopwords or []), dtype
        self.n_threads, self.show_progress = n_threads, show_progress
        self.tokenizer = make_tokenizer(tokenizer, self.stopwords)
        self.corpus: Corpus | None = None
        self._engine = None

    def params(self) -> dict[str, Any]:
        return {"tokenizer": self.tokenizer_spec, "variant": self.variant, "k1": self.k1, "b": self.b,
                "delta": self.delta, "epsilon": self.epsilon, "title_weight": self.title_weight,
                "stopwords": self.stopwords, "dtype": self.dtype}

    def _new_engine(self):
        bm25s = _import_bm25s()
        method, idf_method = VARIANTS[self.variant]
        return bm25s.BM25(k1=self.k1, b=self.b, delta=self.delta, method=method, idf_method=idf_method,
                          dtype=self.dtype, backend="numba")

    def passage_texts(self, passages) -> list[str]:
        if self.title_weight <= 0:
            return [p.text for p in passages]
        return [" ".join([p.title] * self.title_weight + [p.text]) for p in passages]

    def index(self, corpus: Corpus) -> "BM25Retriever":
        """Tokenize and index ``corpus`` chunk by chunk.

        Token strings cost ~60 bytes each in Python; each chunk's tokens become 4-byte vocabulary ids
        before the next chunk is tokenized, so memory grows with the ids, not with the strings
        (a 1,000,000-passage index builds in a few GB, see BENCHMARKS.md).
        """
        from odqa.retrieval.tokenizers import progress

        vocab: dict[str, int] = {}
        token_ids: list[array] = []
        passages = corpus.passages
        with progress(len(passages), self.show_progress, f"tokenize ({self.tokenizer.spec})") as bar:
            for start in range(0, len(passages), INDEX_CHUNK):
                chunk = self.passage_texts(passages[start:start + INDEX_CHUNK])
                token_ids += [_to_ids(doc, vocab) for doc in self.tokenizer.tokenize(chunk)]
                bar.update(len(chunk))
        return self._index_ids(corpus, token_ids, vocab)

    def index_tokens(self, corpus: Corpus, tokens: list[list[str]]) -> "BM25Retriever":
        """Index pre-tokenized passages (benchmarks time tokenization separately this way)."""
        vocab: dict[str, int] = {}
        return self._index_ids(corpus, [_to_ids(doc, vocab) for doc in tokens], vocab)

    def _index_ids(self, corpus: Corpus, token_ids: list[array], vocab: dict[str, int]) -> "BM25Retriever":
        vocab.setdefault(EMPTY_TOKEN, len(vocab))
        engine = self._new_engine()
        engine.index((token_ids, vocab), create_empty_token=False, show_progress=self.show_progress)
        if self.variant == "okapi":
            indptr = engine.scores["indptr"]
            df = np.diff(indptr).astype(np.float64)
            seen = df > 0  # the empty token has df 0 and is not part of rank-bm25's vocabulary
            ratio = np.ones_like(df)
            ratio[seen] = okapi_idf(df[seen], len(corpus), self.epsilon) / lucene_idf(df[seen], len(corpus))
            data = engine.scores["data"]
            engine.scores["data"] = (data * np.repeat(ratio, np.diff(indptr))).astype(data.dtype)
        self.corpus, self._engine = corpus, engine
        return self

    def retrieve(self, queries: list[str], top_k: int) -> list[list[Hit]]:
        return self.retrieve_tokens(self.tokenizer.tokenize(list(queries)), top_k)

    def retrieve_tokens(self, query_tokens: list[list[str]], top_k: int) -> list[list[Hit]]:
        """Retrieve for pre-tokenized queries (benchmarks time tokenization separately this way)."""
        self._require_index()
        if not query_tokens:
            return []
        k = min(top_k, len(self.corpus))
        vocab = self._engine.vocab_dict
        empty = vocab[EMPTY_TOKEN]
        ids = [[vocab[t] for t in q if t in vocab] or [empty] for q in query_tokens]
        # small batches run serially: numba's parallel kernel costs a separate JIT compile and thread start-up
        n_threads = self.n_threads if len(ids) >= PARALLEL_MIN_QUERIES else 1
        result = self._engine.retrieve(ids, k=k, n_threads=n_threads, show_progress=self.show_progress)
        return [hits_from_arrays(self.corpus, docs, scores) for docs, scores in zip(result.documents, result.scores)]

    def _save_arrays(self, directory: Path) -> None:
        self._engine.save(directory / "bm25s", allow_pickle=False, show_progress=False)

    def _load_arrays(self, directory: Path) -> None:
        bm25s = _import_bm25s()
        if not (directory / "bm25s").is_dir():
            raise FileNotFoundError(f"{directory / 'bm25s'} is missing")
        self._engine = bm25s.BM25.load(directory / "bm25s", load_corpus=False, mmap=getattr(self, "mmap", False),
                                       allow_pickle=False,
                                       override_params={"backend": "numba"})
        num_docs = self._engine.scores["num_docs"]
        if num_docs != len(self.corpus):
            raise ValueError(f"the score matrix has {num_docs} passages but corpus.jsonl has {len(self.corpus)}")


def _import_bm25s():
    """bm25s, with its logger back at WARNING (bm25s sets it to DEBUG when imported, flooding our CLI output)
    and its numba kernels cached on disk."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    _cache_numba_kernels()
    return bm25s


@functools.lru_cache(maxsize=None)
def _cache_numba_kernels() -> int:
    """Let numba keep bm25s's compiled retrieval kernels on disk.

    bm25s compiles them without ``cache=True``, so every new process paid the JIT on its first query (~30 s
    on 2 busy cores, and as much again for the parallel kernel of the first large batch); cached, a second
    process answers its first query in under a second (BENCHMARKS.md, `benchmarks/bm25_first_query.py`).
    The cache goes where numba puts it: ``__pycache__`` beside bm25s, else ``$NUMBA_CACHE_DIR`` or the
    user's cache folder. Returns the number of kernels cached (0 without numba).
    """
    try:
        from bm25s.numba import retrieve_utils, selection
    except ImportError:  # numba missing: bm25s runs its numpy backend, nothing to compile
        return 0
    cached = 0
    for module in (retrieve_utils, selection):
        for value in vars(module).values():
            if hasattr(value, "enable_caching") and hasattr(value, "py_func"):
                try:
                    value.enable_caching()
                    cached += 1
                except Exception as err:  # noqa: BLE001 - a cache is an optimisation, never a failure
                    logger.debug("numba cache not enabled for %s: %s", value, err)
    return cached


def _to_ids(tokens: list[str], vocab: dict[str, int]) -> array:
    """A passage's tokens as 4-byte vocabulary ids (new tokens are added to ``vocab``)."""
    return array("i", [vocab.setdefault(t, len(vocab)) for t in tokens])
