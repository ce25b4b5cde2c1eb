"""What goes into the PyInstaller bundle, and what is left to the operating system.

Used by ``scim-desktop.spec`` (to prune the bundle) and by ``build.py`` (to work out the
.deb's ``Depends`` and to check that the pruned bundle is complete).

The app uses QtCore, QtGui, QtWidgets and, through the SVG window icon, QtSvg (loaded by the
``svgicon`` and ``svg`` plugins). PyInstaller's Qt hooks collect every plugin of every type
a module *might* use (Wayland, EGL, evdev, VNC, GTK 3 theme, TLS, network information, ...),
plus whatever those plugins link to. We keep a short allow-list of plugins, drop the Qt
translations (the app is English only), and on Linux keep only the libraries reachable from
the Python extension modules and the kept plugins.

On Linux the libraries of the desktop platform itself (X11/xcb, xkbcommon, OpenGL/EGL,
fontconfig/freetype, GLib, D-Bus, the C++ runtime, zlib/zstd) are never bundled: they must
match the running X server, font configuration and GPU driver, and a bundled libstdc++ that
is older than the system's breaks drivers loaded later. They come from the system (the .deb
declares them in ``Depends``; the README lists them for the tar.gz).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from pathlib import PurePosixPath

# Qt plugins kept, by file name without "lib" prefix and extension, for all three systems.
KEEP_PLUGINS: frozenset[str] = frozenset(
    {
        # platforms: X11, Windows, macOS, plus offscreen (self-test, screenshots) and minimal
        "qxcb",
        "qwindows",
        "qcocoa",
        "qoffscreen",
        "qminimal",
        # the desktop portal theme (native file dialogs under Flatpak/portals); needs D-Bus only
        "qxdgdesktopportal",
        # dead keys / compose sequences and IBus input methods: typing names with accents
        "composeplatforminputcontextplugin",
        "ibusplatforminputcontextplugin",
        # the SVG window icon, and .ico for Windows
        "qsvgicon",
        "qsvg",
        "qico",
    }
)
# Plugin types kept whole (small; the native widget styles on Windows and macOS).
KEEP_PLUGIN_TYPES: frozenset[str] = frozenset({"styles"})

# Linux: sonames provided by the system, never bundled; each with the Debian package that
# provides it (Debian 12 / Ubuntu 22.04+ names). ``build.py`` asks dpkg first and uses this
# table only for libraries that are not installed on the build machine.
SYSTEM_LIBS: dict[str, str] = {
    "libc.so.6": "libc6",
    "libm.so.6": "libc6",
    "libdl.so.2": "libc6",
    "libpthread.so.0": "libc6",
    "librt.so.1": "libc6",
    "libutil.so.1": "libc6",
    "ld-linux-x86-64.so.2": "libc6",
    "libstdc++.so.6": "libstdc++6",
    "libgcc_s.so.1": "libgcc-s1",
    "libz.so.1": "zlib1g",
    "libzstd.so.1": "libzstd1",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libgobject-2.0.so.0": "libglib2.0-0",
    "libgio-2.0.so.0": "libglib2.0-0",
    "libgmodule-2.0.so.0": "libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libexpat.so.1": "libexpat1",
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libOpenGL.so.0": "libopengl0",
    "libGLX.so.0": "libglx0",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-glx.so.0": "libxcb-glx0",
}

PLUGIN_PREFIX = "PySide6/Qt/plugins/"
TRANSLATIONS_PREFIX = "PySide6/Qt/translations/"

TocEntry = tuple[str, str, str]  # (destination name, source path, type code)


def _posix(name: str) -> str:
    return name.replace("\\", "/")


def plugin_kept(dest_name: str) -> bool:
    """Whether a Qt plugin (by its destination path in the bundle) stays in the bundle."""
    parts = PurePosixPath(_posix(dest_name)).parts
    plugin_type = parts[-2] if len(parts) >= 2 else ""
    if plugin_type in KEEP_PLUGIN_TYPES:
        return True
    stem = parts[-1].split(".")[0]
    stem = re.sub(r"^lib", "", stem)
    return stem in KEEP_PLUGINS


def is_plugin(dest_name: str) -> bool:
    return _posix(dest_name).startswith(PLUGIN_PREFIX)


def prune_qt_files(binaries: Iterable[TocEntry], datas: Iterable[TocEntry]) -> tuple[list, list]:
    """Drop the Qt plugins not in the allow-list and the Qt translations (all systems)."""
    kept_binaries = [e for e in binaries if not is_plugin(e[0]) or plugin_kept(e[0])]
    kept_datas = [
        e
        for e in datas
        if not _posix(e[0]).startswith(TRANSLATIONS_PREFIX)
        and (not is_plugin(e[0]) or plugin_kept(e[0]))
    ]
    return kept_binaries, kept_datas


def elf_needed(path: str) -> list[str]:
    """The DT_NEEDED sonames of an ELF file (via objdump, which PyInstaller needs anyway)."""
    out = subprocess.run(["objdump", "-p", path], capture_output=True, text=True, check=True).stdout
    return re.findall(r"^\s*NEEDED\s+(\S+)\s*$", out, re.MULTILINE)


def prune_linux_libraries(binaries: list[TocEntry]) -> tuple[list[TocEntry], list[str]]:
    """Linux: drop system libraries, then keep only libraries reachable from the roots (the
    Python extension modules, libpython, the kept plugins). Returns the kept entries and the
    names of the dropped ones."""
    by_soname: dict[str, TocEntry] = {}
    for entry in binaries:
        if entry[2] in ("BINARY", "EXTENSION"):
            by_soname.setdefault(PurePosixPath(entry[0]).name, entry)

    def is_root(entry: TocEntry) -> bool:
        name = PurePosixPath(entry[0]).name
        return entry[2] == "EXTENSION" or name.startswith("libpython") or is_plugin(entry[0])

    keep: set[str] = set()  # destination names
    todo = [e for e in binaries if e[2] in ("BINARY", "EXTENSION") and is_root(e)]
    while todo:
        entry = todo.pop()
        if entry[0] in keep or PurePosixPath(entry[0]).name in SYSTEM_LIBS:
            continue
        keep.add(entry[0])
        for soname in elf_needed(entry[1]):
            dep = by_soname.get(soname)
            if dep is not None and soname not in SYSTEM_LIBS and dep[0] not in keep:
                todo.append(dep)

    kept: list[TocEntry] = []
    dropped: list[str] = []
    for entry in binaries:
        if entry[2] not in ("BINARY", "EXTENSION") or entry[0] in keep:
            kept.append(entry)
        else:
            dropped.append(entry[0])
    return kept, dropped


def drop_dangling_symlinks(datas: Iterable[TocEntry], binaries: Iterable[TocEntry]) -> list:
    """PyInstaller lists symbolic links to libraries (``libQt6Gui.so.6`` at the top pointing
    into ``PySide6/Qt/lib``) as (link, target, "SYMLINK") data entries: drop the ones whose
    target is no longer bundled."""
    present = {_posix(e[0]) for e in binaries} | {_posix(e[0]) for e in datas}
    return [e for e in datas if e[2] != "SYMLINK" or _posix(e[1]) in present]
