"""The local task queues: never deployed (the archive leaves `infra/` out).

* `LocalHttpQueue`: local runs. Delivers to the functions served by
  functions-framework on loopback, with bounded concurrency and retries with
  backoff (honouring Retry-After), like Cloud Tasks would.
* `InlineQueue`: tests and `--inline` runs. Calls the handlers in-process.

Both take their attempt limit from `ANALYTICS_TASK_MAX_ATTEMPTS`, the one setting
Terraform also gives Cloud Tasks, so the analyzer's "last attempt records a
failure" always happens before a queue gives up on a task.

`register()` makes them the `local_http` and `inline` backends of
`functions.wiring`; importing `infra.local_functions` (the source the local stack
serves) or the CLI does it.
"""

from __future__ import annotations

import json
import logging
import queue as stdlib_queue
import random
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests

from shared.config import QueueBackend, Settings
from shared.errors import ConfigurationError, RetryableError
from shared.queue import (
    TASK_RETRY_HEADER,
    TASK_SECRET_HEADER,
    EnqueueReport,
    Handler,
    check_target,
)

__all__ = ["InlineQueue", "LocalHttpQueue", "inline_queue", "register"]

_log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Delivery:
    target: str
    name: str
    body: bytes
    attempt: int = 0


class LocalHttpQueue:
    """Deliver tasks over HTTP to local function servers, retrying like Cloud Tasks."""

    def __init__(
        self,
        settings: Settings,
        *,
        urls: Mapping[str, str] | None = None,
        concurrency: int | None = None,
        min_backoff: float = 0.2,
        max_backoff: float = 10.0,
        duplicate_deliveries: int = 1,
    ) -> None:
        self._urls = dict(urls or {"analyze": settings.analyzer_url, "aggregate": settings.aggregator_url})
        self._secret = settings.task_secret.get_secret_value()
        self._max_attempts = settings.task_max_attempts
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._duplicates = max(1, duplicate_deliveries)
        self._timeout = float(settings.task_deadline_seconds)
        self._sessions = threading.local()  # requests.Session is not shared between threads
        self._pending: stdlib_queue.Queue[_Delivery] = stdlib_queue.Queue()
        self._seen: set[tuple[str, str]] = set()
        self._seen_lock = threading.Lock()
        self._outstanding = 0
        self._idle = threading.Condition()
        self.delivered = 0
        self.dropped: list[str] = []
        self._workers = [
            threading.Thread(target=self._work, name=f"local-queue-{i}", daemon=True)
            for i in range(concurrency or settings.local_concurrency)
        ]
        for worker in self._workers:
            worker.start()

    def enqueue(self, target: str, payload: dict[str, Any], *, name: str) -> bool:
        check_target(target)
        if not self._urls.get(target):
            raise ConfigurationError(f"no URL configured for the {target} function")
        with self._seen_lock:
            if (target, name) in self._seen:
                return False
            self._seen.add((target, name))
        body = json.dumps(payload).encode()
        for _ in range(self._duplicates):
            self._push(_Delivery(target, name, body))
        return True

    def enqueue_many(self, target: str, tasks: Iterable[tuple[str, dict[str, Any]]]) -> EnqueueReport:
        report = EnqueueReport()
        for name, payload in tasks:
            if self.enqueue(target, payload, name=name):
                report.created += 1
            else:
                report.already_existed += 1
        return report

    def _push(self, delivery: _Delivery) -> None:
        with self._idle:
            self._outstanding += 1
        self._pending.put(delivery)

    def _done(self) -> None:
        with self._idle:
            self._outstanding -= 1
            if self._outstanding == 0:
                self._idle.notify_all()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every task this queue holds was delivered or dropped."""
        with self._idle:
            return self._idle.wait_for(lambda: self._outstanding == 0, timeout=timeout)

    def _work(self) -> None:
        while True:
            delivery = self._pending.get()
            try:
                self._deliver(delivery)
            finally:
                self._done()

    def _deliver(self, delivery: _Delivery) -> None:
        retry_after: float | None = None
        session = getattr(self._sessions, "session", None)
        if session is None:
            session = self._sessions.session = requests.Session()
        try:
            response = session.post(
                self._urls[delivery.target],
                data=delivery.body,
                timeout=self._timeout,
                headers={
                    "Content-Type": "application/json",
                    TASK_SECRET_HEADER: self._secret,
                    "X-CloudTasks-TaskName": delivery.name,
                    TASK_RETRY_HEADER: str(delivery.attempt),
                },
            )
            if 200 <= response.status_code < 300:
                with self._idle:
                    self.delivered += 1
                return
            problem = f"HTTP {response.status_code}"
            retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
        except requests.RequestException as exc:
            problem = f"{type(exc).__name__}: {exc}"
        delivery.attempt += 1
        if delivery.attempt >= self._max_attempts:
            _log.error("dropping task %s after %d attempts (%s)", delivery.name, delivery.attempt, problem)
            with self._idle:
                self.dropped.append(delivery.name)
            return
        backoff = min(self._max_backoff, self._min_backoff * 2 ** (delivery.attempt - 1))
        delay = max(backoff, retry_after or 0.0) * random.uniform(1.0, 1.25)
        _log.info("task %s: %s; retry %d in %.1fs", delivery.name, problem, delivery.attempt, delay)
        with self._idle:
            self._outstanding += 1  # counted now so join() waits through the delay
        threading.Timer(delay, self._pending.put, args=(delivery,)).start()


class InlineQueue:
    """Run tasks in-process by calling their handlers; retries transient errors."""

    def __init__(
        self,
        handlers: Mapping[str, Handler],
        *,
        settings: Settings,
        backoff_seconds: float = 0.05,
        concurrency: int = 4,
    ) -> None:
        self._handlers = dict(handlers)
        self._max_attempts = settings.task_max_attempts
        self._backoff = backoff_seconds
        self._concurrency = concurrency
        self._seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self.dropped: list[str] = []

    def enqueue(self, target: str, payload: dict[str, Any], *, name: str) -> bool:
        check_target(target)
        with self._lock:
            if (target, name) in self._seen:
                return False
            self._seen.add((target, name))
        for attempt in range(self._max_attempts):
            try:
                self._handlers[target](payload, attempt)
                return True
            except RetryableError as exc:
                if attempt + 1 == self._max_attempts:
                    _log.error("dropping task %s after %d attempts: %s", name, attempt + 1, exc)
                    with self._lock:
                        self.dropped.append(name)
                    return True
                time.sleep(min(exc.retry_after_seconds or 0.0, 1.0) + self._backoff * 2**attempt)
        return True

    def enqueue_many(self, target: str, tasks: Iterable[tuple[str, dict[str, Any]]]) -> EnqueueReport:
        report = EnqueueReport()
        lock = threading.Lock()

        def one(item: tuple[str, dict[str, Any]]) -> None:
            created = self.enqueue(target, item[1], name=item[0])
            with lock:
                if created:
                    report.created += 1
                else:
                    report.already_existed += 1

        with ThreadPoolExecutor(max_workers=self._concurrency) as pool:
            list(pool.map(one, tasks))
        return report


def _retry_after_seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def inline_queue(settings: Settings, **options: Any) -> InlineQueue:
    """An in-process queue whose tasks call the analyzer and aggregator directly."""
    from functions import aggregator, analyzer
    from functions.pipeline import run_id_of

    queue: InlineQueue

    def run_analyze(payload: dict[str, Any], attempt: int) -> None:
        analyzer.analyze(payload, attempt=attempt, settings=settings, queue=queue)

    def run_aggregate(payload: dict[str, Any], attempt: int) -> None:
        aggregator.aggregate_run(run_id_of(payload))

    queue = InlineQueue({"analyze": run_analyze, "aggregate": run_aggregate}, settings=settings, **options)
    return queue


def register() -> None:
    """Make these queues the `local_http` and `inline` backends of the wiring (idempotent)."""
    from functions import wiring

    wiring.register_queue_backend(QueueBackend.LOCAL_HTTP, LocalHttpQueue)
    wiring.register_queue_backend(QueueBackend.INLINE, inline_queue)
