"""Task queues: one interface, three backends.

* `CloudTasksQueue`: production. `google-cloud-tasks`, an HTTP target with an OIDC
  token; also targets gcloud-tasks-emulator in tests.
* `LocalHttpQueue`: local runs. Delivers to the functions served by
  functions-framework on loopback, with bounded concurrency and retries with
  backoff (honouring Retry-After), like Cloud Tasks would.
* `InlineQueue`: tests and small backfills. Calls the handlers in-process.

Every backend is at-least-once and deduplicates task names it has seen; the
database, not the name, is the real guard against double counting. A task is
addressed to a target, `analyze` or `aggregate`.
"""

from __future__ import annotations

import json
import logging
import queue as stdlib_queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests

from shared.config import QueueBackend, Settings
from shared.errors import ConfigurationError, RetryableError

__all__ = [
    "TARGETS",
    "TASK_RETRY_HEADER",
    "TASK_SECRET_HEADER",
    "CloudTasksQueue",
    "EnqueueReport",
    "InlineQueue",
    "LocalHttpQueue",
    "TaskQueue",
    "build_queue",
]

_log = logging.getLogger(__name__)

TARGETS = ("analyze", "aggregate")
TASK_SECRET_HEADER = "X-Analytics-Task-Secret"  # noqa: S105 - a header name, not a secret
TASK_RETRY_HEADER = "X-CloudTasks-TaskRetryCount"  # Cloud Tasks' own header; the local queue sends it too
_ENQUEUE_THREADS = 32  # named creates are slow (~10-30 ms); parallel creates keep 100k within minutes

Handler = Callable[[dict[str, Any], int], None]


@dataclass(slots=True)
class EnqueueReport:
    """What happened to a batch of tasks."""

    created: int = 0
    already_existed: int = 0  # a duplicate dispatch had enqueued it: counts as enqueued
    failed: list[tuple[str, str]] = field(default_factory=list)  # (task name, error)

    @property
    def enqueued(self) -> int:
        return self.created + self.already_existed


class TaskQueue(Protocol):
    def enqueue(self, target: str, payload: dict[str, Any], *, name: str) -> bool:
        """Enqueue one task; False when a task of that name already exists."""
        ...

    def enqueue_many(self, target: str, tasks: Iterable[tuple[str, dict[str, Any]]]) -> EnqueueReport:
        """Enqueue (name, payload) pairs concurrently."""
        ...


def _enqueue_concurrently(
    queue: TaskQueue, target: str, tasks: Iterable[tuple[str, dict[str, Any]]]
) -> EnqueueReport:
    report = EnqueueReport()
    lock = threading.Lock()

    def one(item: tuple[str, dict[str, Any]]) -> None:
        name, payload = item
        try:
            created = queue.enqueue(target, payload, name=name)
        except Exception as exc:  # reported per task; the dispatcher records it as a failed outcome
            _log.error("could not enqueue task %s: %s", name, exc)
            with lock:
                report.failed.append((name, f"{type(exc).__name__}: {exc}"))
            return
        with lock:
            if created:
                report.created += 1
            else:
                report.already_existed += 1

    with ThreadPoolExecutor(max_workers=_ENQUEUE_THREADS) as pool:
        list(pool.map(one, tasks))
    return report


def _check_target(target: str) -> None:
    if target not in TARGETS:
        raise ValueError(f"unknown task target {target!r}; expected one of {TARGETS}")


class CloudTasksQueue:
    """Google Cloud Tasks: HTTP target, OIDC token, named (deduplicated) tasks."""

    def __init__(self, settings: Settings, client: Any = None) -> None:
        from google.cloud import tasks_v2

        self._tasks_v2 = tasks_v2
        self._settings = settings
        if client is None:
            if settings.tasks_emulator_host:
                import grpc
                from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

                channel = grpc.insecure_channel(settings.tasks_emulator_host)
                client = tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
            else:
                client = tasks_v2.CloudTasksClient()
        self._client = client
        self._parent = client.queue_path(settings.gcp_project, settings.gcp_region, settings.tasks_queue)
        self._urls = {"analyze": settings.analyzer_url, "aggregate": settings.aggregator_url}

    @property
    def queue_path(self) -> str:
        return self._parent

    def enqueue(self, target: str, payload: dict[str, Any], *, name: str) -> bool:
        from google.api_core.exceptions import AlreadyExists
        from google.protobuf import duration_pb2

        _check_target(target)
        tasks_v2 = self._tasks_v2
        url = self._urls[target]
        headers = {"Content-Type": "application/json"}
        if self._settings.tasks_emulator_host:
            # the emulator cannot mint OIDC tokens: authenticate with the local shared secret
            headers[TASK_SECRET_HEADER] = self._settings.task_secret.get_secret_value()
        http_request = tasks_v2.HttpRequest(
            http_method=tasks_v2.HttpMethod.POST, url=url, headers=headers, body=json.dumps(payload).encode()
        )
        if self._settings.tasks_invoker_service_account:
            http_request.oidc_token = tasks_v2.OidcToken(
                service_account_email=self._settings.tasks_invoker_service_account, audience=url
            )
        task = tasks_v2.Task(
            name=f"{self._parent}/tasks/{name}",
            http_request=http_request,
            dispatch_deadline=duration_pb2.Duration(seconds=self._settings.task_deadline_seconds),
        )
        try:
            self._client.create_task(request=tasks_v2.CreateTaskRequest(parent=self._parent, task=task))
        except AlreadyExists:
            return False
        return True

    def enqueue_many(self, target: str, tasks: Iterable[tuple[str, dict[str, Any]]]) -> EnqueueReport:
        return _enqueue_concurrently(self, target, tasks)


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
        max_attempts: int | None = None,
        min_backoff: float = 0.2,
        max_backoff: float = 10.0,
        duplicate_deliveries: int = 1,
    ) -> None:
        self._urls = dict(urls or {"analyze": settings.analyzer_url, "aggregate": settings.aggregator_url})
        self._secret = settings.task_secret.get_secret_value()
        self._max_attempts = max_attempts or settings.task_max_attempts
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
        _check_target(target)
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
        max_attempts: int = 5,
        backoff_seconds: float = 0.05,
        concurrency: int = 4,
    ) -> None:
        self._handlers = dict(handlers)
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._concurrency = concurrency
        self._seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self.dropped: list[str] = []

    def enqueue(self, target: str, payload: dict[str, Any], *, name: str) -> bool:
        _check_target(target)
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


def build_queue(settings: Settings, *, handlers: Mapping[str, Handler] | None = None) -> TaskQueue:
    """The queue the settings ask for (`inline` needs the handlers)."""
    if settings.queue_backend is QueueBackend.CLOUD_TASKS:
        return CloudTasksQueue(settings)
    if settings.queue_backend is QueueBackend.LOCAL_HTTP:
        return LocalHttpQueue(settings)
    if handlers is None:
        raise ConfigurationError("the inline queue needs the function handlers")
    return InlineQueue(handlers)
