"""Micro-batching: gather concurrent requests, run them together, answer each caller.

The event loop never runs the model. :meth:`MicroBatcher.submit` puts a request's messages
on a bounded queue and awaits futures; one worker thread takes what is queued (up to
``max_batch_size`` messages, waiting at most ``max_wait_ms`` after the first for more while
the batch is not full), tokenizes it in one call, sorts it by length and runs it in groups
padded to their own longest (:func:`length_groups`), then hands each caller its answers
through ``loop.call_soon_threadsafe``. ONNX Runtime releases the GIL while it computes, so the
event loop keeps accepting and parsing requests meanwhile.

When the queue holds ``max_queue`` messages, :meth:`submit` raises :class:`Overloaded` at
once: the server answers 503 with ``Retry-After`` instead of letting latency grow without
bound (Triton's "reject" queue policy).

Example:
    >>> length_groups([3, 3, 4, 12, 13, 40], max_padding=1.3)
    [[0, 1, 2], [3, 4], [5]]
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mangaassist.inference.predictor import Predictor


class Overloaded(Exception):
    """The queue is full: shed this request (503 + Retry-After)."""


@dataclass
class Item:
    """One message on its way through the batcher."""

    text: str
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    enqueued: float = field(default_factory=time.perf_counter)  # s, perf_counter clock


@dataclass
class BatchStats:
    """What one model batch looked like, for the metrics."""

    size: int
    groups: int
    tokens: int  # real tokens
    padded: int  # tokens computed, padding included
    compute_ms: float


def length_groups(lengths: Sequence[int], max_padding: float = 1.3) -> list[list[int]]:
    """Split messages sorted by length into groups whose padded size stays near their real one.

    A group (indices into ``lengths``, shortest first) grows while ``n * longest`` stays within
    ``max_padding`` times its real tokens, so one long message does not make thirty short ones
    compute its length. ``max_padding=inf`` is one group (plain padding to the batch's longest).

    Args:
        lengths: token count per message.
        max_padding: padded tokens / real tokens a group may reach (>= 1).
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups: list[list[int]] = []
    current: list[int] = []
    real = 0
    for i in order:
        n = lengths[i]
        if current and (len(current) + 1) * n > max_padding * (real + n):
            groups.append(current)
            current, real = [], 0
        current.append(i)
        real += n
    if current:
        groups.append(current)
    return groups


class MicroBatcher:
    """A bounded queue and one worker thread in front of a :class:`Predictor`.

    Args:
        predictor: the model; only the worker thread calls it.
        max_batch_size: messages per batch (1 = no batching: one model call per message).
        max_wait_ms: how long the first message of a batch waits for companions.
        max_queue: messages waiting before :meth:`submit` raises :class:`Overloaded`.
        group_padding: see :func:`length_groups`.
        top_k: (intent, probability) pairs per answer.
        on_batch: called in the worker thread with each :class:`BatchStats` (metrics).
    """

    def __init__(
        self,
        predictor: Predictor,
        *,
        max_batch_size: int = 32,
        max_wait_ms: float = 1.0,
        max_queue: int = 512,
        group_padding: float = 1.3,
        top_k: int = 3,
        on_batch: Callable[[BatchStats], None] | None = None,
    ) -> None:
        self.predictor = predictor
        self.max_batch_size = int(max_batch_size)
        self.max_wait_s = float(max_wait_ms) / 1000
        self.max_queue = int(max_queue)
        self.group_padding = float(group_padding)
        self.top_k = int(top_k)
        self.on_batch = on_batch
        self._queue: deque[Item] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._nice = 0  # worker thread's niceness: a shadow model runs at a lower priority
        self._thread = threading.Thread(target=self._work, name="mangaassist-batcher", daemon=True)
        self._thread.start()

    def pending(self) -> int:
        """Messages waiting for the worker."""
        return len(self._queue)

    async def submit(self, texts: Sequence[str]) -> list[dict]:
        """Answers for ``texts`` (in order), each with ``tokens``, ``queue_ms`` and ``batch``.

        Raises:
            Overloaded: the queue cannot take ``len(texts)`` more messages.
        """
        loop = asyncio.get_running_loop()
        items = [Item(t, loop.create_future(), loop) for t in texts]
        with self._cond:
            if self._stopping or len(self._queue) + len(items) > self.max_queue:
                raise Overloaded(f"{len(self._queue)} messages queued (max_queue {self.max_queue})")
            self._queue.extend(items)
            self._cond.notify()
        return list(await asyncio.gather(*(it.future for it in items)))

    def _take(self) -> list[Item] | None:
        """Block for the next batch; None once stopping and drained."""
        with self._cond:
            while not self._queue:
                if self._stopping:
                    return None
                self._cond.wait()
            batch = [self._queue.popleft()]
            deadline = batch[0].enqueued + self.max_wait_s
            while len(batch) < self.max_batch_size:
                if self._queue:
                    batch.append(self._queue.popleft())
                    continue
                left = deadline - time.perf_counter()
                if left <= 0 or self._stopping or not self._cond.wait(left):
                    break
            return batch

    def background(self, nice: int = 10) -> None:
        """Run this batcher's model calls at a lower CPU priority (Linux thread niceness)."""
        self._nice = nice

    def _work(self) -> None:
        applied = 0
        while (batch := self._take()) is not None:
            if self._nice != applied:  # a single-threaded session computes in this thread
                with contextlib.suppress(OSError, AttributeError):
                    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self._nice)
                applied = self._nice
            started = time.perf_counter()
            try:
                answers, stats = self._run(batch)
            except Exception as err:  # a model failure fails these requests, not the thread
                for it in batch:
                    it.loop.call_soon_threadsafe(_set_exception, it.future, err)
                continue
            for it, answer in zip(batch, answers, strict=True):
                answer["queue_ms"] = (started - it.enqueued) * 1000
                answer["batch"] = stats.size
                it.loop.call_soon_threadsafe(_set_result, it.future, answer)
            if self.on_batch is not None:
                self.on_batch(stats)

    def _run(self, batch: list[Item]) -> tuple[list[dict], BatchStats]:
        t0 = time.perf_counter()
        ids = self.predictor.tokenizer.encode([it.text for it in batch])
        lengths = [len(x) for x in ids]
        answers: list[dict] = [{} for _ in batch]
        padded = 0
        groups = length_groups(lengths, self.group_padding)
        for group in groups:
            # (g, C) each; the secondary head's logits are None for a bundle without it
            logits, second = self.predictor.run_ids_heads([ids[i] for i in group])
            padded += len(group) * max(lengths[i] for i in group)
            done = self.predictor.answers(logits, self.top_k, second)
            for i, answer in zip(group, done, strict=True):
                answers[i] = {**answer, "tokens": lengths[i]}
        ms = (time.perf_counter() - t0) * 1000
        return answers, BatchStats(len(batch), len(groups), sum(lengths), padded, ms)

    def close(self, timeout: float = 10.0) -> None:
        """Answer everything queued, then stop the worker (new submits are refused)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)


def _set_result(future: asyncio.Future, value: object) -> None:
    if not future.done():  # the caller may have gone (client disconnect cancels the await)
        future.set_result(value)


def _set_exception(future: asyncio.Future, err: BaseException) -> None:
    if not future.done():
        future.set_exception(err)
