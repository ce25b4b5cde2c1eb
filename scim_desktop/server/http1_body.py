"""Request bodies for :mod:`scim_desktop.server.http1`: the bytes after a head, read from the
connection's buffer (RFC 9112 §6-7): a body of known length, a chunked one (sizes, extensions
and trailer fields limited as a head is), the empty lines a client may send before a request
line, and the ``Content-Length`` value checked. :class:`BodyReader` is the part of
``http1.Connection`` that does this (a mixin: it reads the connection's ``_buf`` and fills it
with ``_fill``); ``http1`` re-exports the limits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scim_desktop.server.http1_head import _CTL_RE, _TOKEN_RE, HttpError, Request

if TYPE_CHECKING:
    from scim_desktop.server.http1 import HttpServer

#: Chunk-size lines and trailer fields longer than this are refused.
MAX_CHUNK_LINE = 1024
#: Chunked trailer fields allowed per request (their bytes count against max_header_size).
MAX_TRAILER_FIELDS = 64
#: Bytes of empty lines (CR, LF) ignored before a request line (RFC 9112 §2.2); more: a 400.
MAX_LEADING_EMPTY = 8
_HEX = frozenset("0123456789abcdefABCDEF")


class BodyReader:
    """Reading what follows a request head from ``_buf`` (``http1.Connection`` supplies the
    buffer, ``_fill`` and the server's limits)."""

    server: HttpServer
    _buf: bytearray
    _unread: bool
    _first_line: bytes

    async def _fill(self) -> None:
        raise NotImplementedError

    def _skip_empty_lines(self, skipped: int) -> int:
        """Drop the CRs and LFs before a request line (``skipped`` of them were already);
        how many. RFC 9112 §2.2 asks servers to ignore at least one empty line there (some
        clients send one after a POST body): a few are, and count against the head's size;
        more are a 400 (each used to cost a turn of the request loop: 4 MB of them took 2.5
        s of CPU)."""
        buf = self._buf
        start = bytes(buf[: MAX_LEADING_EMPTY + 1])
        count = len(start) - len(start.lstrip(b"\r\n"))
        if skipped + count > MAX_LEADING_EMPTY:
            self._first_line = b""
            raise HttpError(
                400, f"More than {MAX_LEADING_EMPTY} bytes of empty lines before the request line"
            )
        del buf[:count]
        return count

    async def _read_exactly(self, size: int) -> bytes:
        buf = self._buf
        while len(buf) < size:
            await self._fill()
        data = bytes(buf[:size])
        del buf[:size]
        return data

    async def _read_line(self, what: str) -> str:
        buf = self._buf
        searched = 0
        while (end := buf.find(b"\n", searched)) < 0:
            if len(buf) > MAX_CHUNK_LINE:
                raise HttpError(400, f"A {what} is longer than {MAX_CHUNK_LINE} bytes")
            searched = len(buf)
            await self._fill()
        if end > MAX_CHUNK_LINE:
            raise HttpError(400, f"A {what} is longer than {MAX_CHUNK_LINE} bytes")
        if end == 0 or buf[end - 1] != 13:  # RFC 9112 §7.1: CRLF after every chunk line
            raise HttpError(400, f"A {what} does not end with CRLF")
        line = bytes(buf[: end - 1]).decode("latin-1")
        del buf[: end + 1]
        if _CTL_RE.search(line):
            raise HttpError(400, f"A {what} holds a control character")
        return line

    @staticmethod
    def _content_length(value: str) -> int:
        if "," in value:  # the same length repeated is allowed (RFC 9110 §8.6)
            # OWS is SP and HTAB only: str.strip() would also drop \xa0 and \x85.
            values = {v.strip(" \t") for v in value.split(",")}
            if len(values) != 1:
                raise HttpError(400, f"Conflicting Content-Length values: {value[:80]!r}")
            value = values.pop()
        if not (value.isascii() and value.isdigit()) or len(value) > 18:
            raise HttpError(400, f"Content-Length {value[:40]!r} is not a number of bytes")
        return int(value)

    async def _read_chunked(self, request: Request, limit: int) -> None:
        """A chunked body (RFC 9112 §7.1): sizes in hex, extensions ignored, trailers read and
        dropped. Past ``limit`` the rest is not read (and the connection will end).
        Extensions and trailer fields together may take max_header_size bytes, and there may
        be MAX_TRAILER_FIELDS trailer fields, as for a head (§7.1.1, §7.1.2): an endless
        stream of them was read and dropped for as long as it came."""
        parts: list[bytes] = []
        total = 0
        extra = 0  # bytes of extensions and trailer fields
        extra_limit = self.server.max_header_size
        while True:
            line = await self._read_line("chunk size line")
            size_text, _, extension = line.partition(";")
            # RFC 9112 §7.1: the hex digits first; whitespace (BWS) only after them.
            size_text = size_text.rstrip(" \t")
            if not size_text or len(size_text) > 16 or not _HEX.issuperset(size_text):
                raise HttpError(400, f"Malformed chunk size line: {line[:40]!r}")
            if extension:
                extra += len(extension)
                if extra > extra_limit:
                    raise HttpError(431, f"Chunk extensions exceed {extra_limit} bytes")
            size = int(size_text, 16)
            if size == 0:
                break
            total += size
            if total > limit:
                request.declared_length = total
                request.keep_alive = False
                self._unread = True
                return
            chunk = await self._read_exactly(size + 2)
            if chunk[-2:] != b"\r\n":
                raise HttpError(400, "A chunk does not end with CRLF")
            parts.append(chunk[:-2])
        fields = 0
        while line := await self._read_line("trailer field"):
            fields += 1
            extra += len(line) + 2
            if fields > MAX_TRAILER_FIELDS or extra > extra_limit:
                raise HttpError(
                    431,
                    f"The trailer fields exceed {MAX_TRAILER_FIELDS} lines or {extra_limit} bytes",
                )
            # RFC 9112 §7.1.2: field lines as in a head (obs-fold refused, §5.2).
            name, colon, _ = line.partition(":")
            if not colon or not _TOKEN_RE.fullmatch(name):
                raise HttpError(400, "A trailer field line is not 'name: value'")
        request.body = b"".join(parts)
