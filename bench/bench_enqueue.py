"""How fast can the dispatcher enqueue? Tasks per second for the local queue and Cloud Tasks (emulator).

Both are compared, in the same run, with a baseline that does the least possible
work for the same tasks, and the ratio is printed:

* local HTTP queue: `LocalHttpQueue.enqueue_many` of N named tasks (deduplication,
  JSON encoding, hand-off to the delivery workers) vs. a bare `queue.Queue.put`
  loop of the same payloads (the floor); then delivery of every task to a trivial
  loopback HTTP sink that answers 204, in deliveries per second;
* Cloud Tasks: `CloudTasksQueue.enqueue_many` (typed requests, 32 parallel
  creates) against gcloud-tasks-emulator vs. the same client creating the tasks one
  after the other (the sequential baseline).

    python bench/bench_enqueue.py                    # 100 000 local, 100 000 emulator tasks
    python bench/bench_enqueue.py --emulator-count 10000
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from functions.dispatcher import task_name  # noqa: E402
from infra.local_queues import LocalHttpQueue  # noqa: E402
from infra.tasks_emulator import TasksEmulator  # noqa: E402
from shared.config import Settings  # noqa: E402
from shared.queue import CloudTasksQueue  # noqa: E402


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def _tasks(count: int) -> list[tuple[str, dict[str, object]]]:
    run_id = uuid.uuid4()
    return [
        (
            task_name(run_id, f"chat-{i}"),
            {"run_id": str(run_id), "conversation_id": f"chat-{i}", "force": False},
        )
        for i in range(count)
    ]


def bench_local(count: int) -> None:
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{sink.server_address[1]}/"
    tasks = _tasks(count)

    floor_queue: queue.Queue[bytes] = queue.Queue()
    started = time.perf_counter()
    for _name, payload in tasks:
        floor_queue.put(json.dumps(payload).encode())
    floor = count / (time.perf_counter() - started)

    local = LocalHttpQueue(Settings(), urls={"analyze": url, "aggregate": url}, concurrency=8)
    started = time.perf_counter()
    local.enqueue_many("analyze", tasks)
    enqueued_at = time.perf_counter()
    local.join()
    delivered_at = time.perf_counter()
    sink.shutdown()
    enqueue_rate = count / (enqueued_at - started)
    print(
        f"local queue   enqueue   {enqueue_rate:>10,.0f} tasks/s   floor (Queue.put) {floor:>10,.0f}/s   ratio {enqueue_rate / floor:.2f}"
    )
    print(
        f"local queue   delivery  {count / (delivered_at - started):>10,.0f} tasks/s to a loopback sink ({local.delivered:,} delivered, {len(local.dropped)} dropped)"
    )


def bench_emulator(count: int, baseline_count: int) -> None:
    project, region, name = "bench", "europe-west1", "bench-queue"
    with tempfile.TemporaryDirectory() as scratch:
        path = f"projects/{project}/locations/{region}/queues/{name}"
        with TasksEmulator(path, log_path=Path(scratch) / "emulator.log") as emulator:
            settings = Settings(
                queue_backend="cloud_tasks",
                tasks_emulator_host=emulator.host,
                gcp_project=project,
                gcp_region=region,
                tasks_queue=name,
                # an unreachable target: the bench measures creation, not delivery
                analyzer_url="http://127.0.0.1:9/",
                aggregator_url="http://127.0.0.1:9/",
            )
            cloud = CloudTasksQueue(settings)
            sequential_tasks = _tasks(baseline_count)
            started = time.perf_counter()
            for task, payload in sequential_tasks:
                cloud.enqueue("analyze", payload, name=task)
            sequential = baseline_count / (time.perf_counter() - started)

            tasks = _tasks(count)
            started = time.perf_counter()
            report = cloud.enqueue_many("analyze", tasks)
            elapsed = time.perf_counter() - started
    rate = count / elapsed
    print(
        f"cloud tasks   enqueue   {rate:>10,.0f} tasks/s   sequential creates {sequential:>10,.0f}/s   ratio {rate / sequential:.2f}"
    )
    print(
        f"cloud tasks   {report.created:,} created, {report.already_existed} already existed, {len(report.failed)} failed, {elapsed:.1f} s for {count:,}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--local-count", type=int, default=100_000)
    parser.add_argument("--emulator-count", type=int, default=100_000)
    parser.add_argument(
        "--baseline-count", type=int, default=2_000, help="sequential creates for the baseline"
    )
    arguments = parser.parse_args()
    bench_local(arguments.local_count)
    bench_emulator(arguments.emulator_count, arguments.baseline_count)


if __name__ == "__main__":
    main()
