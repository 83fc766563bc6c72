"""The source the local stack serves: the deployed entry points plus the local queues.

`functions-framework --source=infra/local_functions.py --target=api` serves
exactly the functions of `main.py`; importing this module first registers the
local HTTP and inline queues with `functions.wiring` (they are local tooling,
never deployed).
"""

from __future__ import annotations

from infra import local_queues

local_queues.register()

from main import aggregate, analyze, api, dispatch  # noqa: E402

__all__ = ["aggregate", "analyze", "api", "dispatch"]
