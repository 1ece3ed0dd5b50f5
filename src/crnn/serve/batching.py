"""Micro-batching: gather the images of concurrent requests into one model call.

Each request :meth:`~MicroBatcher.submit`\\ s its (already decoded and resized)
images and awaits their results. One collector task takes the first waiting
request, then keeps adding requests until ``max_batch_images`` images are
gathered or ``max_wait_ms`` have passed since that first request, runs the model
once on the lot in a single worker thread (so the event loop keeps accepting
requests, and model calls never overlap), and hands each request its own
slice of the results. Under load, requests that arrive while the model is busy
queue up and form the next, larger batch; a lone request waits at most
``max_wait_ms``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class BatchStats:
    """Counters since start: requests and images submitted, model calls made, failures."""

    requests: int = 0
    images: int = 0
    batches: int = 0
    max_batch_images: int = 0
    max_batch_requests: int = 0
    failed_batches: int = 0
    model_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model_seconds"] = round(self.model_seconds, 4)
        d["mean_batch_images"] = round(self.images / self.batches, 3) if self.batches else 0.0
        return d


@dataclass
class BatchTiming:
    """What one request's images went through: waiting for a batch, the model call, the batch size."""

    queue_ms: float
    model_ms: float
    batch_images: int
    batch_requests: int


@dataclass
class _Job:
    items: Sequence[Any]
    future: asyncio.Future
    submitted: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    """Run ``run(items) -> results`` (same length, same order) on batches gathered across requests."""

    def __init__(self, run: Callable[[list[Any]], Sequence[Any]], max_batch_images: int = 32,
                 max_wait_ms: float = 5.0, executor: ThreadPoolExecutor | None = None):
        if max_batch_images < 1:
            raise ValueError("max_batch_images must be at least 1")
        self.run = run
        self.max_batch_images = max_batch_images
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self.executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="crnn-model")
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Job] | None = None
        self._carry: _Job | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        if self._task is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._collect(), name="crnn-micro-batcher")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        pending = [self._carry] if self._carry else []
        while self._queue is not None and not self._queue.empty():
            pending.append(self._queue.get_nowait())
        for job in pending:
            if job and not job.future.done():
                job.future.set_exception(RuntimeError("the server is shutting down"))
        self._carry = None
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, items: Sequence[Any]) -> tuple[list[Any], BatchTiming]:
        """Queue ``items`` for the next batch; returns their results and how the batch went."""
        if self._task is None or self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not awaited")
        if not items:
            return [], BatchTiming(0.0, 0.0, 0, 0)
        job = _Job(list(items), asyncio.get_running_loop().create_future())
        self.stats.requests += 1
        self.stats.images += len(job.items)
        await self._queue.put(job)
        return await job.future

    async def _next(self, timeout: float | None) -> _Job | None:
        assert self._queue is not None
        if self._carry is not None:
            job, self._carry = self._carry, None
            return job
        if timeout is None:
            return await self._queue.get()
        if timeout <= 0:
            try:
                return self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return None
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            return None

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._next(None)
            assert first is not None
            group, n = [first], len(first.items)
            deadline = loop.time() + self.max_wait
            while n < self.max_batch_images:
                job = await self._next(deadline - loop.time())
                if job is None:
                    break
                if n + len(job.items) > self.max_batch_images:
                    self._carry = job  # starts the next batch
                    break
                group.append(job)
                n += len(job.items)
            group = [j for j in group if not j.future.done()]  # the client went away
            if group:
                await self._run_group(loop, group)

    async def _run_group(self, loop: asyncio.AbstractEventLoop, group: list[_Job]) -> None:
        items = [x for j in group for x in j.items]
        start = time.perf_counter()
        try:
            results = await loop.run_in_executor(self.executor, self.run, items)
            if len(results) != len(items):
                raise RuntimeError(f"model returned {len(results)} results for {len(items)} images")
        except Exception as e:  # fan the failure out to every waiting request
            self.stats.failed_batches += 1
            for j in group:
                if not j.future.done():
                    j.future.set_exception(e)
            return
        end = time.perf_counter()
        s = self.stats
        s.batches += 1
        s.model_seconds += end - start
        s.max_batch_images = max(s.max_batch_images, len(items))
        s.max_batch_requests = max(s.max_batch_requests, len(group))
        i = 0
        for j in group:
            k = len(j.items)
            if not j.future.done():
                timing = BatchTiming(round((start - j.submitted) * 1000, 3), round((end - start) * 1000, 3),
                                     len(items), len(group))
                j.future.set_result((list(results[i:i + k]), timing))
            i += k
