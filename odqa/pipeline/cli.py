"""`odqa infer` / `inference.py`: retrieve passages for questions, read them, write and score answers.

Examples:
  # the sample: build (or reuse) a BM25 index over all sample passages, read the top 5 (the default), score
  python inference.py --retriever_type bm25 \\
      --corpus data/sample/train.json data/sample/validation.json data/sample/extra_passages.jsonl \\
      --index models/sample_bm25 \\
      --dataset_path data/sample/validation.json --do_eval --output_dir outputs/sample

  # replay the retrieval of an earlier run (or of an Elasticsearch server) and read concatenated passages
  python inference.py --retriever_type csv --csv outputs/sample/retrieved.csv --read_mode concat \\
      --dataset_path data/sample/validation.json --output_dir outputs/concat

Writes predictions.json ({id: answer}), nbest_predictions.json (answers with passage ids, char offsets
into their passage, reader/retriever scores), retrieved.csv (replayable with `--retriever_type csv
--csv retrieved.csv`) and, with --do_eval, metrics.json (EM/F1 as `odqa evaluate` computes them, and
retrieval recall@k). A missing --index directory is built from --corpus and saved there.
"""
from __future__ import annotations

import dataclasses
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from odqa.errors import ConfigError
from odqa.metrics.cli import EVAL_METRICS
from odqa.offline import SHIPPED_READER
from odqa.reader.abstention import (
    THRESHOLD_AUTO,
    THRESHOLD_HELP,
    abstains,
    resolve_threshold,
)
from odqa.reader.extractive import DEFAULT_RETRIEVER_WEIGHT, DEFAULT_TOP_K, READ_MODES
from odqa.reader.processor import WindowArguments
from odqa.retrieval.cli import CorpusArguments, RetrieverArguments
from odqa.retrieval.tokenizers import DEFAULT_TOKENIZER
from odqa.runtime.quantization import DEFAULT_CALIBRATION_WINDOWS, QUANTIZE_CHOICES
from odqa.utils.args import parse_cli
from odqa.utils.io import write_json
from odqa.utils.logs import configure_cli_logging

logger = logging.getLogger("odqa.infer")


@dataclass
class InferRetrieverArguments(RetrieverArguments):
    retriever: str = field(default="bm25", metadata={
        "aliases": ["--retriever_type"],
        "help": "Retriever used when an index is built: bm25, tfidf, dense, csv, hybrid, elasticsearch or an alias (SparseRetrieval_BM25P, "
                "get_retrieved_df, ...). A saved --index keeps the retriever it was built with."})
    retrieval_tokenizer: str = field(default=DEFAULT_TOKENIZER, metadata={  # here --tokenizer is the reader's
        "help": "How bm25/tfidf split text when an index is built: whitespace | kiwi | kiwi:all | kiwi:<POS,...> | "
                "hf:<model> | char_ngram:<n> | bigram, or a combination like kiwi+bigram (the default). "
                "`--tokenizer kiwi` (a tokenizer spec) is still read as this, with a note."})


@dataclass
class InferCorpusArguments(CorpusArguments):
    corpus: list[str] = field(default_factory=list, metadata={
        "help": "Passages to search: one or more files (wikipedia_documents.json, .jsonl/.csv with id,title,text, "
                "SQuAD/KorQuAD JSON contexts, datasets folders), indexed together."})
    index: Optional[str] = field(default=None, metadata={
        "help": "Index directory: loaded when it exists, otherwise built from --corpus and saved here. "
                "Without it the index is built in memory from --corpus."})
    mmap: bool = field(default=False, metadata={
        "help": "Memory-map a saved bm25 index instead of reading it into RAM (very large corpora: it opens at "
                "once, pages load as queries touch them)."})


