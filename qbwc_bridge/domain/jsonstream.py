"""Read a JSON array of orders one element at a time, so a large file never sits in memory."""

from __future__ import annotations

import codecs
import json
import re
import typing
from collections.abc import Iterator
from decimal import Decimal

from qbwc_bridge.errors import BridgeError

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_STRUCTURAL = ",:]}"
_NUMBER_CHARS = "0123456789.eE+-"
# A decode error this close to the end of the buffer may only mean the item goes on.
_NEAR_END = 10


class MalformedJson(BridgeError):
    """The file is not a JSON array of orders."""

    def __init__(
        self, problem: str, *, position: int | None = None, line: int = 0, column: int = 0
    ) -> None:
        self.problem = problem
        self.position = position
        self.line = line
        self.column = column
        where = (
            "" if position is None else f" at line {line}, column {column} (character {position})"
        )
        super().__init__(f"Malformed JSON{where}: {problem}")


def _skip_whitespace(text: str, pos: int) -> int:
    match = _WHITESPACE.match(text, pos)
    return match.end() if match else pos


class _NonStandardConstant(ValueError):
    pass


def _reject_constant(name: str) -> object:
    raise _NonStandardConstant(name)


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)


class _Source:
    """Text from a binary or text stream, chunk by chunk, with invalid UTF-8 reported by byte."""

    def __init__(self, stream: typing.BinaryIO | typing.TextIO, chunk_size: int) -> None:
        self._stream = stream
        self._chunk_size = chunk_size
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._bytes_read = 0
        self._first = True
        self.exhausted = False

    def read(self) -> str:
        """The next piece of text ('' once the stream is exhausted)."""
        if self.exhausted:
            return ""
        chunk: str | bytes = self._stream.read(self._chunk_size)
        final = not chunk
        text = chunk if isinstance(chunk, str) else self._decode(chunk, final=final)
        if final:
            self.exhausted = True
        if self._first and text:
            self._first = False
            text = text.removeprefix("\ufeff")
        return text

    def _decode(self, chunk: bytes, *, final: bool) -> str:
        pending = len(self._decoder.getstate()[0])
        try:
            text = self._decoder.decode(chunk, final=final)
        except UnicodeDecodeError as error:
            position = self._bytes_read - pending + error.start
            raise MalformedJson(
                f"invalid UTF-8 at byte {position} ({error.reason}); save the file as UTF-8"
            ) from None
        self._bytes_read += len(chunk)
        return text


class _Reader:
    """A growing text buffer over the source that forgets what has been consumed."""

    def __init__(self, source: _Source, chunk_size: int) -> None:
        self.source = source
        self.buffer = ""
        self.pos = 0
        self._chunk_size = chunk_size
        self._dropped = 0
        self._dropped_lines = 0
        self._last_line_start = 0

    def more(self) -> bool:
        """Read another piece; False when the stream has nothing more."""
        self._compact()
        while not self.source.exhausted:
            text = self.source.read()
            if text:
                self.buffer += text
                return True
        return False

    def peek(self) -> str:
        """The next non-whitespace character ('' at the end of the stream)."""
        while True:
            self.pos = _skip_whitespace(self.buffer, self.pos)
            if self.pos < len(self.buffer):
                return self.buffer[self.pos]
            if not self.more():
                return ""

    def error(self, problem: str, index: int | None = None) -> MalformedJson:
        at = self.pos if index is None else index
        before = self.buffer[:at]
        newlines = before.count("\n")
        line = self._dropped_lines + newlines + 1
        if newlines:
            column = at - before.rfind("\n")
        else:
            column = self._dropped + at - self._last_line_start + 1
        return MalformedJson(problem, position=self._dropped + at, line=line, column=column)

    def _compact(self) -> None:
        if self.pos < self._chunk_size:
            return
        consumed = self.buffer[: self.pos]
        newlines = consumed.count("\n")
        if newlines:
            self._dropped_lines += newlines
            self._last_line_start = self._dropped + consumed.rfind("\n") + 1
        self._dropped += self.pos
        self.buffer = self.buffer[self.pos :]
        self.pos = 0


