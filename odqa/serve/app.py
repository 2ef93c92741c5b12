"""The FastAPI application: ``POST /answer``, ``POST /retrieve``, ``GET /health``, ``GET /metrics``,
``GET /`` (the page).

``create_app(pipeline)`` takes an already loaded ``ODQAPipeline``, or ``create_app(loader=...)`` a function
that loads it: the server then binds at once, ``/health`` says ``loading`` (503) until the pipeline is ready,
and questions get 503 with ``Retry-After`` meanwhile, so a load balancer waits for the model instead of
failing requests. Every error a client can cause is a 4xx whose JSON body is ``{"detail": "<one line>"}``;
a full queue, a server still loading or shutting down (``drain(app)``) is a 503 with ``Retry-After``. With
API keys every route but ``GET /health`` and the page needs one (401 otherwise). Each response carries
``X-Request-ID`` (the client's, or a new one), and each request is one access-log line. The schema is
at ``/openapi.json``.

(No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations at run time,
and the request models are local to ``create_app``.)
"""
import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from odqa.reader.abstention import NO_ANSWER_REASON
from odqa.serve.access import (
    OPEN_PATHS,
    AccessRecord,
    access_line,
    access_logger,
    match_key,
    presented_key,
    request_id,
)
from odqa.serve.batching import MicroBatcher, Overloaded
from odqa.serve.metrics import ServeMetrics, route_label

logger = logging.getLogger("odqa.serve")

PAGE = Path(__file__).with_name("static") / "index.html"


@dataclass
class ServeOptions:
    """Limits and defaults of one server (the CLI's options)."""

    top_k: int = 5
    num_answers: int = 5
    max_top_k: int = 50
    max_question_chars: int = 1000
    max_questions: int = 64  # per request
    max_batch_size: int = 32  # questions read together
    max_wait_ms: float = 10.0
    max_queue: int = 256  # requests waiting; more get 503
    model: str = ""
    index: str = ""
    api_keys: list[str] = field(default_factory=list)  # empty: no authentication
    cors_origins: list[str] = field(default_factory=list)
    log_format: str = "text"  # or "json": one JSON object per access-log line
    log_questions: bool = False  # question texts in the access log
    access_log: bool = True


def _schemas():
    """Request/response models (built lazily so importing odqa never needs pydantic)."""
    from pydantic import BaseModel, Field

    class AskRequest(BaseModel):
        question: Optional[Any] = Field(None, description="One question (or give `questions`).")
        questions: Optional[Any] = Field(None, description="Several questions, answered in one batch.")
        top_k: Optional[Any] = Field(None, description="Passages retrieved and read per question.")
        num_answers: Optional[Any] = Field(None, description="Answers returned per question (answer only).")

    class PassageOut(BaseModel):
        passage_id: str
        title: str
        text: str
        score: float
        rank: int

    class AnswerOut(BaseModel):
        text: str
        score: float
        probability: float
        passage_id: str
        title: str
        start: int = Field(description="character offset of the answer in its passage's text")
        end: int
        passage_rank: int
        no_answer_score: float = Field(0.0, description="its window's no-answer score minus the span's score")

    class AnswerResult(BaseModel):
        question: str
        answers: list[AnswerOut]
        passages: list[PassageOut]
        no_answer: bool = Field(False, description="true: the reader says the passages read hold no answer "
                                                   "(answers is then empty)")
        no_answer_reason: Optional[str] = None

    class AnswerResponse(BaseModel):
        results: list[AnswerResult]

    class RetrieveResult(BaseModel):
        question: str
        passages: list[PassageOut]

    class RetrieveResponse(BaseModel):
        results: list[RetrieveResult]

    return AskRequest, AnswerResponse, RetrieveResponse


class RequestError(ValueError):
    """A request the client must fix (-> 422 with this one-line message)."""


