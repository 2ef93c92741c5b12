"""`odqa serve`: load a reader and an index once, then answer questions over HTTP.

  odqa serve --index models/sample_bm25                      # the shipped Korean reader (e5-small-korquad)
  odqa serve --index models/sample_bm25 --model models/my_reader   # a reader you trained
  # then open http://127.0.0.1:8000/ , or:
  curl -s localhost:8000/answer -H 'Content-Type: application/json' -d '{"question": "훈민정음을 창제한 왕은?"}'

Binds to 127.0.0.1 (this machine only) unless --host says otherwise; --host 0.0.0.0 exposes it to the
network, with no authentication: put it behind your own proxy for that.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from odqa.errors import ConfigError
from odqa.offline import SHIPPED_READER, missing_model_error
from odqa.pipeline.abstention import THRESHOLD_AUTO, THRESHOLD_HELP, resolve_threshold
from odqa.pipeline.quantization import QUANTIZE_CHOICES
from odqa.pipeline.reading import DEFAULT_TOP_K
from odqa.utils.args import parse_cli
from odqa.utils.logs import configure_cli_logging

logger = logging.getLogger("odqa.serve")


@dataclass
class ServeArguments:
    index: str = field(metadata={"help": "Index directory built by `odqa index` (any retriever)."})
    model: str = field(default=SHIPPED_READER, metadata={
        "help": f"The reader: a trained reader folder (e.g. models/my_reader) or an offline alias; default "
                f"{SHIPPED_READER}, the Korean reader that ships with odqa (KorQuAD-trained e5-small)."})
    mmap: bool = field(default=False, metadata={
        "help": "Memory-map a bm25 index instead of reading it into RAM (very large corpora)."})
    host: str = field(default="127.0.0.1", metadata={
        "help": "Address to bind: 127.0.0.1 (this machine only, the default) or 0.0.0.0 (every interface: "
                "anyone who can reach this machine can ask; there is no authentication)."})
    port: int = field(default=8000, metadata={"help": "TCP port."})
    top_k: int = field(default=DEFAULT_TOP_K, metadata={"help": "Passages retrieved and read per question "
                                                                "(a request may ask for another top_k)."})
    num_answers: int = field(default=5, metadata={"help": "Answers returned per question by default."})
    quantize: str = field(default="none", metadata={
        "help": "Reader precision: none, int8 (OpenVINO, calibrated on --calibration_dataset) or int8-dynamic "
                "(see `odqa infer --help` for what each costs).", "choices": list(QUANTIZE_CHOICES)})
    calibration_dataset: Optional[str] = field(default=None, metadata={
        "help": "With --quantize int8: MRC file whose (question, context) pairs calibrate int8 at start-up."})
    no_answer_threshold: str = field(default=THRESHOLD_AUTO, metadata={"help": THRESHOLD_HELP})
    batch_size: int = field(default=32, metadata={"help": "Windows per forward pass of the reader."})
    max_batch_size: int = field(default=32, metadata={"help": "Questions read together (micro-batching)."})
    max_wait_ms: float = field(default=10.0, metadata={
        "help": "How long the first question of a batch waits for others to join it."})
    max_queue: int = field(default=256, metadata={"help": "Requests allowed to wait; beyond that the server "
                                                           "answers 503 (retry) instead of slowing everyone."})
    max_question_chars: int = field(default=1000, metadata={"help": "Longer questions are refused (422)."})
    log_level: str = field(default="info", metadata={"help": "uvicorn log level.",
                                                     "choices": ["critical", "error", "warning", "info", "debug"]})


def load_pipeline(args: ServeArguments):
    """The pipeline the server holds for its whole life (fails before binding if a path is wrong)."""
    from odqa.pipeline.pipeline import ODQAPipeline

    missing = missing_model_error(args.model, "reader")
    if missing is not None:
        raise missing
    if not Path(args.index).exists():
        raise ConfigError(f"--index {args.index}: not found; build it with `odqa index`.")
    quantize = None if args.quantize == "none" else args.quantize
    pipeline = ODQAPipeline.from_pretrained(args.model, args.index, batch_size=args.batch_size, quantize=quantize,
                                            show_progress=False, mmap=args.mmap)
    pipeline.read_options.no_answer_threshold = resolve_threshold(args.no_answer_threshold,
                                                                  pipeline.reader.no_answer_threshold)
    if args.calibration_dataset:
        from odqa.pipeline.cli import calibrate_from_file

        calibrate_from_file(pipeline.reader, args.calibration_dataset, args.quantize)
    return pipeline


def main(argv: list[str] | None = None) -> int:
    (args,) = parse_cli([ServeArguments], argv, prog="odqa serve", description=__doc__)
    try:
        import uvicorn

        from odqa.serve.app import ServeOptions, create_app
    except ImportError as err:
        raise ConfigError(f"odqa serve needs FastAPI and uvicorn ({err.name} is missing): "
                          "pip install \"odqa[serve]\"") from None
    if args.top_k < 1 or args.num_answers < 1 or args.max_batch_size < 1 or args.max_queue < 1:
        raise ConfigError("--top_k, --num_answers, --max_batch_size and --max_queue must be at least 1.")
    configure_cli_logging()
    pipeline = load_pipeline(args)
    options = ServeOptions(top_k=args.top_k, num_answers=args.num_answers, max_question_chars=args.max_question_chars,
                           max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms, max_queue=args.max_queue,
                           max_top_k=max(50, args.top_k), model=args.model, index=args.index)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("listening on %s: anyone who can reach this address can use the server (no authentication).",
                       args.host)
    logger.info("open http://%s:%d/ (API schema: /openapi.json)", args.host, args.port)
    uvicorn.run(create_app(pipeline, options), host=args.host, port=args.port, log_level=args.log_level)
    return 0