def _maybe_incomplete(error: json.JSONDecodeError, buffer: str) -> bool:
    """Could more text make this item valid? Only a cut string or a cut final token."""
    if error.msg.startswith("Unterminated string"):
        return True
    rest = buffer[error.pos :]
    return len(rest) <= _NEAR_END and not any(char in _STRUCTURAL for char in rest)


def _may_go_on(reader: _Reader, end: int) -> bool:
    """Could the value end later? A number at the buffer's end may have more digits to come."""
    if reader.source.exhausted:
        return False
    tail = reader.buffer[end:]
    return len(tail) <= _NEAR_END and all(char in _NUMBER_CHARS for char in tail)


def _item_too_large(text: str, max_item_bytes: int) -> bool:
    if len(text) > max_item_bytes:
        return True
    return (
        len(text) * 4 > max_item_bytes
        and len(text.encode("utf-8", "surrogatepass")) > max_item_bytes
    )


def _decode_item(reader: _Reader, number: int, max_item_bytes: int) -> object:
    """Decode item ``number`` (1-based) at the reader's position, reading more as needed."""
    start = reader.pos
    while True:
        try:
            item, end = _DECODER.raw_decode(reader.buffer, start)
        except json.JSONDecodeError as error:
            if not _maybe_incomplete(error, reader.buffer):
                raise reader.error(f"item {number}: {error.msg}", error.pos) from None
            if len(reader.buffer) - start > max_item_bytes:
                raise reader.error(_too_large(number, max_item_bytes), start) from None
            start = _read_more_or_fail(reader, start, number, error)
            continue
        except _NonStandardConstant as error:
            raise reader.error(f"item {number}: {error} is not valid JSON", start) from None
        except ValueError as error:
            raise reader.error(f"item {number}: {error}", start) from None
        except RecursionError:
            raise reader.error(f"item {number} is nested too deeply", start) from None
        if _may_go_on(reader, end):
            if len(reader.buffer) - start > max_item_bytes:
                raise reader.error(_too_large(number, max_item_bytes), start)
            start = _read_more_or_fail(reader, start, number, None)
            continue
        if _item_too_large(reader.buffer[start:end], max_item_bytes):
            raise reader.error(_too_large(number, max_item_bytes), start)
        reader.pos = end
        return item


def _too_large(number: int, max_item_bytes: int) -> str:
    return f"item {number} is larger than {max_item_bytes} bytes; split it or raise the limit"


def _read_more_or_fail(
    reader: _Reader, start: int, number: int, error: json.JSONDecodeError | None
) -> int:
    """Grow the buffer for an item that may go on; the item's new start index."""
    reader.pos = start
    if reader.more():
        return reader.pos
    if error is None:
        return reader.pos
    raise reader.error(f"the file ends inside item {number} ({error.msg}): it is truncated", start)


def iter_json_array(
    stream: typing.BinaryIO | typing.TextIO,
    *,
    chunk_size: int = 65536,
    max_item_bytes: int = 1_000_000,
) -> Iterator[object]:
    """Yield the elements of the top-level JSON array in ``stream``, one at a time.

    Numbers with a fraction come out as Decimal. Raises MalformedJson naming the position and
    what was expected; elements already yielded stay yielded.
    """
    reader = _Reader(_Source(stream, chunk_size), chunk_size)
    first = reader.peek()
    if first != "[":
        found = "the file is empty" if first == "" else f"found {first!r}"
        raise reader.error(f"expected '[' at the start of the file ({found})")
    reader.pos += 1
    if reader.peek() == "]":
        reader.pos += 1
        _expect_end(reader)
        return
    number = 0
    while True:
        number += 1
        if reader.peek() == "":
            raise reader.error(f"the file ends before item {number}: it is truncated")
        if reader.peek() == "]":
            raise reader.error(f"expected item {number} after ',' but found ']' (trailing comma)")
        yield _decode_item(reader, number, max_item_bytes)
        separator = reader.peek()
        if separator == "]":
            reader.pos += 1
            _expect_end(reader)
            return
        if separator != ",":
            found = "the end of the file" if separator == "" else repr(separator)
            raise reader.error(f"expected ',' or ']' after item {number}, found {found}")
        reader.pos += 1


def _expect_end(reader: _Reader) -> None:
    extra = reader.peek()
    if extra:
        raise reader.error(f"unexpected {extra!r} after the closing ']' of the array")
