"""A private Postgres server under the data directory, for machines without one.

Backed by the ``pgserver`` wheel (Postgres binaries shipped on PyPI). Used when
``DATABASE_URL`` is unset (docs/design.md section 6).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from storage.errors import EmbeddedPostgresError

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """Start (or join) the embedded server living in ``<data_dir>/pg``.

    pgserver shares one server between processes using the same directory, so the CLI and a
    running ``runwright serve`` see the same data. :meth:`stop` only detaches this process;
    the last process to leave stops the server.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "pg"
        self._server: Any = None

    def start(self) -> str:
        """Start the server if needed and return a DSN for the ``postgres`` database.

        Raises:
            EmbeddedPostgresError: pgserver failed (the message says why).
        """
        try:
            with warnings.catch_warnings():
                # pgserver asks platformdirs for a runtime dir at import; without
                # XDG_RUNTIME_DIR that warns (and warnings are errors under pytest).
                warnings.simplefilter("ignore")
                import pgserver

            self.path.mkdir(parents=True, exist_ok=True)
            self._server = pgserver.get_server(self.path, cleanup_mode="stop")
        except Exception as exc:  # pgserver raises plain exceptions with its log text
            raise EmbeddedPostgresError(
                f"could not start the embedded Postgres in {self.path}: {exc}. "
                "Set DATABASE_URL to use an existing server instead."
            ) from exc
        uri: str = self._server.get_uri()
        log.info("embedded Postgres ready at %s", self.path)
        return uri

    def stop(self) -> None:
        if self._server is not None:
            try:
                self._server.cleanup()
            except Exception:  # pragma: no cover - best effort at shutdown
                log.exception("stopping the embedded Postgres failed")
            self._server = None
