"""The one wiring place: what each entry point is built from.

The pipeline's modules take their collaborators as arguments; this module builds
them once per process from the settings and hands them out:

* the task queue (`queue()`): Cloud Tasks when deployed; locally the backends the
  local tooling registers (`infra/local_queues.py`), which are never deployed;
* the estimator (`estimator()`): one per estimator configuration, built on first
  use, so only the analyzer ever imports the LLM SDK;
* the engines are `shared.db`'s process-wide ones, created on first use.

Each entry point in `main.py` imports its own function's module only when it is
first called, so the api never imports the LLM SDK nor the Tasks client.

It imports no pipeline module, so any of them may import it without a cycle.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.config import QueueBackend, Settings, get_settings
from shared.errors import ConfigurationError
from shared.queue import TaskQueue

if TYPE_CHECKING:
    from shared.estimators.base import Estimator

__all__ = ["estimator", "queue", "register_queue_backend", "reset_queue"]

QueueFactory = Callable[[Settings], TaskQueue]


def _cloud_tasks(settings: Settings) -> TaskQueue:
    from shared.queue import CloudTasksQueue

    return CloudTasksQueue(settings)


_factories: dict[QueueBackend, QueueFactory] = {QueueBackend.CLOUD_TASKS: _cloud_tasks}
_queue: TaskQueue | None = None
_lock = threading.Lock()


def register_queue_backend(backend: QueueBackend, factory: QueueFactory) -> None:
    """Local tooling adds the `local_http` and `inline` backends (see infra/local_queues.py)."""
    with _lock:
        _factories[backend] = factory


def queue(settings: Settings | None = None) -> TaskQueue:
    """The task queue of this process, built once from the settings."""
    global _queue
    settings = settings or get_settings()
    with _lock:
        if _queue is None:
            factory = _factories.get(settings.queue_backend)
            if factory is None:
                raise ConfigurationError(
                    f"ANALYTICS_QUEUE_BACKEND={settings.queue_backend} is a local queue: it exists only "
                    "with the local tooling (python main.py ...), never in a deployed function"
                )
            _queue = factory(settings)
        return _queue


def reset_queue() -> None:
    """Forget the queue of this process (tests switch settings)."""
    global _queue
    with _lock:
        _queue = None


_estimators: dict[tuple[Any, ...], Estimator] = {}


def estimator(settings: Settings | None = None) -> Estimator:
    """The estimator these settings select, one per configuration per process (it holds the
    LLM client and its rate limiter)."""
    from shared.estimators import build_estimator

    settings = settings or get_settings()
    key = (
        settings.effective_estimator,
        settings.openai_model,
        settings.openai_base_url,
        settings.llm_rpm,
        settings.digest_mode,
    )
    with _lock:
        if key not in _estimators:
            _estimators[key] = build_estimator(settings)
        return _estimators[key]
