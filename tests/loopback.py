"""A WSGI app served on a free loopback port, for tests that need real HTTP (browser, schemathesis)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import make_server

__all__ = ["serve_wsgi"]


@contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """Serve `app` in a background thread; yields its base URL and stops it afterwards."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
