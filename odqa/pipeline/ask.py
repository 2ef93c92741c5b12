"""`odqa ask`: one question against your own files, answered in one command.

  odqa ask "경복궁이 처음 지어진 해는?" --corpus docs.jsonl wiki.json
  odqa ask "훈민정음을 창제한 왕은?" --corpus data/sample/train.json --num_answers 3 --json

Builds a bm25 index of the --corpus files (any format `odqa index` reads: .jsonl/.csv/.tsv with
id,title,text, wikipedia_documents.json, SQuAD/KorQuAD JSON contexts, a `datasets` folder) the first
time, and reuses it afterwards: the cache is keyed by the files' contents, so an edited file gets a new
index. It then reads the top passages with the shipped Korean reader (e5-small-korquad, or --model) and
prints the best answers with their score, the passage's title and the passage with the answer marked.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from pathlib import Path
from typing import Sequence

from odqa.errors import ConfigError, DataError
from odqa.offline import SHIPPED_READER
from odqa.reader.abstention import THRESHOLD_AUTO, THRESHOLD_HELP, resolve_threshold
from odqa.reader.answers import Answer
from odqa.reader.extractive import DEFAULT_TOP_K
from odqa.utils.io import update_digest

logger = logging.getLogger("odqa.ask")
ASK_INDEX_VERSION = 1  # part of the cache key: bump when what ask builds changes
MARK_OPEN, MARK_CLOSE = "【", "】"


def corpus_key(paths: Sequence[str | Path], retrieval_tokenizer: str) -> str:
    """A key for the index of these files: their contents (in order), the tokenizer and this code's version."""
    from odqa.retrieval.base import INDEX_VERSION

    digest = hashlib.sha256(f"ask-v{ASK_INDEX_VERSION}|index-v{INDEX_VERSION}|{retrieval_tokenizer}".encode())
    for path in map(Path, paths):
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for item in files:
            digest.update(f"|{item.relative_to(path) if path.is_dir() else item.name}|".encode())
            update_digest(digest, item)
    return digest.hexdigest()[:20]


def cached_retriever(paths: Sequence[str], retrieval_tokenizer: str, cache_dir: Path | None = None):
    """The bm25 retriever over ``paths``: loaded from the cache when these contents were indexed before."""
    from odqa.models.e5_small import odqa_home
    from odqa.retrieval.bm25 import BM25Retriever
    from odqa.retrieval.corpus import Corpus, load_corpus
    from odqa.retrieval.registry import load_retriever

    for path in paths:
        if not Path(path).exists():
            raise DataError(f"{path}: corpus file not found (give files or folders of passages with --corpus).")
    folder = (cache_dir or odqa_home() / "indexes") / f"ask-{corpus_key(paths, retrieval_tokenizer)}"
    if (folder / "meta.json").is_file():
        logger.info("using the cached index %s", folder)
        return load_retriever(folder), folder
    corpora = [load_corpus(path) for path in paths]
    for path, corpus in zip(paths, corpora):
        if len(corpus) == 0:
            raise DataError(f"{path}: holds no passages (expected records with a non-empty text, or SQuAD/KorQuAD "
                            "contexts); check the file, or see `odqa index --help` for the formats.")
    corpus = corpora[0] if len(corpora) == 1 else Corpus.from_records(
        [dict(id=p.id, title=p.title, text=p.text) for c in corpora for p in c], source=" + ".join(map(str, paths)))
    print(f"odqa ask: indexing {len(corpus):,} passages of {', '.join(map(str, paths))} (once; cached in {folder})",
          file=sys.stderr)
    retriever = BM25Retriever(tokenizer=retrieval_tokenizer, show_progress=len(corpus) > 5000)
    retriever.index(corpus)
    retriever.save(folder)
    return retriever, folder


def marked_passage(answer: Answer, context_chars: int = 80) -> str:
    """The passage around the answer, the answer between 【 】 (cut to ``context_chars`` on each side)."""
    text, start, end = answer.passage, answer.start, answer.end
    left = text[max(0, start - context_chars):start]
    right = text[end:end + context_chars]
    return ("…" if start > context_chars else "") + left + MARK_OPEN + text[start:end] + MARK_CLOSE + right + \
        ("…" if end + context_chars < len(text) else "")


