"""Storage: implements :class:`scim_desktop.core.repository.Repository`.

:class:`DurableStore` is what the server uses (memory + journal + TinyDB file);
:class:`MemoryRepository` alone serves tests and anything that needs no disk.
"""

from scim_desktop.store.journal import Journal, JournalWriteError, ReadResult, read_entries
from scim_desktop.store.memory import MemoryRepository, UserNameConflict
from scim_desktop.store.tinydb_store import (
    AtomicOrjsonStorage,
    DurableStore,
    FoldPolicy,
    StoreError,
)

__all__ = [
    "AtomicOrjsonStorage",
    "DurableStore",
    "FoldPolicy",
    "Journal",
    "JournalWriteError",
    "MemoryRepository",
    "ReadResult",
    "StoreError",
    "UserNameConflict",
    "read_entries",
]
