"""Typed storage errors; the driver's original exception is kept as ``__cause__``."""


class StorageError(Exception):
    """Base class for every error raised by the storage layer."""


class DatabaseUnavailable(StorageError):
    """The database could not be reached, refused the connection or dropped it mid-query."""


class StatementRefused(StorageError):
    """Postgres refused the statement for the data it carries or for its form (SQLSTATE
    classes 22, 23, 42, 54, or a parameter the driver could not encode): sent again
    unchanged it fails again, so it must not be retried."""

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or type(self).__name__


class UniqueViolation(StatementRefused):
    """An insert or update collided with a unique constraint (e.g. an app slug)."""

    def __init__(self, message: str, *, constraint: str | None = None) -> None:
        super().__init__(message, reason="UniqueViolationError")
        self.constraint = constraint


class ForeignKeyViolation(StatementRefused):
    """A referenced row does not exist."""


class MigrationError(StorageError):
    """A migration file failed to apply; nothing of it was committed."""


class EmbeddedPostgresError(StorageError):
    """The embedded Postgres server could not be started or stopped."""
