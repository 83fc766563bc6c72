"""What does recognising the national phone formats of many regions cost?

Redacts about `--kb` kB of each of three kinds of text — chat prose with planted
personal data and look-alikes, a pasted log (a timestamp, ids and durations on every
line: the worst case, every line holds digit runs) and plain prose — once with the
phone region `HU` only (what the redaction asked before `ANALYTICS_PII_REGIONS`)
and once with the default regions, and prints the time per 100 kB. Every number in
the generated text is fresh, so the per-run cache does not help; the cache is
cleared before each measurement, and the best of `--repeat` runs is reported.

    python bench/bench_redaction.py            # 100 kB of each kind, best of 3
    python bench/bench_redaction.py --kb 1000
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from shared import redaction  # noqa: E402
from shared.redaction import DEFAULT_PII_REGIONS, redact_counts  # noqa: E402
from tests.data.pii_corpus import LOOKALIKES, PLANTED  # noqa: E402

_WORDS = [
    "the",
    "report",
    "needs",
    "a",
    "second",
    "pass",
    "before",
    "we",
    "send",
    "it",
    "to",
    "the",
    "client",
    "and",
    "the",
    "numbers",
    "in",
    "the",
    "appendix",
    "should",
    "match",
    "the",
    "summary",
    "table",
    "please",
    "check",
    "the",
    "totals",
    "and",
    "the",
    "wording",
]


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kb", type=int, default=100, help="kilobytes of each kind of text")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best is kept")
    return parser.parse_args()


def _fresh_digits(rng: random.Random, text: str) -> str:
    return "".join(str(rng.randrange(10)) if char.isdigit() else char for char in text)


def _chat(rng: random.Random, size: int) -> str:
    sentences = [case.sentence for case in PLANTED] + list(LOOKALIKES)
    parts: list[str] = []
    total = 0
    while total < size:
        sentence = _fresh_digits(rng, rng.choice(sentences)) if rng.random() < 0.5 else rng.choice(sentences)
        parts.append(sentence + " " + " ".join(rng.choices(_WORDS, k=20)))
        total += len(parts[-1]) + 1
    return "\n".join(parts)


def _log(rng: random.Random, size: int) -> str:
    lines: list[str] = []
    total = 0
    while total < size:
        line = (
            f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:"
            f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d} INFO "
            f"request {rng.randint(10**8, 10**10)} user {rng.randint(1000, 99999)} took "
            f"{rng.randint(1, 5000)} ms, bytes={rng.randint(100, 99_999_999)}, trace {rng.randint(10**6, 10**9)}"
        )
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines)


def _prose(rng: random.Random, size: int) -> str:
    words: list[str] = []
    total = 0
    while total < size:
        words.append(rng.choice(_WORDS) if rng.random() > 0.01 else str(rng.randint(1, 2026)))
        total += len(words[-1]) + 1
    return " ".join(words)


def _best(function: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        redaction._phone_spans_in.cache_clear()
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> int:
    arguments = _arguments()
    size = arguments.kb * 1000
    rng = random.Random(12)
    texts = {
        "chat with PII": _chat(rng, size),
        "pasted log": _log(rng, size),
        "plain prose": _prose(rng, size),
    }
    print(f"regions: HU only vs the default {len(DEFAULT_PII_REGIONS)} ({','.join(DEFAULT_PII_REGIONS)})")
    print(f"{'text':<16}{'HU only':>16}{'default':>16}{'ratio':>8}   phones found HU / default")
    for name, text in texts.items():
        per_100kb = 100_000 / len(text)
        hungarian = _best(lambda text=text: redact_counts(text, ["HU"]), arguments.repeat) * per_100kb
        default = _best(lambda text=text: redact_counts(text), arguments.repeat) * per_100kb
        found = (
            redact_counts(text, ["HU"]).counts.get("phone", 0),
            redact_counts(text).counts.get("phone", 0),
        )
        print(
            f"{name:<16}{hungarian * 1000:>10.1f} ms/100kB{default * 1000:>7.1f} ms/100kB"
            f"{default / hungarian:>7.2f}×   {found[0]} / {found[1]}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
