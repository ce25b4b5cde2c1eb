"""One process per data file: an advisory lock on ``<db>.lock`` beside the database.

Two servers writing the same journal and TinyDB file would corrupt each other's view, so the
second one is refused with a clear message instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO

from scim_desktop.store.private import make_private_dir, open_private


class DataFileInUse(RuntimeError):
    pass


class DataFileLock:
    def __init__(self, db_path: Path) -> None:
        self.path = db_path.with_name(db_path.name + ".lock")
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`DataFileInUse`. Released by :meth:`release` or when
        the process ends (also on a crash: the OS drops advisory locks)."""
        make_private_dir(self.path.parent, tighten_existing=False)
        # 0600 like every file beside the data (it names the process that holds the data).
        fd = open_private(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
        fh = open(fd, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        try:
            if sys.platform == "win32":
                import msvcrt

                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            db = self.path.with_name(self.path.name.removesuffix(".lock"))
            raise DataFileInUse(
                f"Another SCIM Desktop is already using the data file {db}; stop it, or start "
                f"this one with another --db."
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()  # closing drops the lock
            self._fh = None
