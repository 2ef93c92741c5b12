"""Micro-batching: questions that arrive within a few milliseconds of each other are read in one batch.

The reader is fastest on many windows at once (length-sorted, padded per batch), so a server that reads
each request alone wastes most of the CPU under load. Requests wait in a bounded queue; one worker takes
what is there (waiting at most ``max_wait_ms`` for more, up to ``max_batch_size`` questions), runs the
pipeline once per distinct ``top_k`` in a worker thread (so the event loop keeps accepting requests), and
hands every request its own slice of the results. A full queue refuses new work at once (503), so
overload never turns into unbounded memory or timeouts for everyone.
"""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence


class Overloaded(Exception):
    """The queue is full; the client should retry later."""


@dataclass
class _Request:
    questions: list[str]
    top_k: int
    future: asyncio.Future
    meta: dict | None = None  # the worker writes "batch_id" here (the access log's batch id)


@dataclass
class BatchStats:
    """What the batcher did: pipeline calls and how many questions each one read."""

    calls: int = 0
    questions: int = 0
    batch_sizes: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"pipeline_calls": self.calls, "questions": self.questions,
                "largest_batch": max(self.batch_sizes, default=0),
                "mean_batch": round(self.questions / self.calls, 2) if self.calls else 0.0}


class MicroBatcher:
    """``await batcher.submit(questions, top_k)`` -> ``run(questions, top_k)``'s result for those questions.

    ``run(list_of_questions, top_k) -> list (one item per question)`` is called in a worker thread,
    one call at a time.
    """

    def __init__(self, run: Callable[[list[str], int], Sequence[Any]], max_batch_size: int = 32,
                 max_wait_ms: float = 10.0, max_queue: int = 256) -> None:
        if max_batch_size < 1 or max_wait_ms < 0 or max_queue < 1:
            raise ValueError("max_batch_size and max_queue must be at least 1 and max_wait_ms at least 0.")
        self.run, self.max_batch_size, self.max_wait = run, max_batch_size, max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Request] | None = None
        self._worker: asyncio.Task | None = None
        self._batch_ids = 0

    async def start(self) -> None:
        self._queue = asyncio.Queue(maxsize=self.max_queue)
        self._worker = asyncio.create_task(self._work())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass

    @property
    def queued(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    async def submit(self, questions: list[str], top_k: int, meta: dict | None = None) -> list[Any]:
        """The results for ``questions``; ``meta["batch_id"]`` says which pipeline call read them."""
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not awaited (the app's lifespan starts it).")
        request = _Request(list(questions), top_k, asyncio.get_running_loop().create_future(), meta)
        try:
            self._queue.put_nowait(request)
        except asyncio.QueueFull:
            raise Overloaded(f"{self._queue.qsize()} requests are already waiting") from None
        return await request.future

    async def _work(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            size = len(batch[0].questions)
            deadline = time.monotonic() + self.max_wait
            while size < self.max_batch_size:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    break
                try:
                    request = await asyncio.wait_for(self._queue.get(), timeout)
                except asyncio.TimeoutError:
                    break
                batch.append(request)
                size += len(request.questions)
            for top_k in sorted({r.top_k for r in batch}):
                group = [r for r in batch if r.top_k == top_k and not r.future.cancelled()]
                if group:
                    await self._run_group(loop, group, top_k)

    async def _run_group(self, loop: asyncio.AbstractEventLoop, group: list[_Request], top_k: int) -> None:
        questions = [q for r in group for q in r.questions]
        self._batch_ids += 1
        for r in group:
            if r.meta is not None:
                r.meta["batch_id"] = self._batch_ids
        try:
            results = await loop.run_in_executor(None, self.run, questions, top_k)
        except Exception as err:  # noqa: BLE001 - every waiting request gets the error, the worker goes on
            for r in group:
                if not r.future.done():
                    r.future.set_exception(err)
            return
        self.stats.calls += 1
        self.stats.questions += len(questions)
        self.stats.batch_sizes[len(questions)] += 1
        start = 0
        for r in group:  # each request gets exactly its own questions' results, in order
            if not r.future.done():
                r.future.set_result(list(results[start:start + len(r.questions)]))
            start += len(r.questions)
