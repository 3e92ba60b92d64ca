"""A real PostgreSQL + pgvector for the test suite, started once per process.

``LOOKALIKE_PG_URL`` points the suite at a server of your own (it must have pgvector). Otherwise
``pgserver`` (PyPI; PostgreSQL 16.2 + pgvector 0.6.2) starts one in a temporary folder that is deleted
at exit. As root, pgserver runs PostgreSQL as its own ``pgserver`` system user; the folder is made
traversable for it.
"""

from __future__ import annotations

import atexit
import os
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

_lock = threading.Lock()
_state: dict[str, Any] = {}


def postgres_url() -> str | None:
    """A ``postgresql://`` URL for the suite, or None when pgserver is not installed."""
    env = os.environ.get("LOOKALIKE_PG_URL")
    if env:
        return env
    server = pg_server()
    return None if server is None else server.get_uri()


def pg_server() -> Any:
    """The suite's pgserver handle (None when pgserver is missing or ``LOOKALIKE_PG_URL`` is set)."""
    if os.environ.get("LOOKALIKE_PG_URL"):
        return None
    with _lock:
        if "server" in _state:
            return _state["server"]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
                import pgserver
        except ImportError:
            _state["server"] = None
            return None
        # a short path: the server's Unix socket lives in it and socket paths are limited to ~100 bytes
        base = Path(tempfile.mkdtemp(prefix="lkpg-", dir="/tmp" if os.path.isdir("/tmp") else None))
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            base.chmod(0o755)  # pgserver's own user must reach the data folder below it
        # registered first so it runs last (atexit is LIFO): after pgserver has stopped the server
        atexit.register(_remove, base)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = pgserver.get_server(base / "data", cleanup_mode="delete")
        _state["server"] = server
        _state["base"] = base
        return server


def _remove(base: Path) -> None:
    import shutil

    shutil.rmtree(base, ignore_errors=True)


def pg_data_dir() -> Path | None:
    """The data folder of the suite's own server (None for an external one)."""
    server = pg_server()
    return None if server is None else Path(server.pgdata)
