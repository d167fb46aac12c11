"""Storage errors. All are :class:`rgpt2.errors.RGPT2Error`: their messages are for people."""

from __future__ import annotations

from rgpt2.errors import RGPT2Error


class StorageError(RGPT2Error):
    """Something wrong with the database file or its use."""


class MigrationError(StorageError):
    """A migration file that is misnamed, misnumbered or fails; the database is unchanged."""


class DatabaseTooNew(StorageError):
    """The database was migrated by a newer rgpt2 than this one."""


class NotFound(StorageError):
    """The row an operation needs (a verse, a battle, a job) does not exist."""


class DuplicateLyrics(StorageError):
    """These lyrics were already contributed (same normalised text)."""

    def __init__(self, message: str, existing_id: int) -> None:
        super().__init__(message)
        self.existing_id = existing_id


class JobAlreadyActive(StorageError):
    """A fine-tune job is already queued or running: one at a time."""

    def __init__(self, message: str, active_id: int) -> None:
        super().__init__(message)
        self.active_id = active_id
