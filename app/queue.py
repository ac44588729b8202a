"""The SAQ queue this process enqueues to, and the `task` marker every task function carries.

QUEUE_URL picks the broker (redis:// or postgres://); by default the queue lives in the same
PostgreSQL as the app. SAQ only carries ids: each task's state lives in our own tables.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from saq import Job, Queue

from app.db import database_url
from app.settings import get_settings

QUEUE_NAME = "coursewright"
F = TypeVar("F", bound=Callable[..., Any])
_queue: Queue | None = None


def task(*, timeout: int) -> Callable[[F], F]:
    """Mark a task function with its timeout (seconds). Every task runs at most once per enqueue: SAQ's
    automatic retry is off, and a retry is a human decision recorded in our tables."""

    def mark(fn: F) -> F:
        fn.saq_timeout = timeout  # type: ignore[attr-defined]
        return fn

    return mark


def queue_url() -> str:
    return get_settings().queue_url or database_url()


def get_queue() -> Queue:
    global _queue
    if _queue is None:
        url = queue_url()
        kwargs: dict[str, Any] = {"name": QUEUE_NAME}
        if url.startswith("postgres"):
            kwargs |= {"min_size": 1, "max_size": 8}
        _queue = Queue.from_url(url, **kwargs)
    return _queue


async def enqueue(fn: Callable[..., Any], **kwargs: Any) -> Job:
    timeout = getattr(fn, "saq_timeout", None)
    if timeout is None:
        raise TypeError(f"{fn.__qualname__} is not a task: decorate it with @task(timeout=...)")
    job = await get_queue().enqueue(Job(function=fn.__qualname__, kwargs=kwargs, timeout=timeout, retries=1))
    if job is None:
        raise RuntimeError(f"SAQ refused to enqueue {fn.__qualname__}({kwargs})")
    return job


async def close_queue() -> None:
    global _queue
    if _queue is not None:
        await _queue.disconnect()
        _queue = None
