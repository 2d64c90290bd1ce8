"""Typed storage errors; the driver's original exception is kept as ``__cause__``."""


class StorageError(Exception):
    """Base class for every error raised by the storage layer."""


class DatabaseUnavailable(StorageError):
    """The database could not be reached or refused the connection."""


class UniqueViolation(StorageError):
    """An insert or update collided with a unique constraint (e.g. an app slug)."""


class ForeignKeyViolation(StorageError):
    """A referenced row does not exist."""


class MigrationError(StorageError):
    """A migration file failed to apply; nothing of it was committed."""


class EmbeddedPostgresError(StorageError):
    """The embedded Postgres server could not be started or stopped."""
