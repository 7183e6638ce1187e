"""Dynamic batching: many concurrent one-sentence requests, one model call per batch.

    batcher = Batcher(predictor.predict_batch, max_batch_size=32, max_wait_s=0.0)
    batcher.start()                                  # in the lifespan, on the running event loop
    result = await batcher.submit("The dog sleeps.")  # from any `async def` endpoint
    await batcher.close()                            # at shutdown: answers what is queued, then stops

Each `submit` puts (sentence, future) on a bounded asyncio.Queue and waits on the future. One worker
task takes the first waiting sentence, then every sentence already queued, and keeps waiting for
more until the batch has `max_batch_size` sentences or the first one has waited `max_wait_s`.
The batch goes to the model in ONE call, on a worker thread (the event loop keeps accepting
requests meanwhile), and each future gets its own result. While the model runs, new requests
queue up, so under load the batches grow by themselves; with one client every batch is one
sentence and nothing waits (with the default max_wait_s of 0).

The same idea as Triton's dynamic batcher (max_queue_delay_microseconds, default 0), Ray Serve's
@serve.batch (max_batch_size, batch_wait_timeout_s) and BentoML's adaptive batching
(max_batch_size, max_latency_ms); see the week's README.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("uvicorn.error")

# Queued sentences per batch slot: room for a few batches' worth of waiting requests. When the
# queue is full, `submit` waits for room (back-pressure) instead of holding unbounded memory.
QUEUE_BATCHES = 8


class BatcherClosed(RuntimeError):
    """Raised by submit() before start() and after close(): there is no model to answer."""


@dataclass
class Pending:
    """One queued sentence and the future its request awaits."""

    text: str
    future: asyncio.Future = field(repr=False)


class Batcher:
    """Collects concurrent single-sentence requests into batches for one `predict_batch` call each."""

    def __init__(
        self, predict_batch: Callable[[list[str]], list[Any]], max_batch_size: int = 32, max_wait_s: float = 0.0
    ) -> None:
        if max_batch_size < 1 or max_wait_s < 0:
            raise ValueError("max_batch_size must be at least 1 and max_wait_s at least 0")
        self.predict_batch = predict_batch
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self._queue: asyncio.Queue[Pending] | None = None
        self._worker: asyncio.Task | None = None
        # One thread: one model call at a time (as Ray Serve's max_concurrent_batches=1). ONNX Runtime
        # already spreads a call over its intra-op threads; two calls at once would only compete.
        self._executor: ThreadPoolExecutor | None = None
        self._busy = False  # a batch is with the model: close() waits for it

    def start(self) -> None:
        """Start the worker task on the running event loop (call it from the lifespan)."""
        self._queue = asyncio.Queue(maxsize=QUEUE_BATCHES * self.max_batch_size)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batcher")
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="batcher")

    @property
    def running(self) -> bool:
        return self._worker is not None and not self._worker.done()

    async def submit(self, text: str) -> Any:
        """The model's result for `text`, computed in a batch with whatever else is waiting.

        Raises what the model raised if its batch failed (only that batch's requests see it),
        and BatcherClosed when the batcher is not running.
        """
        if not self.running or self._queue is None:
            raise BatcherClosed("the model is not loaded")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(Pending(text, future))
        # If this request is cancelled (its client went away), the future is cancelled with it:
        # the worker skips it, so no model time is spent on an answer nobody reads.
        return await future

    async def _collect(self) -> list[Pending]:
        """The next batch: the first waiting sentence, then more until full or max_wait_s is up."""
        assert self._queue is not None
        batch = [await self._queue.get()]
        deadline = asyncio.get_running_loop().time() + self.max_wait_s
        while len(batch) < self.max_batch_size:
            if not self._queue.empty():  # already waiting: take it without a timer
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def _run(self) -> None:
        """Forever: collect a batch, run it, hand out the results."""
        while True:
            batch = await self._collect()
            await self._answer(batch)

    async def _answer(self, batch: list[Pending]) -> None:
        """One model call for the batch's live requests; a failure goes to exactly those requests."""
        live = [pending for pending in batch if not pending.future.done()]  # skip cancelled ones
        if not live:
            return
        loop = asyncio.get_running_loop()
        self._busy = True
        try:
            results = await loop.run_in_executor(self._executor, self.predict_batch, [p.text for p in live])
            if len(results) != len(live):
                raise RuntimeError(f"the model returned {len(results)} results for {len(live)} sentences")
        except asyncio.CancelledError:
            for pending in live:  # close() cancelled the worker mid-batch: nobody is left waiting forever
                if not pending.future.done():
                    pending.future.set_exception(BatcherClosed("the service is shutting down"))
            raise
        except Exception as error:  # the batch's requests answer 500 with it; the next batch runs as usual
            for pending in live:
                if not pending.future.done():
                    pending.future.set_exception(error)
            return
        finally:
            self._busy = False
        for pending, result in zip(live, results, strict=True):
            if not pending.future.done():  # cancelled while the model ran
                pending.future.set_result(result)

    async def close(self, timeout_s: float = 10.0) -> None:
        """Stop taking sentences, answer the ones already queued (up to timeout_s), then stop the worker."""
        worker, queue = self._worker, self._queue
        if worker is None or queue is None:
            return
        self._worker = None  # submit() refuses from now on
        try:
            async with asyncio.timeout(timeout_s):
                while (self._busy or not queue.empty()) and not worker.done():
                    await asyncio.sleep(0.001)  # the worker drains the queue
        except TimeoutError:
            log.warning("the batcher did not drain within %g s: failing what is left", timeout_s)
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        while not queue.empty():  # anything still queued after the timeout is failed, never left hanging
            pending = queue.get_nowait()
            if not pending.future.done():
                pending.future.set_exception(BatcherClosed("the service is shutting down"))
        if self._executor is not None:
            # Not wait=True: after a timeout the model may still be running a batch nobody awaits.
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