def format_answers(question: str, answers: Sequence[Answer], context_chars: int = 80) -> str:
    lines = [f"Q: {question}"]
    if not answers:
        lines.append("  no answer found in the retrieved passages")
    elif answers[0].no_answer:
        lines.append(f"  no answer found: the passages read do not seem to hold it (no_answer_score "
                     f"{answers[0].no_answer_score:.3g} is above the threshold); the reader's best guesses follow")
    for rank, answer in enumerate(answers, 1):
        lines.append(f"{rank}. {answer.text}    score {answer.score:.2f} · p {answer.probability:.2f} · "
                     f"{answer.title or '(untitled)'} [passage {answer.passage_id}, retrieved #{answer.passage_rank}]")
        lines.append("   " + " ".join(marked_passage(answer, context_chars).split()))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="odqa ask", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("question", help="The question (quote it).")
    parser.add_argument("--corpus", nargs="+", required=True, metavar="FILE",
                        help="Passages to search: one or more files or `datasets` folders, indexed together.")
    parser.add_argument("--model", default=SHIPPED_READER,
                        help=f"The reader (folder or offline alias); default {SHIPPED_READER}, the Korean reader "
                             "that ships with odqa.")
    parser.add_argument("--top_k", type=int, default=DEFAULT_TOP_K, help="Passages retrieved and read.")
    parser.add_argument("--num_answers", type=int, default=3, help="Answers printed.")
    parser.add_argument("--retrieval_tokenizer", default=None,
                        help="How bm25 splits text (default: odqa's default, Kiwi morphemes + bigrams).")
    parser.add_argument("--cache_dir", default=None,
                        help="Where indexes are cached (default: $ODQA_HOME/indexes, i.e. ~/.cache/odqa/indexes).")
    parser.add_argument("--context_chars", type=int, default=80, help="Passage characters shown on each side.")
    parser.add_argument("--no_answer_threshold", default=THRESHOLD_AUTO, help=THRESHOLD_HELP)
    parser.add_argument("--json", action="store_true", help="Print the answers as JSON (for scripts).")
    return parser


def ask(question: str, corpus: Sequence[str], model: str = SHIPPED_READER, top_k: int = DEFAULT_TOP_K,
        num_answers: int = 3, retrieval_tokenizer: str | None = None, cache_dir: str | Path | None = None,
        no_answer_threshold: str | float | None = THRESHOLD_AUTO) -> list[Answer]:
    """Answer one question from ``corpus`` files (index cached by content): the library call behind `odqa ask`.
    With a no-answer threshold (the reader's stored one by default), abstaining answers have ``no_answer``."""
    from odqa.pipeline.pipeline import ODQAPipeline
    from odqa.reader.extractive import ExtractiveReader, ReadOptions
    from odqa.retrieval.tokenizers import DEFAULT_TOKENIZER

    if not isinstance(question, str) or not question.strip():
        raise ConfigError("the question is empty; give it as the first argument: odqa ask \"질문\" --corpus FILE.")
    if not corpus:
        raise ConfigError("give --corpus FILE... (the passages to search).")
    if top_k < 1 or num_answers < 1:
        raise ConfigError(f"--top_k and --num_answers must be at least 1 (got {top_k} and {num_answers}).")
    retriever, _ = cached_retriever(list(map(str, corpus)), retrieval_tokenizer or DEFAULT_TOKENIZER,
                                    Path(cache_dir) if cache_dir else None)
    reader = ExtractiveReader.from_pretrained(model, show_progress=False)
    threshold = resolve_threshold(no_answer_threshold, reader.no_answer_threshold)
    pipeline = ODQAPipeline(retriever, reader, ReadOptions(add_title=reader.trained_with_titles,
                                                           no_answer_threshold=threshold))
    return pipeline(question.strip(), top_k=top_k, num_answers=num_answers)


def main(argv: list[str] | None = None) -> int:
    from odqa.utils.logs import configure_cli_logging

    args = build_parser().parse_args(argv)
    configure_cli_logging()
    answers = ask(args.question, args.corpus, args.model, args.top_k, args.num_answers, args.retrieval_tokenizer,
                  args.cache_dir, args.no_answer_threshold)
    if args.json:
        print(json.dumps({"question": args.question, "answers": [a.to_dict(with_passage=True) for a in answers]},
                         ensure_ascii=False, indent=2))
    else:
        print(format_answers(args.question.strip(), answers, args.context_chars))
    return 0
