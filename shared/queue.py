"""Task queues: the interface, and the backend that is deployed.

* `CloudTasksQueue` (here): production. `google-cloud-tasks`, an HTTP target with
  an OIDC token; also targets gcloud-tasks-emulator in tests.
* `LocalHttpQueue` and `InlineQueue` live with the local tooling
  (`infra/local_queues.py`): they are never deployed. The local tooling registers
  them with `functions.wiring` before a function builds its queue.

Every backend is at-least-once and deduplicates task names it has seen; the
database, not the name, is the real guard against double counting. A task is
addressed to a target, `analyze` or `aggregate`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.config import Settings

__all__ = [
    "TARGETS",
    "TASK_RETRY_HEADER",
    "TASK_SECRET_HEADER",
    "CloudTasksQueue",
    "EnqueueReport",
    "Handler",
    "TaskQueue",
    "check_target",
    "enqueue_concurrently",
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


def enqueue_concurrently(
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


def check_target(target: str) -> None:
    if target not in TARGETS:
        raise ValueError(f"unknown task target {target!r}; expected one of {TARGETS}")


class CloudTasksQueue:
    """Google Cloud Tasks: HTTP target, OIDC token, named (deduplicated) tasks."""

    def __init__(self, settings: Settings, client: Any = None) -> None:
        # The Tasks client (gRPC, protobuf: about half a second of imports) is built on the
        # first enqueue: an analyzer enqueues only when its outcome completes a run.
        self._settings = settings
        self._client = client
        self._lock = threading.Lock()
        self._parent: str | None = None
        self._urls = {"analyze": settings.analyzer_url, "aggregate": settings.aggregator_url}

    def _connected(self) -> tuple[Any, str]:
        """The Tasks client and the queue's path, created on first use (once per process)."""
        with self._lock:
            if self._parent is None:
                from google.cloud import tasks_v2

                settings = self._settings
                if self._client is None:
                    if settings.tasks_emulator_host:
                        import grpc
                        from google.cloud.tasks_v2.services.cloud_tasks.transports import (
                            CloudTasksGrpcTransport,
                        )

                        channel = grpc.insecure_channel(settings.tasks_emulator_host)
                        self._client = tasks_v2.CloudTasksClient(
                            transport=CloudTasksGrpcTransport(channel=channel)
                        )
                    else:
                        self._client = tasks_v2.CloudTasksClient()
                self._parent = self._client.queue_path(
                    settings.gcp_project, settings.gcp_region, settings.tasks_queue
                )
            return self._client, self._parent

    @property
    def queue_path(self) -> str:
        return self._connected()[1]

    def enqueue(self, target: str, payload: dict[str, Any], *, name: str) -> bool:
        from google.api_core.exceptions import AlreadyExists
        from google.cloud import tasks_v2
        from google.protobuf import duration_pb2

        check_target(target)
        client, parent = self._connected()
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
            name=f"{parent}/tasks/{name}",
            http_request=http_request,
            dispatch_deadline=duration_pb2.Duration(seconds=self._settings.task_deadline_seconds),
        )
        try:
            client.create_task(request=tasks_v2.CreateTaskRequest(parent=parent, task=task))
        except AlreadyExists:
            return False
        return True

    def enqueue_many(self, target: str, tasks: Iterable[tuple[str, dict[str, Any]]]) -> EnqueueReport:
        return enqueue_concurrently(self, target, tasks)
