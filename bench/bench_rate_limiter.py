"""Does the LLM rate limit hold when many callers estimate at once?

Starts the fake OpenAI-compatible server, then runs `--calls` estimates at the same
time (one thread each) through one `LlmEstimator` limited to `--rpm`, and reports
the request rate the server actually saw: achieved RPM = (requests - 1) / (last
arrival - first arrival) × 60, and whether it is within ±10 % of the set RPM.

    python bench/bench_rate_limiter.py                        # 200 calls at 600 RPM, ~20 s
    python bench/bench_rate_limiter.py --rpm 60 --calls 200   # the issue's figure, ~3.5 min

Exit status 0 when within ±10 %, 1 otherwise.
"""

from __future__ import annotations

import argparse
import bisect
import sys
import threading
import time
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from shared.config import Settings  # noqa: E402
from shared.conversation import DigestFeatures, TranscriptDigest  # noqa: E402
from shared.estimators.llm import LlmEstimator  # noqa: E402
from tests.fake_openai import FakeOpenAIServer  # noqa: E402

TOLERANCE = 0.10


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rpm", type=int, default=600, help="requests per minute to hold (issue: 60)")
    parser.add_argument("--calls", type=int, default=200, help="concurrent estimates, one thread each")
    parser.add_argument(
        "--latency", type=float, default=0.05, help="fake server latency per request, seconds"
    )
    return parser.parse_args()


def _busiest_window(arrivals: list[float], window: float) -> int:
    """Most requests that arrived within any `window` seconds."""
    return max(bisect.bisect_left(arrivals, start + window) - index for index, start in enumerate(arrivals))


def main() -> int:
    arguments = _arguments()
    digest = TranscriptDigest(
        text="[user] Summarise the attached quarterly report in five bullet points.",
        features=DigestFeatures(user_turns=1, assistant_turns=1, user_words=12, assistant_words=150),
        approx_tokens=40,
    )
    outcomes: Counter[str] = Counter()
    outcomes_lock = threading.Lock()

    with FakeOpenAIServer(latency=arguments.latency) as server:
        settings = Settings(
            openai_base_url=server.base_url,
            openai_api_key="bench",
            llm_rpm=arguments.rpm,
            llm_timeout_seconds=30,
        )
        estimator = LlmEstimator(settings)
        start = threading.Barrier(arguments.calls + 1)

        def call() -> None:
            start.wait()
            try:
                estimator.estimate(digest)
                outcome = "ok"
            except Exception as error:  # a benchmark reports failures instead of stopping
                outcome = type(error).__name__
            with outcomes_lock:
                outcomes[outcome] += 1

        threads = [threading.Thread(target=call, daemon=True) for _ in range(arguments.calls)]
        for thread in threads:
            thread.start()
        print(f"{arguments.calls} concurrent calls at {arguments.rpm} RPM "
              f"(expected ≈ {(arguments.calls - 1) * 60 / arguments.rpm:.0f} s) ...", flush=True)  # fmt: skip
        started = time.monotonic()
        start.wait()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        arrivals = sorted(server.arrival_times)

    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
    achieved = (len(arrivals) - 1) / span * 60 if span > 0 else float("inf")
    ratio = achieved / arguments.rpm
    within = abs(ratio - 1) <= TOLERANCE
    print(f"outcomes:            {dict(outcomes)}")
    print(f"requests seen:       {len(arrivals)} in {span:.2f} s (wall clock {elapsed:.2f} s)")
    print(f"set RPM:             {arguments.rpm}")
    print(f"achieved RPM:        {achieved:.2f}")
    print(f"ratio:               {ratio:.4f}")
    print(
        f"busiest 1 s window:  {_busiest_window(arrivals, 1.0)} requests (set rate: {arguments.rpm / 60:g} per s)"
    )
    if span >= 60:
        print(f"busiest 60 s window: {_busiest_window(arrivals, 60.0)} requests (set rate: {arguments.rpm})")
    verdict = "WITHIN" if within else "OUTSIDE"
    print(f"result:              {verdict} ±{TOLERANCE:.0%} of the set RPM")
    return 0 if within and outcomes["ok"] == arguments.calls else 1


if __name__ == "__main__":
    sys.exit(main())
