"""JSON from callers: refuse nesting deeper than any body of this product before parsing it.

Python's parser recurses once per level, so a body of 20 000 `[` raises `RecursionError`
(a 500) instead of a clear 400; every route that parses a caller's JSON calls
`refuse_deep_json` first. No body this product accepts nests more than a few levels.
"""

from __future__ import annotations

import re

from shared.errors import RequestRejected

__all__ = ["MAX_JSON_DEPTH", "refuse_deep_json"]

MAX_JSON_DEPTH = 32

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def refuse_deep_json(raw: bytes) -> None:
    """Raise `RequestRejected` (400) when arrays and objects in `raw` nest deeper than `MAX_JSON_DEPTH`."""
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub(b"", raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise RequestRejected(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels")
        else:
            depth = max(0, depth - 1)