@dataclass
class InferReaderArguments(WindowArguments):
    model: str = field(default=SHIPPED_READER, metadata={
        "help": f"The reader: a trained reader folder (any head, e.g. models/my_reader), a *ForQuestionAnswering "
                f"checkpoint, or an offline alias; default {SHIPPED_READER}, the Korean reader that ships with odqa."})
    tokenizer: Optional[str] = field(default=None, metadata={
        "help": "The reader's tokenizer (folder or hub name) when it is not the one saved with --model."})
    batch_size: int = field(default=32, metadata={
        "aliases": ["--per_device_eval_batch_size"],
        "help": "Windows per forward pass (windows of all questions are length-sorted and batched together)."})
    read_mode: str = field(default="passage", metadata={
        "help": "passage: read each top-k passage on its own and take the best span across them; concat: join the "
                "top-k passages into one context.", "choices": list(READ_MODES)})
    add_title: Optional[bool] = field(default=None, metadata={
        "help": "Read \"<title>: <passage>\" (default: as the reader was trained, see train-mrc --add_title)."})
    retriever_weight: float = field(default=DEFAULT_RETRIEVER_WEIGHT, metadata={
        "help": "Span score = reader score (start + end logit, minus the window's no-answer score) + this x the "
                "retriever score of its passage. The default was chosen with bm25 on training articles "
                "(docs/pipeline.md); other retrievers' scores have other scales."})
    quantize: str = field(default="none", metadata={
        "help": "Faster CPU reading. int8: the encoder in int8 (weights and activations) with OpenVINO, for CPUs "
                "with int8 instructions (AVX-512 VNNI, AVX-VNNI, AMX; on AVX2-only CPUs it is no faster, "
                "BENCHMARKS.md), calibrated on --calibration_windows windows, ~2.5x on VNNI, small accuracy cost (needs "
                "`pip install \"odqa[int8]\"`); int8-dynamic: PyTorch dynamic quantization of the Linear layers, "
                "~1.4x, nothing to install, but it wrecks e5-small (EM 51 -> 12): use it only after checking EM. "
                "fp32-openvino: the encoder compiled by OpenVINO in float32, the same answers, ~1.3x (2-core AVX-512 EPYC); "
                "bf16: OpenVINO in bfloat16, ~2.2x on CPUs with bfloat16 instructions (AVX-512 BF16, AMX), float32 "
                "elsewhere (both: odqa[int8], nothing to calibrate).",
        "choices": list(QUANTIZE_CHOICES)})
    calibration_windows: int = field(default=DEFAULT_CALIBRATION_WINDOWS, metadata={
        "help": "With --quantize int8: windows (question + passage) whose activations set the int8 ranges."})
    calibration_dataset: Optional[str] = field(default=None, metadata={
        "help": "With --quantize int8: calibrate on the (question, context) pairs of this MRC file, e.g. training "
                "data (default: a random sample of the windows about to be read)."})
    no_answer_threshold: str = field(default=THRESHOLD_AUTO, metadata={"help": THRESHOLD_HELP})


@dataclass
class InferRunArguments:
    dataset_path: str = field(metadata={"help": "Questions: SQuAD/KorQuAD JSON (with or without answers), "
                                                ".jsonl/.csv with id,question, or a datasets folder."})
    output_dir: str = field(default="outputs/infer", metadata={"help": "Where the output files go."})
    top_k_retrieval: int = field(default=DEFAULT_TOP_K, metadata={"help": "Passages retrieved and read per question."})
    passage_score_ratio: float = field(default=0.0, metadata={
        "help": "Passage-level cut: read a retrieved passage only if its score is at least this share of the "
                "question's top score (0 = read all top-k; the top passage is always read)."})
    do_predict: bool = field(default=False, metadata={
        "help": "Write predictions (always done; kept for the competition scripts' flag)."})
    do_eval: bool = field(default=False, metadata={
        "help": "Also score the predictions (EM/F1) and the retrieval (recall@k); needs answers and contexts."})
    metric: str = field(default="korquad", metadata={
        "help": "korquad (char F1) | squad (token F1) | korquad_v2 / squad_v2 (SQuAD 2.0 accounting: unanswerable "
                "questions count, an abstention is right on them; HasAns/NoAns split, best threshold).",
        "choices": list(EVAL_METRICS)})
    max_samples: Optional[int] = field(default=None, metadata={
        "help": "Only the first N questions (try a few before a long run)."})
    show_examples: int = field(default=3, metadata={"help": "Questions printed with their passages and answers."})
    quiet: bool = field(default=False, metadata={"help": "No progress bars."})
    seed: int = field(default=42, metadata={
        "help": "Seed of every random generator (reading is deterministic; kept for the competition scripts)."})