def parse_request(body: Any, options: ServeOptions, default_top_k: int) -> tuple[list[str], int, int]:
    """(questions, top_k, num_answers) from a request body, or a one-line RequestError."""
    if body.question is not None and body.questions is not None:
        raise RequestError("give either \"question\" or \"questions\", not both.")
    if body.question is None and body.questions is None:
        raise RequestError("the body needs \"question\": \"...\" or \"questions\": [\"...\", ...].")
    if body.questions is not None and not isinstance(body.questions, list):
        raise RequestError("\"questions\" must be a list of strings.")
    questions = [body.question] if body.question is not None else list(body.questions)
    if not questions:
        raise RequestError("\"questions\" is empty.")
    if len(questions) > options.max_questions:
        raise RequestError(f"at most {options.max_questions} questions per request (got {len(questions)}).")
    for n, q in enumerate(questions):
        where = "question" if body.question is not None else f"questions[{n}]"
        if not isinstance(q, str):
            raise RequestError(f"{where} must be a string (got {type(q).__name__}).")
        if not q.strip():
            raise RequestError(f"{where} is empty.")
        if len(q) > options.max_question_chars:
            raise RequestError(f"{where} has {len(q)} characters; the limit is {options.max_question_chars}.")
    top_k = _int(body.top_k, "top_k", default_top_k, options.max_top_k)
    num_answers = _int(body.num_answers, "num_answers", options.num_answers, 100)
    return [q.strip() for q in questions], top_k, num_answers


