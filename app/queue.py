"""The SAQ queue this process enqueues to, and the `task` marker every task function carries.

QUEUE_URL picks the broker (redis:// or postgres://); by default the queue lives in the same
PostgreSQL as the app. SAQ only carries ids: each task's state lives in our own tables.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from saq import Job, Queue
from saq.queue.redis import RedisQueue

from app.db import database_url
from app.settings import get_settings

QUEUE_NAME = "coursewright"
# LLM generation has its own queue so that its concurrency (GENERATION_CONCURRENCY) is a worker setting,
# and a burst of generation never starves housekeeping and other short jobs.
GENERATION_QUEUE = "coursewright-generation"
QUEUES = (QUEUE_NAME, GENERATION_QUEUE)
F = TypeVar("F", bound=Callable[..., Any])
_queues: dict[str, Queue] = {}


def task(*, timeout: int, queue: str = QUEUE_NAME) -> Callable[[F], F]:
    """Mark a task function with its timeout (seconds) and queue. Every task runs at most once per
    enqueue: SAQ's automatic retry is off, and a retry is a human decision recorded in our tables."""
    assert queue in QUEUES, queue

    def mark(fn: F) -> F:
        fn.saq_timeout = timeout  # type: ignore[attr-defined]
        fn.saq_queue = queue  # type: ignore[attr-defined]
        return fn

    return mark


def queue_url() -> str:
    return get_settings().queue_url or database_url()


def get_queue(name: str = QUEUE_NAME) -> Queue:
    if name not in _queues:
        url = queue_url()
        kwargs: dict[str, Any] = {"name": name}
        if url.startswith("postgres"):
            kwargs |= {"min_size": 1, "max_size": 8}
        _queues[name] = Queue.from_url(url, **kwargs)
    return _queues[name]


async def enqueue(fn: Callable[..., Any], *, key: str | None = None, **kwargs: Any) -> Job | None:
    """Enqueue a task. With `key`, a job with that key still queued or running makes this a no-op
    (returns None): the way to say "at most one pending run of this"."""
    timeout = getattr(fn, "saq_timeout", None)
    if timeout is None:
        raise TypeError(f"{fn.__qualname__} is not a task: decorate it with @task(timeout=...)")
    queue = get_queue(fn.saq_queue)  # type: ignore[attr-defined]
    job = Job(function=fn.__qualname__, kwargs=kwargs, timeout=timeout, retries=1)
    if key is not None:
        job.key = key
    queued = await queue.enqueue(job)
    if queued is None and key is None:
        raise RuntimeError(f"SAQ refused to enqueue {fn.__qualname__}({kwargs})")
    return queued


async def broker_problem(timeout: float) -> str | None:
    """Why the queue broker cannot take jobs right now, or None. Only a Redis broker needs asking: the
    default queue lives in the application's PostgreSQL, which the readiness probe checks itself."""
    queue = get_queue(QUEUE_NAME)
    if not isinstance(queue, RedisQueue):
        return None
    try:
        async with asyncio.timeout(timeout):
            await queue.redis.ping()
    except Exception as exc:  # whatever the client raises, the answer is "not ready", never a 500
        return f"Redis broker unreachable: {type(exc).__name__}"
    return None


async def connect_queues() -> list[Queue]:
    queues = [get_queue(name) for name in QUEUES]
    for queue in queues:
        await queue.connect()
    return queues


async def close_queue() -> None:
    while _queues:
        _name, queue = _queues.popitem()
        await queue.disconnect()
