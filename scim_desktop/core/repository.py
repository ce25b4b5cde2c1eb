"""The storage interface the SCIM core needs; ``scim_desktop.store`` implements it.

Records are plain dicts: the SCIM resource as stored, plus internal keys that start with an
underscore and are never sent to clients:

- ``_seq`` (int): a creation sequence number, unique and increasing across all resource types
  and restarts. Listing order (and so paging and cursors) is ascending ``_seq``.
- ``_password`` (str, Users only): the salted hash of the password.

Stored records are immutable by convention: callers never change a dict they got from the
repository; an update stores a new dict with :meth:`Repository.put`. That is what lets the
store hand a cheap shallow snapshot to its background writer.

Every method is called on the server's IOLoop thread only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

Record = dict[str, Any]

#: Resource type names, as in ``meta.resourceType``.
USER = "User"
GROUP = "Group"


class Repository(Protocol):
    # --- reads: answered from memory, in time proportional to the answer --------------------
    def get(self, rtype: str, id: str) -> Record | None:
        """The record with this id, or None."""
        ...

    def ordered(self, rtype: str) -> Sequence[Record]:
        """All records of a type in ascending ``_seq`` order. Read-only; O(1) to obtain
        (amortised), so that a page is a slice. Valid until the next write."""
        ...

    def count(self, rtype: str) -> int: ...

    def find_user_by_username(self, user_name: str) -> Record | None:
        """The user whose userName equals ``user_name`` ignoring case (RFC 7643: caseExact
        false), or None."""
        ...

    def find_by_external_id(self, rtype: str, external_id: str) -> list[Record]:
        """Records whose externalId equals ``external_id`` exactly (caseExact true)."""
        ...

    def find_groups_by_display_name(self, display_name: str) -> list[Record]:
        """Groups whose displayName equals ``display_name`` ignoring case."""
        ...

    def groups_of(self, member_id: str) -> list[Record]:
        """Groups that list ``member_id`` as a direct member, in ``_seq`` order."""
        ...

    @property
    def group_writes(self) -> int:
        """A number that changes with every write that can change a user's derived
        ``groups`` (any group put or delete, clear). Lets renderings be reused safely."""
        ...

    def next_seq(self) -> int:
        """Reserve the next creation sequence number."""
        ...

    # --- writes: applied in memory at once, made durable by the store's commit ---------------
    def put(self, rtype: str, record: Record) -> None:
        """Insert or replace the record with ``record["id"]``."""
        ...

    def delete(self, rtype: str, id: str) -> None:
        """Remove the record with this id (no error when absent)."""
        ...

    def clear(self) -> None:
        """Remove every record of every type."""
        ...