def _int(value: Any, name: str, default: int, maximum: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise RequestError(f"{name} must be an integer from 1 to {maximum} (got {value!r}).")
    return value


def read_batch(pipeline: Any, questions: list[str], top_k: int,
               on_timings: Callable[[int, dict[str, float]], None] | None = None) -> list[dict[str, Any]]:
    """One pipeline call for many questions -> per question: answers and the passages they came from."""
    result = pipeline.run([{"id": str(n), "question": q} for n, q in enumerate(questions)], top_k,
                          show_progress=False)
    if on_timings is not None:
        timings = dict(result.timings)
        if "total" in timings and "retrieve" in timings:
            timings["read"] = timings["total"] - timings["retrieve"]
        on_timings(len(questions), timings)
    out = []
    for n, question in enumerate(questions):
        passages = [{"passage_id": str(h.passage_id), "title": h.passage.title, "text": h.passage.text,
                     "score": float(h.score), "rank": h.rank} for h in result.hits[n]]
        found = result.answers[n]
        if found and found[0].no_answer:  # the reader abstains: no answers, a reason, still the passages read
            out.append({"question": question, "answers": [], "passages": passages, "no_answer": True,
                        "no_answer_reason": f"{NO_ANSWER_REASON}: {found[0].no_answer_score:.3g} > "
                                            f"{pipeline.read_options.no_answer_threshold:.3g}"})
            continue
        answers = [{"text": a.text, "score": a.score, "probability": a.probability, "passage_id": a.passage_id,
                    "title": a.title, "start": a.start, "end": a.end, "passage_rank": a.passage_rank,
                    "no_answer_score": a.no_answer_score} for a in found]
        out.append({"question": question, "answers": answers, "passages": passages, "no_answer": False})
    return out


class AppState:
    """What the routes share: the pipeline once loaded, and whether the server is loading/ready/draining."""

    def __init__(self, pipeline: Any = None) -> None:
        self.pipeline = pipeline
        self.load_error: BaseException | None = None
        self.draining = False
        self.ready_at: float | None = time.time() if pipeline is not None else None

    @property
    def status(self) -> str:
        if self.draining:
            return "draining"
        if self.load_error is not None:
            return "failed"
        return "ok" if self.pipeline is not None else "loading"


def served_identity(pipeline: Any) -> dict[str, Any]:
    """The retriever's name and the no-answer threshold of a pipeline (for /health and the info metric)."""
    if pipeline is None:
        return {"retriever": "", "no_answer_threshold": None}
    return {"retriever": getattr(pipeline.retriever, "name", type(pipeline.retriever).__name__),
            "no_answer_threshold": getattr(getattr(pipeline, "read_options", None), "no_answer_threshold", None)}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (for a test, a benchmark, a notebook server)."""
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def drain(app: Any) -> None:
    """Begin a graceful shutdown: new requests get 503 + Retry-After; those already accepted finish."""
    app.state.odqa.draining = True


def _retry_later(detail: str, seconds: int = 1) -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": str(seconds)})


def create_app(pipeline: Any = None, options: ServeOptions | None = None, loader: Callable[[], Any] | None = None,
               on_load_failure: Callable[[BaseException], None] | None = None) -> Any:
    """The ASGI app serving ``pipeline`` (loaded once, shared by every request), or the one ``loader`` returns
    (called in a thread at start-up; ``on_load_failure(err)`` is called if it raises)."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, Response
    from starlette.concurrency import run_in_threadpool

    import odqa

    if (pipeline is None) == (loader is None):
        raise ValueError("create_app needs a pipeline or a loader (one of them).")
    options = options or ServeOptions()
    state = AppState(pipeline)
    AskRequest, AnswerResponse, RetrieveResponse = _schemas()
    batcher = MicroBatcher(lambda qs, k: read_batch(state.pipeline, qs, k, metrics.observe_batch),
                           options.max_batch_size, options.max_wait_ms, options.max_queue)
    metrics = ServeMetrics(queue_depth=lambda: batcher.queued, ready=lambda: float(state.status == "ok"))

    def describe() -> None:
        metrics.describe(version=odqa.__version__, model=options.model, index=options.index,
                         **served_identity(state.pipeline))

    def load() -> None:
        started = time.perf_counter()
        try:
            state.pipeline = loader()
        except Exception as err:  # noqa: BLE001 - reported, and the server is told to stop
            from odqa.errors import ODQAError

            state.load_error = err
            if isinstance(err, ODQAError):  # a clear message of ours: no traceback
                logger.error("loading the pipeline failed: %s", err)
            else:
                logger.exception("loading the pipeline failed")
            if on_load_failure is not None:
                on_load_failure(err)
            return
        state.ready_at = time.time()
        describe()
        logger.info("ready in %.1f s: questions are answered from now on.", time.perf_counter() - started)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        if state.pipeline is None:
            threading.Thread(target=load, name="odqa-load", daemon=True).start()
        else:
            describe()
        yield
        await batcher.stop()

    app = FastAPI(title="odqa", version=odqa.__version__, lifespan=lifespan,
                  description="Open-domain question answering: retrieve passages, read the answer span.")
    app.state.batcher = batcher
    app.state.odqa = state
    app.state.metrics = metrics
    if options.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=options.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Request-ID"],
                           expose_headers=["X-Request-ID"])

    @app.middleware("http")
    async def gate(request: Request, call_next):
        """Request id, API key, loading/draining, then the route; counted and logged once, whatever happened."""
        path = request.url.path
        record = AccessRecord(request_id(request.headers), request.method, route_label(path))
        request.state.access = record
        needs_key = bool(options.api_keys) and request.method != "OPTIONS" and not (
            request.method == "GET" and path in OPEN_PATHS)
        presented = presented_key(request.headers) if needs_key else None
        if needs_key:
            record.key_id = match_key(presented, options.api_keys)
        if state.draining and path != "/health":
            metrics.rejected.labels("draining").inc()
            response = _retry_later("the server is shutting down; retry on another instance or shortly.", 5)
        elif needs_key and record.key_id is None:
            metrics.unauthorized.inc()
            response = JSONResponse({"detail": "wrong API key." if presented is not None else "this server needs an API key: "
                                     "send \"Authorization: Bearer <key>\" or \"X-API-Key: <key>\"."},
                                    status_code=401, headers={"WWW-Authenticate": "Bearer"})
        elif state.status in ("loading", "failed") and path in ("/answer", "/retrieve"):
            metrics.rejected.labels("loading").inc()
            response = _retry_later("the model is still loading; retry shortly." if state.status == "loading"
                                    else "the pipeline failed to load; see the server log.", 2)
        else:
            try:
                response = await call_next(request)
            except Exception:
                logger.exception("request %s (%s %s) failed", record.request_id, request.method, path)
                response = JSONResponse({"detail": f"internal error (request id {record.request_id}); see the "
                                                   "server log."}, status_code=500)
        response.headers["X-Request-ID"] = record.request_id
        record.status = response.status_code
        metrics.requests.labels(record.route, str(response.status_code)).inc()
        metrics.request_seconds.labels(record.route).observe(time.perf_counter() - record.started)
        if options.access_log:
            access_logger.info(access_line(record, options.log_format, options.log_questions))
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, err: RequestValidationError):
        first = err.errors()[0] if err.errors() else {}
        if first.get("type") == "json_invalid":
            return JSONResponse({"detail": f"the body is not valid JSON ({first.get('ctx', {}).get('error', '')})."},
                                status_code=400)
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        return JSONResponse({"detail": f"{where}: {first.get('msg', 'invalid')}."}, status_code=422)

    @app.exception_handler(RequestError)
    async def bad_request(request: Request, err: RequestError):
        return JSONResponse({"detail": str(err)}, status_code=422)

    @app.exception_handler(Overloaded)
    async def overloaded(request: Request, err: Overloaded):
        metrics.rejected.labels("overloaded").inc()
        return _retry_later(f"server busy ({err}); retry shortly.")

    @app.post("/answer", response_model=AnswerResponse, summary="Answer one or several questions")
    async def answer(body: AskRequest, request: Request) -> dict[str, Any]:
        questions, top_k, num_answers = parse_request(body, options, options.top_k)
        record: AccessRecord = request.state.access
        record.questions, record.top_k = questions, top_k
        meta: dict[str, Any] = {}
        results = await batcher.submit(questions, top_k, meta)
        record.batch_id = meta.get("batch_id")
        record.no_answer = sum(1 for r in results if r["no_answer"])
        metrics.questions.inc(len(questions))
        metrics.abstentions.inc(record.no_answer)
        return {"results": [{**r, "answers": r["answers"][:num_answers]} for r in results]}

    @app.post("/retrieve", response_model=RetrieveResponse, summary="Retrieve passages only")
    async def retrieve(body: AskRequest, request: Request) -> dict[str, Any]:
        questions, top_k, _ = parse_request(body, options, options.top_k)
        record: AccessRecord = request.state.access
        record.questions, record.top_k = questions, top_k
        retriever = state.pipeline.retriever
        hits = await run_in_threadpool(retriever.retrieve, questions, top_k)
        corpus = retriever.corpus
        return {"results": [{"question": q, "passages": [
            {"passage_id": h.passage_id, "title": corpus[h.passage_id].title, "text": corpus[h.passage_id].text,
             "score": h.score, "rank": h.rank} for h in hs]} for q, hs in zip(questions, hits)]}

    @app.get("/health", summary="ok (200) once ready; loading, draining or failed (503) otherwise")
    async def health() -> Any:
        status = state.status
        if status != "ok":
            return JSONResponse({"status": status, "version": odqa.__version__, "model": options.model,
                                 "index": options.index}, status_code=503, headers={"Retry-After": "2"})
        return {"status": "ok", "version": odqa.__version__, "model": options.model, "index": options.index,
                **served_identity(state.pipeline), "corpus_size": len(state.pipeline.retriever.corpus),
                "top_k": options.top_k, "auth": bool(options.api_keys), "ready_since": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                            time.gmtime(state.ready_at)),
                "queued": batcher.queued, "batching": batcher.stats.as_dict()}

    @app.get("/metrics", summary="Prometheus metrics (text format)")
    async def prometheus_metrics() -> Any:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/", include_in_schema=False)
    async def page() -> Any:
        return FileResponse(PAGE, media_type="text/html; charset=utf-8")

    return app


@contextlib.contextmanager
def background_server(app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"):
    """Run ``app`` with uvicorn in a background thread (a notebook, a test, a benchmark); yields its URL.

    ``port=0`` picks a free port. The server stops when the block ends.
    """
    import threading

    import uvicorn

    if port == 0:
        port = free_port(host)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
