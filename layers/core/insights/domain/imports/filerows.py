"""Streaming rows out of a file, with the byte offset after each one.

The file is read in chunks and split into lines; lines are decoded one by
one (a UTF-8 sequence never contains a newline byte, so this is exact) and
fed to the csv module, which pulls only the lines of the record it is
building. The offset after a record is therefore a safe place to resume:
a later invocation continues from it with a ranged read (plain files) or by
skipping that many decompressed bytes (gzip). Memory stays bounded by the
chunk size and the longest allowed line.
"""

from __future__ import annotations

import csv
import gzip
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from insights.domain.core.limits import json_float, json_int
from insights.domain.imports.files import FileError, Format

CHUNK_BYTES = 64 * 1024
SKIP_CHUNK_BYTES = 1024 * 1024
MAX_LINE_BYTES = 1024 * 1024
BOM = b"\xef\xbb\xbf"
GZIP_MAGIC = b"\x1f\x8b"
# The csv module refuses a field over 131,072 characters by default, which
# failed a whole file for one long cell (a CRM's notes, even in a column the
# mapping leaves out). A cell is bounded as a line is; a longer value in an
# imported column is then refused with its row (limits.MAX_STRING_VALUE_CHARS).
# Process-wide, but this is the service's only CSV reader.
csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Record:
    row: int  # 1-based: CSV records (the header is row 1), JSON Lines lines
    data: Any  # list[str] (CSV) or dict (JSON Lines); [] / {} for blank rows
    end: int  # byte offset just after this record


class Peekable:
    """A stream whose first bytes can be looked at without losing them."""

    def __init__(self, raw: Readable) -> None:
        self._raw = raw
        self._head = b""

    def peek(self, size: int) -> bytes:
        while len(self._head) < size:
            more = self._raw.read(size - len(self._head))
            if not more:
                break
            self._head += more
        return self._head[:size]

    def read(self, size: int = -1, /) -> bytes:
        if self._head:
            if size < 0 or size >= len(self._head):
                head, self._head = self._head, b""
                rest = self._raw.read(-1 if size < 0 else size - len(head))
                return head + (rest or b"")
            head, self._head = self._head[:size], self._head[size:]
            return head
        return self._raw.read(size)


def decompressed(raw: Readable, *, skip: int = 0) -> Readable:
    """The stream through gunzip when it starts with gzip's magic; `skip` bytes dropped."""
    stream = Peekable(raw)
    out: Readable = stream
    if stream.peek(2) == GZIP_MAGIC:
        out = _SafeGzip(stream)
    remaining = skip
    while remaining > 0:
        got = out.read(min(SKIP_CHUNK_BYTES, remaining))
        if not got:
            raise FileError("the file is shorter than the import's checkpoint: was it replaced?")
        remaining -= len(got)
    return out


def open_stream(raw: Readable) -> tuple[Readable, bool]:
    """The stream from its first byte, gunzipped if it is gzip: (stream, compressed)."""
    stream = Peekable(raw)
    if stream.peek(2) == GZIP_MAGIC:
        return _SafeGzip(stream), True
    return stream, False


class _SafeGzip:
    def __init__(self, raw: Readable) -> None:
        self._gz = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[arg-type]

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self._gz.read(size)
        except (OSError, EOFError, zlib.error):
            raise FileError("not a valid gzip file: it is damaged or cut short") from None


class _Lines:
    def __init__(self, stream: Readable, offset: int) -> None:
        self.stream = stream
        self.offset = offset
        self._start = offset

    def raw(self) -> Iterator[bytes]:
        buffer = b""
        while True:
            chunk = self.stream.read(CHUNK_BYTES)
            if not chunk:
                break
            buffer += chunk
            start = 0
            while True:
                end = buffer.find(b"\n", start)
                if end < 0:
                    break
                yield buffer[start : end + 1]
                start = end + 1
            buffer = buffer[start:]
            if len(buffer) > MAX_LINE_BYTES:
                raise FileError(
                    f"a line longer than {MAX_LINE_BYTES} bytes starts at byte {self.offset}"
                )
        if buffer:
            yield buffer

    def text(self) -> Iterator[str]:
        for line in self.raw():
            where = self.offset
            body = line[3:] if where == 0 and line.startswith(BOM) else line
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                skipped = len(line) - len(body)
                raise FileError(
                    f"not valid UTF-8: byte {where + skipped + exc.start} (save the file as UTF-8)"
                ) from None
            self.offset += len(line)
            yield text


def records(stream: Readable, fmt: Format, *, offset: int = 0, row: int = 0) -> Iterator[Record]:
    """Records from `offset` (a previous record's end), numbered after `row`."""
    lines = _Lines(stream, offset)
    if fmt == "csv":
        reader = csv.reader(lines.text(), strict=True)
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                if "new-line character seen in unquoted field" in str(exc):
                    raise FileError(
                        f"row {row + 1} is not valid CSV: a carriage return (CR) outside "
                        "quotes; a file that ends lines with CR alone (an old Mac format) "
                        "must be saved with LF or CRLF line ends"
                    ) from None
                raise FileError(f"row {row + 1} is not valid CSV: {exc}") from None
            row += 1
            yield Record(row, fields, lines.offset)
    else:
        for text in lines.text():
            row += 1
            if not text.strip():
                yield Record(row, {}, lines.offset)
                continue
            yield Record(row, _json_object(text, row), lines.offset)


def _json_object(text: str, row: int) -> dict[str, Any]:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key, value in items:
            if key in found:
                raise FileError(f"line {row} has the key {key!r} twice")
            found[key] = value
        return found

    try:
        # Integers over 38 digits stay BigNumber: the row is refused, not the file.
        value = json.loads(
            text, object_pairs_hook=pairs, parse_int=json_int, parse_float=json_float
        )
    except json.JSONDecodeError as exc:
        raise FileError(f"line {row} is not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise FileError(f"line {row} nests objects or lists too deeply") from None
    if not isinstance(value, dict):
        raise FileError(f"line {row} is not a JSON object")
    return value


def is_blank(record: Record) -> bool:
    if isinstance(record.data, dict):
        return not record.data
    return not any(map(str.strip, record.data))
