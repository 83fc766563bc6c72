"""The chaos scenario at a size of your choosing (the suite runs it with 120 conversations).

    python bench/bench_chaos.py --count 1000

Prints conversations in, analysed, failed, duplicates absorbed and LLM calls made
against the minimum needed; exits non-zero if the books do not balance.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from infra.embedded_pg import EmbeddedPostgres  # noqa: E402
from shared.db import make_engine  # noqa: E402
from shared.migrate import apply_migrations  # noqa: E402
from tests.chaos import run_chaos  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=1000, help="conversations")
    parser.add_argument("--seed", type=int, default=3)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, EmbeddedPostgres() as postgres:
        url = postgres.url()
        engine = make_engine(url)
        apply_migrations(engine)
        engine.dispose()
        report = run_chaos(
            postgres=postgres,
            analytics_url=url,
            workdir=Path(scratch),
            count=arguments.count,
            seed=arguments.seed,
        )
    print("\n".join(report.lines()))


if __name__ == "__main__":
    main()
