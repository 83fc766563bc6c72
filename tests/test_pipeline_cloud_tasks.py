"""The same flow through the real google-cloud-tasks client against gcloud-tasks-emulator,
delivering to the analyzer and aggregator under functions-framework."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import pytest

from functions import dispatcher
from infra.local_stack import LocalStack, free_port
from infra.tasks_emulator import TasksEmulator
from shared.config import get_settings, reset_settings_cache
from shared.db import reset_engines
from shared.queue import CloudTasksQueue
from tests.pipeline_support import assert_books_balance, build_dataset, rows

pytestmark = pytest.mark.slow

DAY = date(2026, 11, 27)
PROJECT, REGION, QUEUE = "demo-project", "europe-west1", "time-savings-analyzer"


def test_dispatch_through_cloud_tasks_emulator(
    tmp_path: Path, analytics_url: str, analytics_engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = build_dataset(tmp_path / "webui.db", days=[DAY], chats_per_day=25)
    queue_path = f"projects/{PROJECT}/locations/{REGION}/queues/{QUEUE}"
    with TasksEmulator(queue_path, log_path=tmp_path / "emulator.log") as emulator:
        ports = {"analyze": free_port(), "aggregate": free_port()}
        environment = {
            "COGNIFORCE_DATABASE_URL": analytics_url,
            "OPENWEBUI_DATABASE_URL": data.url,
            "ANALYTICS_QUEUE_BACKEND": "cloud_tasks",
            "ANALYTICS_TASKS_EMULATOR_HOST": emulator.host,
            "ANALYTICS_GCP_PROJECT": PROJECT,
            "ANALYTICS_GCP_REGION": REGION,
            "ANALYTICS_TASKS_QUEUE": QUEUE,
            "ANALYTICS_TASKS_SERVICE_ACCOUNT": "tasks-invoker@demo-project.iam.gserviceaccount.com",
            "ANALYTICS_ANALYZER_URL": f"http://127.0.0.1:{ports['analyze']}/",
            "ANALYTICS_AGGREGATOR_URL": f"http://127.0.0.1:{ports['aggregate']}/",
        }
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        reset_settings_cache()
        reset_engines()
        with LocalStack(
            environment, log_dir=tmp_path / "logs", ports=ports, functions=("analyze", "aggregate")
        ):
            settings = get_settings()
            queue = CloudTasksQueue(settings)
            assert queue.queue_path == queue_path
            result = dispatcher.dispatch(target_date=DAY, settings=settings, queue=queue)
            assert result.enqueued == result.expected == len(data.chat_ids)
            # every task once more under the same name: the emulator keeps no tombstones and
            # delivers them again; the database must still count each conversation once
            for conversation_id in data.chat_ids:
                payload = {"run_id": str(result.run_id), "conversation_id": conversation_id, "force": False}
                queue.enqueue("analyze", payload, name=dispatcher.task_name(result.run_id, conversation_id))
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                run = rows(analytics_engine, "SELECT * FROM processing_log WHERE id = :r", r=result.run_id)[0]
                if run["status"] == "completed":
                    break
                time.sleep(0.5)
            assert run["status"] == "completed", run
        time.sleep(2)  # let the duplicate deliveries land after completion, too
    analysed = rows(analytics_engine, "SELECT conversation_id FROM conversation_analysis")
    assert sorted(a["conversation_id"] for a in analysed) == sorted(data.chat_ids)
    assert_books_balance(analytics_engine)
