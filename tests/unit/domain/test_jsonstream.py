"""Streaming a JSON array of orders (domain/jsonstream.py)."""

from __future__ import annotations

import io
import json
import tracemalloc
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from factories import make_order_json
from hypothesis import given, settings
from hypothesis import strategies as st

from qbwc_bridge.domain import jsonstream
from qbwc_bridge.domain.intake import parse_order
from qbwc_bridge.domain.jsonstream import MalformedJson, iter_json_array


def items(data: bytes | str, **options: Any) -> list[object]:
    stream: io.BytesIO | io.StringIO = (
        io.BytesIO(data) if isinstance(data, bytes) else io.StringIO(data)
    )
    return list(iter_json_array(stream, **options))


def malformed(data: bytes | str, **options: Any) -> MalformedJson:
    with pytest.raises(MalformedJson) as caught:
        items(data, **options)
    return caught.value


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.decimals(allow_nan=False, allow_infinity=False, places=3)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def dumps(value: object) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


@settings(max_examples=80, deadline=None)
@given(st.lists(json_values, max_size=8), st.integers(1, 17), st.sampled_from(["", " ", "\n  "]))
def test_yields_what_json_loads_reads_at_any_chunk_size(
    values: list[object], chunk_size: int, space: str
) -> None:
    text = "[" + space + f",{space}".join(dumps(value) for value in values) + space + "]"
    expected = json.loads(text, parse_float=Decimal)
    assert items(text.encode("utf-8"), chunk_size=chunk_size) == expected
    assert items(text, chunk_size=chunk_size) == expected


def test_numbers_split_across_chunks_are_read_whole() -> None:
    data = b"[1234567, 2.50, -1e-3, 10]"
    for size in range(1, len(data) + 1):
        assert items(data, chunk_size=size) == [1234567, Decimal("2.50"), Decimal("-0.001"), 10]


def test_fractions_are_decimals() -> None:
    assert items(b"[0.1, 0.2]") == [Decimal("0.1"), Decimal("0.2")]


def test_empty_array_and_byte_order_mark() -> None:
    assert items(b"\xef\xbb\xbf [ ]\n", chunk_size=1) == []


def test_orders_come_out_parseable() -> None:
    orders = [make_order_json(OrderNumber=str(n)) for n in range(3)]
    parsed = [parse_order(raw) for raw in items(json.dumps(orders).encode(), chunk_size=64)]
    assert [order.order_number for order in parsed] == ["0", "1", "2"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "expected '[' at the start of the file (the file is empty)"),
        (b'  {"OrderNumber": 1}', "expected '[' at the start of the file (found '{')"),
        (b"[1, 2, 3 4]", "expected ',' or ']' after item 3, found '4'"),
        (b"[1, 2, 3", "expected ',' or ']' after item 3, found the end of the file"),
        (b"[1,]", "expected item 2 after ',' but found ']'"),
        (b"[1,", "the file ends before item 2: it is truncated"),
        (b'[{"a": "abc', "the file ends inside item 1"),
        (b'[{"a": 1', "the file ends inside item 1"),
        (b'[{"a": tru}]', "item 1: Expecting value"),
        (b'[{"a": NaN}]', "item 1: NaN is not valid JSON"),
        (b"[1] [2]", "unexpected '[' after the closing ']'"),
    ],
)
def test_malformed_input_says_what_was_expected(data: bytes, expected: str) -> None:
    assert expected in malformed(data, chunk_size=3).problem


def test_error_position_counts_lines_and_columns_across_chunks() -> None:
    text = '[\n  {"a": 1},\n  {"b": 2},\n  {"c": }\n]'
    error = malformed(text, chunk_size=5)
    assert (error.line, error.column) == (4, 9)
    assert error.position == text.index("}\n]")
    assert "line 4, column 9" in str(error)


def test_items_before_an_error_are_yielded() -> None:
    stream = io.BytesIO(b"[1, 2, oops]")
    iterator = iter_json_array(stream)
    assert [next(iterator), next(iterator)] == [1, 2]
    with pytest.raises(MalformedJson, match="item 3"):
        next(iterator)


def test_invalid_utf8_is_reported_by_byte() -> None:
    error = malformed(b'["ok", "caf\xe9"]', chunk_size=4)
    assert "invalid UTF-8 at byte 11" in error.problem


def test_item_larger_than_the_limit_is_rejected() -> None:
    data = b'[{"a": 1}, {"big": "' + b"x" * 5000 + b'"}]'
    error = malformed(data, max_item_bytes=1000, chunk_size=256)
    assert "item 2 is larger than 1000 bytes" in error.problem


def test_item_limit_counts_utf8_bytes() -> None:
    data = ('["' + "é" * 600 + '"]').encode()
    assert "larger than 1000 bytes" in malformed(data, max_item_bytes=1000).problem
    assert items(data, max_item_bytes=1300) == ["é" * 600]


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    data = b"[" + b"[" * 100_000 + b"]" * 100_000 + b"]"
    assert "nested too deeply" in malformed(data, max_item_bytes=10**6).problem


class CountingFile(io.FileIO):
    """A binary file that counts the reads made from it and the bytes they return."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "rb")
        self.reads = 0
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size) or b""
        self.reads += 1
        self.bytes_read += len(data)
        return data


def test_one_hundred_thousand_orders_stream_in_bounded_memory_and_linear_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = 100_000
    path = tmp_path / "orders.json"
    template = (
        '{"OrderNumber": "%d", "OrderTotal": 12.50, "orderDetails": [{"sku": "MUG-CLASSIC"}]}'
    )
    with path.open("w", encoding="utf-8") as handle:
        handle.write("[\n")
        handle.write(",\n".join(template % n for n in range(count)))
        handle.write("\n]\n")
    size = path.stat().st_size
    decodes = 0
    decode = jsonstream._DECODER.raw_decode

    def counting_decode(text: str, start: int = 0) -> tuple[Any, int]:
        nonlocal decodes
        decodes += 1
        return decode(text, start)

    monkeypatch.setattr(jsonstream._DECODER, "raw_decode", counting_decode)
    seen = wrong = 0
    with CountingFile(path) as stream:
        tracemalloc.start()
        try:
            for number, item in enumerate(iter_json_array(stream, chunk_size=65536)):
                seen += 1
                if not isinstance(item, dict) or item["OrderNumber"] != str(number):
                    wrong += 1
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert (seen, wrong) == (count, 0)
    assert size > 8_000_000
    assert peak < size / 20, f"peak {peak} bytes for a {size}-byte file"
    # Linear work: every byte is read once, in whole chunks, and an item is decoded again
    # only when it straddles a chunk boundary (re-reading would multiply both counts).
    assert stream.bytes_read == size
    assert stream.reads <= size // 65536 + 2
    assert count <= decodes <= count + 2 * stream.reads
