"""Cold start: what each Cloud Function imports before it can answer its first request.

For each of the four entry points, a fresh interpreter imports `main.py` and then
the modules that entry point imports before it answers its first request in
production (the api its app; dispatch its module and the Cloud Tasks client it
enqueues with; analyze its module and the LLM estimator, which imports the openai
SDK; aggregate its module). The analyzer builds the Tasks client only when its
outcome completes a run, so that import is not on its way to a first answer.
It reports the import time (inside the process, interpreter start-up excluded)
and the peak RSS, the median of `--runs` fresh processes, next to two floors:

* the base floor: functions-framework, Flask, SQLAlchemy, pg8000 and pydantic
  imported alone, the dependencies no entry point can do without;
* the entry point's own floor: the base plus the third-party SDK that entry point
  cannot answer without (dispatch: google-cloud-tasks; analyze: openai), so the
  ratio measures what our code adds, not the size of a vendor's SDK.

    python bench/bench_cold_start.py                      # this checkout, 7 runs each
    python bench/bench_cold_start.py --source ../other    # another checkout (before/after)

Exit status 0 when the api is within `--goal` (1.3) times the floor in CPU time and
peak RSS, and the pipeline functions within `--pipeline-goal` (2) times their own floor in CPU time (wall time is printed too; on a shared machine it also measures the neighbours).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

FLOOR = ("functions_framework", "flask", "sqlalchemy", "pg8000", "pydantic")
# what each entry point imports on its way to answering in production
ENTRY_POINTS: dict[str, tuple[str, ...]] = {
    "api": ("functions.api",),
    "dispatch": ("functions.pipeline", "functions.dispatcher", "google.cloud.tasks_v2"),
    "analyze": ("functions.pipeline", "functions.analyzer", "shared.estimators.llm"),
    "aggregate": ("functions.pipeline", "functions.aggregator"),
}
# the third-party SDK beyond the base floor that an entry point cannot answer without
OWN_FLOOR: dict[str, tuple[str, ...]] = {
    "api": (),
    "dispatch": ("google.cloud.tasks_v2",),
    "analyze": ("openai",),
    "aggregate": (),
}

_PROBE = """
import importlib, json, resource, sys, time
modules = sys.argv[1:]
start, cpu = time.perf_counter(), time.process_time()
for name in modules:
    importlib.import_module(name)
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "openai": "openai" in sys.modules, "tasks": "google.cloud.tasks_v2" in sys.modules}))
"""


def _measure(source: Path, modules: tuple[str, ...], runs: int) -> dict[str, float | bool]:
    samples = []
    for run in range(runs + 1):  # the first run compiles bytecode; it is not counted
        output = subprocess.run(
            [sys.executable, "-c", _PROBE, *modules],
            cwd=source,
            env={"PYTHONPATH": str(source), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        if run:
            samples.append(json.loads(output))
    return {
        "seconds": statistics.median(s["seconds"] for s in samples),
        "cpu_seconds": statistics.median(s["cpu_seconds"] for s in samples),
        "rss_mb": statistics.median(s["rss_mb"] for s in samples),
        "openai": samples[0]["openai"],
        "tasks": samples[0]["tasks"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", type=Path, default=REPO_ROOT, help="checkout whose main.py to measure")
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per figure (median)")
    parser.add_argument("--goal", type=float, default=1.3, help="api / floor ratio to pass")
    parser.add_argument("--pipeline-goal", type=float, default=2.0, help="pipeline / own floor ratio to pass")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    arguments = parser.parse_args()
    source = arguments.source.resolve()

    floor = _measure(source, FLOOR, arguments.runs)
    own_floors = {
        extra: _measure(source, (*FLOOR, *extra), arguments.runs)
        for extra in set(OWN_FLOOR.values())
        if extra
    }
    # "main" first, as functions-framework loads it; then what the entry point uses
    figures = {
        name: _measure(source, ("main", *modules), arguments.runs) for name, modules in ENTRY_POINTS.items()
    }
    results: dict[str, dict[str, float | bool]] = {"floor": floor}
    for name, values in figures.items():
        own = own_floors.get(OWN_FLOOR[name], floor)
        results[name] = {
            **values,
            "time_ratio": float(values["seconds"]) / float(floor["seconds"]),
            "cpu_ratio": float(values["cpu_seconds"]) / float(floor["cpu_seconds"]),
            "rss_ratio": float(values["rss_mb"]) / float(floor["rss_mb"]),
            "own_floor_cpu_seconds": own["cpu_seconds"],
            "own_cpu_ratio": float(values["cpu_seconds"]) / float(own["cpu_seconds"]),
            "own_rss_ratio": float(values["rss_mb"]) / float(own["rss_mb"]),
        }
    if arguments.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"source {source}, median of {arguments.runs} fresh processes")
        print(
            f"{'':10} {'import s':>9} {'CPU s':>7} {'peak RSS MB':>12} "
            f"{'time ×floor':>12} {'CPU ×floor':>11} {'RSS ×floor':>11} "
            f"{'own floor CPU s':>16} {'CPU ×own':>9} {'RSS ×own':>9}  imports"
        )
        print(
            f"{'floor':10} {floor['seconds']:9.3f} {floor['cpu_seconds']:7.3f} {floor['rss_mb']:12.1f} "
            f"{'1.00':>12} {'1.00':>11} {'1.00':>11} {floor['cpu_seconds']:16.3f} {'1.00':>9} {'1.00':>9}  "
            f"{'+'.join(FLOOR)}"
        )
        for name, values in results.items():
            if name == "floor":
                continue
            extras = [label for label, key in (("openai", "openai"), ("Cloud Tasks", "tasks")) if values[key]]
            print(
                f"{name:10} {values['seconds']:9.3f} {values['cpu_seconds']:7.3f} {values['rss_mb']:12.1f} "
                f"{values['time_ratio']:12.2f} {values['cpu_ratio']:11.2f} {values['rss_ratio']:11.2f} "
                f"{values['own_floor_cpu_seconds']:16.3f} {values['own_cpu_ratio']:9.2f} "
                f"{values['own_rss_ratio']:9.2f}  {', '.join(extras) or '-'}"
            )
    api = results["api"]
    # CPU time, not wall time, decides: on a shared machine wall time also measures the neighbours
    ok = float(api["cpu_ratio"]) <= arguments.goal and float(api["rss_ratio"]) <= arguments.goal
    pipeline_ok = all(
        float(results[name]["own_cpu_ratio"]) <= arguments.pipeline_goal
        for name in ("dispatch", "analyze", "aggregate")
    )
    if not arguments.json:
        print(f"api within {arguments.goal}× the floor: {'yes' if ok else 'no'}")
        print(
            f"dispatch, analyze, aggregate within {arguments.pipeline_goal}× their own floor: "
            f"{'yes' if pipeline_ok else 'no'}"
        )
    return 0 if ok and pipeline_ok else 1


if __name__ == "__main__":
    sys.exit(main())
