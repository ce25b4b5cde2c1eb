"""Private files and folders: the data folder 0700, the files beside the data 0600.

The data file, its journal segments, the lock, the password key and the token files hold user
details, password digests and credentials, so no other user of the computer may read them
(issue 12). New files are created 0600 from the start (``os.open`` with the mode, so there is
no moment when they are readable by others, whatever the umask); new folders are created
0700. Files and folders left by an older version (0644 / 0755) are tightened at start-up by
:func:`secure_data_folder`.

A folder is tightened only when it is the application's: created here, or holding nothing
but the data file's family (``<stem>.*``, ``<name>.*``, ``.<stem>.*``). A folder the user
chose that holds other things (their home, a project) keeps its mode; its data files are
still made private. What cannot be changed (a folder of another user, a read-only file
system) is reported once and never stops the server.

Windows has no such modes (access is decided by ACLs, private to the user under the
profile folder): everything here does nothing there.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

#: Whether POSIX permission bits mean anything here.
POSIX = os.name == "posix"
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation
#: Bits that give the group or others any access.
_OTHERS = 0o077
_warned: set[str] = set()


def _warn_once(path: Path, message: str) -> None:
    key = str(path)
    if key not in _warned:
        _warned.add(key)
        log.warning("%s", message)


def _is_mine(st: os.stat_result) -> bool:
    return st.st_uid == os.geteuid()


def _tighten(path: Path, st: os.stat_result, kind: str) -> bool:
    """Remove the group and other bits of ``path``; True when it is (now) private."""
    mode = stat.S_IMODE(st.st_mode)
    if not mode & _OTHERS:
        return True
    if not _is_mine(st):
        _warn_once(
            path,
            f"The {kind} {path} belongs to another user and is readable by others "
            f"(mode {mode:04o}); it could not be made private. Use a --db folder of your own.",
        )
        return False
    try:
        os.chmod(path, mode & ~_OTHERS)
    except OSError as exc:
        _warn_once(
            path,
            f"Could not make the {kind} {path} private (mode {mode:04o}): "
            f"{exc.strerror or exc}. Other users of this computer may read it.",
        )
        return False
    return True


def tighten_file(path: Path) -> None:
    """Make an existing file readable by its owner only (0644 -> 0600). Missing files and
    symbolic links are left alone (a link's target may be anything)."""
    _tighten_if(path, stat.S_ISREG, "file")


def tighten_dir(path: Path) -> None:
    """Make an existing folder accessible by its owner only (0755 -> 0700)."""
    _tighten_if(path, stat.S_ISDIR, "folder")


def _tighten_if(path: Path, is_kind: Callable[[int], bool], what: str) -> None:
    """:func:`_tighten` ``path`` when it exists and is of the kind (never through a link)."""
    if not POSIX:
        return
    try:
        st = os.lstat(path)
    except OSError:
        return
    if is_kind(st.st_mode):
        _tighten(Path(path), st, what)


def make_private_dir(path: Path, *, tighten_existing: bool = True) -> None:
    """Create the folder ``path`` and its missing parents, each new level 0700 (no moment
    with a wider mode); an existing ``path`` is tightened to 0700 unless
    ``tighten_existing`` is False (a folder the user chose, which may hold other things).
    Raises OSError only when the folder cannot be created."""
    path = Path(path)
    missing: list[Path] = []
    level = path
    while not level.exists() and level != level.parent:
        missing.append(level)
        level = level.parent
    for new in reversed(missing):
        # Created meanwhile (by another process): taken as it is.
        with contextlib.suppress(FileExistsError):
            new.mkdir(mode=PRIVATE_DIR_MODE)
    if not path.is_dir():
        path.mkdir()  # raises the error that says why (a file in the way, ...)
    if tighten_existing and not missing:
        tighten_dir(path)


def open_private(path: Path, flags: int) -> int:
    """``os.open(path, flags)`` (binary on Windows) creating the file 0600; an existing file
    is tightened too (a lock or a journal segment left by an older version)."""
    fd = os.open(path, flags | _O_BINARY, PRIVATE_FILE_MODE)
    if POSIX:
        try:
            st = os.fstat(fd)
            if stat.S_IMODE(st.st_mode) & _OTHERS and _is_mine(st):
                os.fchmod(fd, stat.S_IMODE(st.st_mode) & ~_OTHERS)
        except OSError:
            pass  # reported by secure_data_folder; the file is still usable
    return fd


def family_prefixes(db_path: Path) -> tuple[str, ...]:
    """Name prefixes of the files that belong to the data file ``db_path``: its journal,
    lock, corrupt and dropped copies, temporary files, and the key, token, OAuth and TLS
    files named after its stem (``scim.json`` -> ``scim.password-key``, and the temporary
    ``.scim.token.<random>.tmp`` of an atomic write)."""
    return (f"{db_path.stem}.", f"{db_path.name}.", f".{db_path.stem}.")


def _is_family(entry: str, name: str, prefixes: tuple[str, ...]) -> bool:
    return entry == name or entry.startswith(prefixes)


def secure_data_folder(db_path: Path) -> None:
    """Start-up: create the data folder 0700 when it is missing, or tighten it when it is
    the application's (see the module docstring), and make every file of the data file's
    family private. Never raises for a mode it cannot change (one warning instead)."""
    folder = Path(db_path).parent
    if not folder.exists():
        make_private_dir(folder)
        return
    if not POSIX:
        return
    prefixes = family_prefixes(Path(db_path))
    name = Path(db_path).name
    ours = True
    family: list[os.DirEntry[str]] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if _is_family(entry.name, name, prefixes):
                    family.append(entry)
                else:
                    ours = False
    except OSError as exc:
        _warn_once(folder, f"Could not list the data folder {folder}: {exc.strerror or exc}")
        return
    try:
        st = os.stat(folder)
    except OSError:
        return
    if ours and not st.st_mode & stat.S_ISVTX:  # never a shared folder like /tmp
        _tighten(folder, st, "data folder")
    elif stat.S_IMODE(st.st_mode) & _OTHERS:
        key = f"shared:{folder}"
        if key not in _warned:
            _warned.add(key)
            log.info(
                "The data folder %s holds other files, so its mode (%04o) is left as it is; "
                "the data files in it are private.",
                folder,
                stat.S_IMODE(st.st_mode),
            )
    for entry in family:
        try:
            if entry.is_symlink():
                continue
            path = Path(entry.path)
            if entry.is_dir():
                tighten_dir(path)
            elif entry.is_file():
                tighten_file(path)
        except OSError:
            continue
