"""`odqa serve`: load a reader and an index once, then answer questions over HTTP.

  odqa serve --index models/sample_bm25                      # the shipped Korean reader (e5-small-korquad)
  odqa serve --index models/sample_bm25 --model models/my_reader   # a reader you trained
  # then open http://127.0.0.1:8000/ , or:
  curl -s localhost:8000/answer -H 'Content-Type: application/json' -d '{"question": "훈민정음을 창제한 왕은?"}'

Binds to 127.0.0.1 (this machine only) unless --host says otherwise. On a shared machine, give it keys:

  export ODQA_API_KEYS="$(openssl rand -hex 24),$(openssl rand -hex 24)"   # one per client
  odqa serve --index models/sample_bm25 --host 0.0.0.0 --log_format json
  curl -s HOST:8000/answer -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d '{"question": "..."}'

Every route but GET /health and the page then needs a key (401 otherwise); --host 0.0.0.0 without keys
needs --allow_unauthenticated. GET /metrics is Prometheus' text format; each request is one access-log line
(JSON with --log_format json) with its X-Request-ID. The server binds at once and /health says "loading"
(503) until the model is ready; SIGTERM or Ctrl-C stops accepting, finishes what is queued (up to
--shutdown_timeout seconds) and exits 0.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from odqa.errors import ConfigError
from odqa.offline import SHIPPED_READER, missing_model_error
from odqa.reader.abstention import THRESHOLD_AUTO, THRESHOLD_HELP, resolve_threshold
from odqa.reader.extractive import DEFAULT_TOP_K
from odqa.runtime.quantization import QUANTIZE_CHOICES
from odqa.serve.access import DEFAULT_KEYS_ENV, configure_access_log, read_api_keys
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
                "needs API keys, or --allow_unauthenticated)."})
    port: int = field(default=8000, metadata={"help": "TCP port."})
    top_k: int = field(default=DEFAULT_TOP_K, metadata={"help": "Passages retrieved and read per question "
                                                                "(a request may ask for another top_k)."})
    num_answers: int = field(default=5, metadata={"help": "Answers returned per question by default."})
    quantize: str = field(default="none", metadata={
        "help": "Reader precision: none (PyTorch fp32), int8 (OpenVINO, calibrated on --calibration_dataset), "
                "int8-dynamic, fp32-openvino or bf16 (see `odqa infer --help` for what each costs).",
        "choices": list(QUANTIZE_CHOICES)})
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
    api_key_env: Optional[str] = field(default=None, metadata={
        "help": f"Name of the environment variable holding the API keys (comma-separated, one per client, at "
                f"least 16 characters each). Default: {DEFAULT_KEYS_ENV} when it is set, else no keys. With keys, "
                "every route but GET /health and the page needs 'Authorization: Bearer <key>' or 'X-API-Key'."})
    allow_unauthenticated: bool = field(default=False, metadata={
        "help": "Allow a non-loopback --host without API keys (anyone who reaches the port can ask)."})
    cors_origins: str = field(default="", metadata={
        "help": "Comma-separated origins whose pages may call the API from a browser (default: none)."})
    log_format: str = field(default="text", metadata={
        "help": "Access log: one line per request, text or json (for a log shipper).", "choices": ["text", "json"]})
    log_questions: bool = field(default=False, metadata={
        "help": "Write the question texts into the access log (off: they may be personal data)."})
    shutdown_timeout: float = field(default=30.0, metadata={
        "help": "On SIGTERM/Ctrl-C, seconds to finish queued and running requests before exiting."})
    log_level: str = field(default="info", metadata={"help": "Server log level.",
                                                     "choices": ["critical", "error", "warning", "info", "debug"]})


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_paths(args: ServeArguments) -> None:
    """Fail before binding when the model or the index is not there (loading itself runs after binding)."""
    missing = missing_model_error(args.model, "reader")
    if missing is not None:
        raise missing
    if not Path(args.index).exists():
        raise ConfigError(f"--index {args.index}: not found; build it with `odqa index`.")


def load_pipeline(args: ServeArguments):
    """The pipeline the server holds for its whole life."""
    from odqa.pipeline.pipeline import ODQAPipeline

    check_paths(args)
    quantize = None if args.quantize == "none" else args.quantize
    pipeline = ODQAPipeline.from_pretrained(args.model, args.index, batch_size=args.batch_size, quantize=quantize,
                                            show_progress=False, mmap=args.mmap)
    pipeline.read_options.no_answer_threshold = resolve_threshold(args.no_answer_threshold,
                                                                  pipeline.reader.no_answer_threshold)
    if args.calibration_dataset:
        from odqa.pipeline.cli import calibrate_from_file

        calibrate_from_file(pipeline.reader, args.calibration_dataset, args.quantize)
    warm_up(pipeline)
    return pipeline


def warm_up(pipeline) -> None:
    """Answer one question before saying "ready": the first one pays for loading Kiwi, compiling bm25's
    scorer and the first forward pass (~18 s on a slow machine), which no client should wait for."""
    pipeline.run([{"id": "warm-up", "question": "대한민국의 수도는 어디인가?"}], 1, show_progress=False)


def api_keys_of(args: ServeArguments, environ: Any = None) -> list[str]:
    """The keys the server accepts, and the refusal to run open on the network by accident."""
    environ = os.environ if environ is None else environ
    name = args.api_key_env or (DEFAULT_KEYS_ENV if environ.get(DEFAULT_KEYS_ENV, "").strip() else None)
    keys = read_api_keys(name, environ)
    if not keys and args.host not in LOOPBACK and not args.allow_unauthenticated:
        raise ConfigError(f"--host {args.host} without API keys would let anyone who reaches this port use the "
                          f"server: set keys ({DEFAULT_KEYS_ENV}=key1,key2 or --api_key_env NAME), or pass "
                          "--allow_unauthenticated if a proxy in front of it checks who calls.")
    return keys


def make_server(app: Any, args: ServeArguments) -> Any:
    """A uvicorn server whose first SIGTERM/Ctrl-C drains the app (503 to newcomers), waits up to
    --shutdown_timeout for accepted requests, and returns normally (the process exits 0)."""
    import uvicorn

    from odqa.serve.app import drain

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            if not self.should_exit:
                logger.info("stopping: finishing %d queued request(s) (up to %.0f s), refusing new ones.",
                            app.state.batcher.queued, args.shutdown_timeout)
            drain(app)
            super().handle_exit(sig, frame)
            self._captured_signals.clear()  # a graceful stop is a normal exit, not death by the signal

    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level, log_config=None,
                            access_log=False, timeout_graceful_shutdown=max(1, round(args.shutdown_timeout)))
    return DrainingServer(config)


def main(argv: list[str] | None = None) -> int:
    (args,) = parse_cli([ServeArguments], argv, prog="odqa serve", description=__doc__)
    try:
        import prometheus_client  # noqa: F401
        import uvicorn  # noqa: F401

        from odqa.serve.app import ServeOptions, create_app
    except ImportError as err:
        raise ConfigError(f"odqa serve needs FastAPI, uvicorn and prometheus-client ({err.name} is missing): "
                          "pip install \"odqa[serve]\"") from None
    if args.top_k < 1 or args.num_answers < 1 or args.max_batch_size < 1 or args.max_queue < 1:
        raise ConfigError("--top_k, --num_answers, --max_batch_size and --max_queue must be at least 1.")
    if args.shutdown_timeout < 0:
        raise ConfigError("--shutdown_timeout must be at least 0 seconds.")
    configure_cli_logging(level=getattr(logging, args.log_level.upper()))
    configure_access_log(args.log_format)
    keys = api_keys_of(args)
    check_paths(args)
    options = ServeOptions(top_k=args.top_k, num_answers=args.num_answers, max_question_chars=args.max_question_chars,
                           max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms, max_queue=args.max_queue,
                           max_top_k=max(50, args.top_k), model=args.model, index=args.index, api_keys=keys,
                           cors_origins=[o.strip() for o in args.cors_origins.split(",") if o.strip()],
                           log_format=args.log_format, log_questions=args.log_questions)
    if args.host not in LOOPBACK and not keys:
        logger.warning("listening on %s without API keys (--allow_unauthenticated): anyone who can reach this "
                       "address can use the server.", args.host)
    failure: list[BaseException] = []

    def stop_on_failure(err: BaseException) -> None:
        failure.append(err)
        server.should_exit = True

    app = create_app(options=options, loader=lambda: load_pipeline(args), on_load_failure=stop_on_failure)
    server = make_server(app, args)
    logger.info("open http://%s:%d/ (API schema: /openapi.json, metrics: /metrics%s); loading the model...",
                args.host, args.port, f", {len(keys)} API key(s)" if keys else "")
    server.run()
    if failure:
        err = failure[0]
        raise err if isinstance(err, ConfigError) else ConfigError(f"loading the pipeline failed: {err}")
    return 0
