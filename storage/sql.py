"""Named SQL queries loaded once from ``storage/queries/*.sql``.

A file holds several statements, each introduced by a ``-- name: <query_name>`` line. The
registry is built at import time and never formats SQL from Python values: every value goes
through asyncpg parameters ($1, $2, ...).
"""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def _load() -> dict[str, str]:
    queries: dict[str, str] = {}
    for entry in sorted(resources.files("storage").joinpath("queries").iterdir(), key=str):
        if not entry.name.endswith(".sql"):
            continue
        text = entry.read_text(encoding="utf-8")
        parts = _NAME.split(text)
        # parts = [preamble, name1, body1, name2, body2, ...]
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if name in queries:
                raise RuntimeError(f"duplicate query name {name!r} in {entry.name}")
            queries[name] = body.strip()
    return queries


QUERIES: dict[str, str] = _load()


def q(name: str) -> str:
    """Return the SQL text of the named query.

    Raises:
        KeyError: no query of that name exists.
    """
    return QUERIES[name]
