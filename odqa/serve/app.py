"""The FastAPI application: ``POST /answer``, ``POST /retrieve``, ``GET /health``, ``GET /`` (the page).

``create_app(pipeline)`` takes an already loaded ``ODQAPipeline`` (it loads once, at start-up, in the
CLI). Every error a client can cause is a 4xx whose JSON body is ``{"detail": "<one line>"}``; a full
queue is a 503 with ``Retry-After``. The schema is at ``/openapi.json``.

(No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations at run time,
and the request models are local to ``create_app``.)
"""
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from odqa.pipeline.abstention import NO_ANSWER_REASON
from odqa.serve.batching import MicroBatcher, Overloaded

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


def read_batch(pipeline: Any, questions: list[str], top_k: int) -> list[dict[str, Any]]:
    """One pipeline call for many questions -> per question: answers and the passages they came from."""
    result = pipeline.run([{"id": str(n), "question": q} for n, q in enumerate(questions)], top_k,
                          show_progress=False)
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


def create_app(pipeline: Any, options: ServeOptions | None = None) -> Any:
    """The ASGI app serving ``pipeline`` (loaded once, shared by every request)."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse
    from starlette.concurrency import run_in_threadpool

    import odqa

    options = options or ServeOptions()
    AskRequest, AnswerResponse, RetrieveResponse = _schemas()
    batcher = MicroBatcher(lambda qs, k: read_batch(pipeline, qs, k), options.max_batch_size, options.max_wait_ms,
                           options.max_queue)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="odqa", version=odqa.__version__, lifespan=lifespan,
                  description="Open-domain question answering: retrieve passages, read the answer span.")
    app.state.batcher = batcher

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
        return JSONResponse({"detail": f"server busy ({err}); retry shortly."}, status_code=503,
                            headers={"Retry-After": "1"})

    @app.post("/answer", response_model=AnswerResponse, summary="Answer one or several questions")
    async def answer(body: AskRequest) -> dict[str, Any]:
        questions, top_k, num_answers = parse_request(body, options, options.top_k)
        results = await batcher.submit(questions, top_k)
        return {"results": [{**r, "answers": r["answers"][:num_answers]} for r in results]}

    @app.post("/retrieve", response_model=RetrieveResponse, summary="Retrieve passages only")
    async def retrieve(body: AskRequest) -> dict[str, Any]:
        questions, top_k, _ = parse_request(body, options, options.top_k)
        retriever = pipeline.retriever
        hits = await run_in_threadpool(retriever.retrieve, questions, top_k)
        corpus = retriever.corpus
        return {"results": [{"question": q, "passages": [
            {"passage_id": h.passage_id, "title": corpus[h.passage_id].title, "text": corpus[h.passage_id].text,
             "score": h.score, "rank": h.rank} for h in hs]} for q, hs in zip(questions, hits)]}

    @app.get("/health", summary="Model, index, corpus size, version, batching statistics")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": odqa.__version__, "model": options.model, "index": options.index,
                "retriever": getattr(pipeline.retriever, "name", type(pipeline.retriever).__name__),
                "corpus_size": len(pipeline.retriever.corpus), "top_k": options.top_k,
                "no_answer_threshold": getattr(getattr(pipeline, "read_options", None), "no_answer_threshold", None),
                "queued": batcher.queued, "batching": batcher.stats.as_dict()}

    @app.get("/", include_in_schema=False)
    async def page() -> Any:
        return FileResponse(PAGE, media_type="text/html; charset=utf-8")

    return app


@contextlib.contextmanager
def background_server(app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"):
    """Run ``app`` with uvicorn in a background thread (a notebook, a test, a benchmark); yields its URL.

    ``port=0`` picks a free port. The server stops when the block ends.
    """
    import socket
    import threading
    import time

    import uvicorn

    if port == 0:
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
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