def load_corpus_files(args: InferCorpusArguments):
    """All --corpus files as one corpus (each loaded and split like `odqa index` does)."""
    from odqa.retrieval.cli import load_corpus_from_args
    from odqa.retrieval.corpus import Corpus

    corpora = [load_corpus_from_args(dataclasses.replace(args, corpus=path)) for path in args.corpus]
    if len(corpora) == 1:
        return corpora[0]
    records = [dataclasses.asdict(p) for c in corpora for p in c]
    for c in corpora:  # ids merged inside one file stay resolvable
        records += [{**dataclasses.asdict(c[kept]), "id": dropped} for dropped, kept in c.merged.items()]
    return Corpus.from_records(records, source=" + ".join(args.corpus))


def prepare_retriever(retriever_args: InferRetrieverArguments, corpus_args: InferCorpusArguments):
    """Load --index, or build the retriever over --corpus (saving it to --index when given)."""
    from odqa.retrieval.cli import build_retriever
    from odqa.retrieval.registry import load_retriever, resolve_name

    index = Path(corpus_args.index) if corpus_args.index else None
    if index is not None and index.exists():
        retriever = load_retriever(index, mmap=corpus_args.mmap)
        wanted, _ = resolve_name(retriever_args.retriever)
        if wanted != retriever.name and wanted != "bm25":  # bm25 is the default, so it was maybe not asked for
            logger.warning("%s is a %s index; --retriever_type %s is ignored (delete the folder to rebuild it).",
                           index, retriever.name, retriever_args.retriever)
        logger.info("using the saved %s index in %s (%d passages)%s", retriever.name, index, len(retriever.corpus),
                    "; --corpus is not re-indexed (delete the folder to rebuild)" if corpus_args.corpus else "")
        return retriever
    is_csv = resolve_name(retriever_args.retriever)[0] == "csv"
    if not corpus_args.corpus and not is_csv:
        if index is not None:
            raise ConfigError(f"{index}: index directory not found; pass --corpus FILE to build it there, "
                              "or point --index at an index built with `odqa index`.")
        raise ConfigError("give --index DIR (a saved index) or --corpus FILE (passages to index).")
    retriever = build_retriever(retriever_args)
    logger.info("building the %s index over %s", retriever.name, ", ".join(corpus_args.corpus) or "the CSV passages")
    retriever.index(load_corpus_files(corpus_args) if corpus_args.corpus else None)
    if index is not None:
        retriever.save(index)
        logger.info("saved the index to %s", index)
    return retriever


def calibrate_from_file(reader, path: str, quantize: str) -> None:
    """Calibrate a static-int8 reader on the (question, context) pairs of an MRC file."""
    from odqa.data.loading import read_mrc_rows
    from odqa.reader.answers import PassageToRead

    if quantize != "int8":
        raise ConfigError("--calibration_dataset only applies with --quantize int8.")
    rows = [r for r in read_mrc_rows(path) if r.get("question")]
    if not rows or not rows[0].get("context"):
        raise ConfigError(f"{path}: --calibration_dataset needs questions with their contexts (an MRC file).")
    reader.calibrate([r["question"] for r in rows], [[PassageToRead(r["id"], r["context"])] for r in rows])


