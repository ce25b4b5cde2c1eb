"""Windows .ico and macOS .icns files made from the PNG sizes in ``resources/icons``.

Both formats can carry PNG data as is (ICO since Windows Vista, ICNS since OS X 10.7), so
no image library is needed: the files are assembled byte by byte.
"""

from __future__ import annotations

import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ICON_DIR = ROOT / "resources" / "icons"
ICON_SIZES = (16, 32, 48, 64, 128, 256, 512)

# ICNS element types that hold PNG data, by pixel size (the @2x types reuse a larger PNG).
_ICNS_TYPES: tuple[tuple[bytes, int], ...] = (
    (b"icp4", 16),
    (b"icp5", 32),
    (b"ic11", 32),  # 16x16@2x
    (b"ic12", 64),  # 32x32@2x
    (b"ic07", 128),
    (b"ic08", 256),
    (b"ic13", 256),  # 128x128@2x
    (b"ic09", 512),
    (b"ic14", 512),  # 256x256@2x
)


def png_path(size: int) -> Path:
    return ICON_DIR / f"scim-desktop-{size}.png"


def _png_size(data: bytes) -> int:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    width, height = struct.unpack(">II", data[16:24])
    if width != height:
        raise ValueError(f"icon is not square: {width}x{height}")
    return int(width)


def make_ico(sizes: tuple[int, ...] = (16, 32, 48, 64, 128, 256)) -> bytes:
    """An ICO file with one PNG entry per size (256 is the largest ICO allows)."""
    images = [png_path(s).read_bytes() for s in sizes]
    header = struct.pack("<HHH", 0, 1, len(images))
    offset = len(header) + 16 * len(images)
    entries = b""
    for data in images:
        size = _png_size(data)
        dim = 0 if size >= 256 else size  # 0 means 256 in an ICO directory entry
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(data), offset)
        offset += len(data)
    return header + entries + b"".join(images)


def make_icns() -> bytes:
    """An ICNS file with PNG elements from 16 to 512 pixels (and their @2x variants)."""
    body = b""
    for kind, size in _ICNS_TYPES:
        data = png_path(size).read_bytes()
        if _png_size(data) != size:
            raise ValueError(f"{png_path(size)} is not {size}x{size}")
        body += kind + struct.pack(">I", 8 + len(data)) + data
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def write_icons(folder: Path) -> tuple[Path, Path]:
    """Write ``scim-desktop.ico`` and ``scim-desktop.icns`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    ico = folder / "scim-desktop.ico"
    icns = folder / "scim-desktop.icns"
    ico.write_bytes(make_ico())
    icns.write_bytes(make_icns())
    return ico, icns