def run_inference(retriever_args: InferRetrieverArguments, corpus_args: InferCorpusArguments,
                  reader_args: InferReaderArguments, run_args: InferRunArguments) -> dict[str, Any]:
    """The whole job; returns what was written (and the metrics with --do_eval)."""
    from odqa.pipeline.outputs import (
        METRICS_FILE,
        evaluate_result,
        format_summary,
        write_outputs,
    )
    from odqa.pipeline.pipeline import ODQAPipeline
    from odqa.reader.extractive import ExtractiveReader, ReadOptions
    from odqa.retrieval.questions import load_question_rows, questions_of

    if run_args.top_k_retrieval < 1:
        raise ConfigError(f"--top_k_retrieval must be at least 1 (got {run_args.top_k_retrieval}).")
    rows = load_question_rows(run_args.dataset_path)  # parsed once: questions, gold answers, gold passages
    questions = questions_of(rows, run_args.dataset_path, run_args.max_samples)
    references = None
    if run_args.do_eval:  # fail on an unscorable dataset before the slow part
        from odqa.metrics.cli import references_of

        if not rows or "context" not in rows[0] or "answers" not in rows[0]:
            raise ConfigError(f"{run_args.dataset_path}: questions without contexts and answers; --do_eval needs "
                              "an MRC dataset (SQuAD/KorQuAD JSON, flat rows with answers, or a datasets folder).")
        references = references_of(rows)
        if not any(references.values()) and not any(r.get("is_impossible") for r in rows):
            raise ConfigError(f"{run_args.dataset_path}: no gold answers, so --do_eval has nothing to score; "
                              "drop --do_eval to only predict.")
    retriever = prepare_retriever(retriever_args, corpus_args)
    window = reader_args.window_config()
    from transformers import set_seed

    set_seed(run_args.seed)
    reader = ExtractiveReader.from_pretrained(reader_args.model, window=window, batch_size=reader_args.batch_size,
                                              quantize=reader_args.quantize, show_progress=not run_args.quiet,
                                              calibration_windows=reader_args.calibration_windows,
                                              tokenizer=reader_args.tokenizer)
    if reader_args.calibration_dataset:
        calibrate_from_file(reader, reader_args.calibration_dataset, reader_args.quantize)
    add_title = reader.trained_with_titles if reader_args.add_title is None else reader_args.add_title
    threshold = resolve_threshold(reader_args.no_answer_threshold, reader.no_answer_threshold)
    pipeline = ODQAPipeline(retriever, reader, ReadOptions(reader_args.read_mode, reader_args.retriever_weight,
                                                           add_title, threshold),
                            score_ratio=run_args.passage_score_ratio)
    result = pipeline.run(questions, run_args.top_k_retrieval, show_progress=not run_args.quiet)
    written = write_outputs(result, run_args.output_dir)

    run_info = {"model": reader_args.model, "retriever": retriever.name, "top_k_retrieval": run_args.top_k_retrieval,
                "read_mode": reader_args.read_mode, "retriever_weight": reader_args.retriever_weight,
                "quantize": reader_args.quantize, "passage_score_ratio": run_args.passage_score_ratio,
                "no_answer_threshold": threshold, "questions": len(questions),
                "answered": sum(not abstains(a) for a in result.answers),
                "questions_per_second": len(questions) / result.timings["total"] if result.timings["total"] else None,
                "windows_read": int(result.timings.get("windows", 0)),
                "seconds": {k: round(v, 3) for k, v in result.timings.items() if k != "windows"}}
    metrics = None
    if run_args.do_eval:
        metrics = evaluate_result(result, rows, retriever.corpus, run_args.top_k_retrieval, run_args.metric,
                                  reader_args.read_mode, run_args.passage_score_ratio)
        metrics.update(run_info)
        written.append(write_json(Path(run_args.output_dir) / METRICS_FILE, metrics))
    print(format_summary(result, metrics, run_info, references, run_args.show_examples))
    print("wrote " + ", ".join(str(p) for p in written))
    return {"written": [str(p) for p in written], "metrics": metrics, "run_info": run_info}


def translate_tokenizer_flag(argv: list[str]) -> tuple[list[str], list[str]]:
    """``--tokenizer`` used to name the retrieval tokenizer here: a tokenizer spec still does, with a note;
    anything else (a folder, a hub name) is the reader's tokenizer."""
    from odqa.retrieval.tokenizers import is_tokenizer_spec
    from odqa.utils.args import take_option

    value, rest = take_option(argv, "--tokenizer")
    if value is None:
        return argv, []
    if is_tokenizer_spec(value) and not Path(value).exists():
        return [*rest, "--retrieval_tokenizer", value], [
            f"--tokenizer {value} -> --retrieval_tokenizer {value} (in `odqa infer`, --tokenizer names the reader's "
            "tokenizer)"]
    return [*rest, "--tokenizer", value], []


def main(argv: list[str] | None = None) -> int:
    from odqa.utils.args import print_notes

    argv, notes = translate_tokenizer_flag(list(sys.argv[1:] if argv is None else argv))
    print_notes("odqa infer", notes)
    retriever_args, corpus_args, reader_args, run_args = parse_cli(
        [InferRetrieverArguments, InferCorpusArguments, InferReaderArguments, InferRunArguments],
        argv, prog="odqa infer", description=__doc__)
    configure_cli_logging()
    if run_args.quiet:
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()
    run_inference(retriever_args, corpus_args, reader_args, run_args)
    return 0
