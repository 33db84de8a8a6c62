"""Windows-1252 folding and QuickBooks field limits (domain/text.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qbwc_bridge.domain.text import FIELD_LIMITS, fit, fit_line, fit_name, qb_text

any_text = st.text(alphabet=st.characters(), max_size=80)


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("Nguyễn", "Nguyen"),
        ("Łukasz", "Lukasz"),
        ("Đặng Thị Hồng", "Dang Thi Hong"),
        ("Zoë Müller", "Zoë Müller"),  # already Windows-1252: kept
        ("Caf\u0065\u0301", "Café"),  # combining accent composed first, then kept
        ("Brown 🚀 Ltd", "Brown  Ltd"),
        ("⅓ cup", "1/3 cup"),
        ("Ｆｕｌｌ", "Full"),
        ("ﬁne", "fine"),
        ("Straße ẞ", "Straße Ss"),
        ("a\x00b\x07c\x7fd", "abcd"),
        ("line\u2028break", "line break"),
        ("東京 Tokyo", "DongJing Tokyo"),
        ("Ελένη", "Eleni"),
        ("Иван", "Ivan"),
        ("محمد", "mhmd"),
        # Windows-1252's own extras (0x80-0x9F) go as ASCII: only Latin-1 is known to pass.
        ("€100 “quoted” — ok…", 'EUR100 "quoted" - ok...'),
        ("™ Œ „x‚ ‹›ƒ", "TM Oe \"x' <>f"),
        ("&<>\"'", "&<>\"'"),
    ],
)
def test_qb_text_folds_to_windows_1252(raw: str, folded: str) -> None:
    assert qb_text(raw) == folded


def test_lone_surrogates_from_json_are_dropped() -> None:
    assert qb_text("a\ud800b") == "ab"


@given(any_text)
def test_qb_text_is_windows_1252_idempotent_and_deterministic(value: str) -> None:
    folded = qb_text(value)
    folded.encode("cp1252")
    assert qb_text(folded) == folded
    assert qb_text(value) == folded
    assert all(
        char in "\t\n\r" or " " <= char <= "~" or "\u00a1" <= char <= "\u00ff" for char in folded
    )
    assert all(ord(char) <= 0xFFFF for char in folded)


@given(any_text, st.integers(1, 60))
def test_fit_respects_limit_and_trims(value: str, limit: int) -> None:
    cut = fit(value, limit)
    assert len(cut) <= limit
    assert cut == cut.strip()
    cut.encode("cp1252")
    assert fit(cut, limit) == cut


def test_fit_line_makes_one_line() -> None:
    assert fit_line("12 Main St\n  Apt\t4 ", 41) == "12 Main St Apt 4"


@given(any_text)
def test_fit_name_has_no_colon_and_fits(value: str) -> None:
    name = fit_name(value)
    assert ":" not in name
    assert len(name) <= FIELD_LIMITS["Name"]
    name.encode("cp1252")
    assert fit_name(value) == name


def test_fit_name_keeps_distinct_long_names_distinct() -> None:
    shared = "Bartholomew-Featherstonehaugh Worthington"  # 41 characters
    first, second = fit_name(f"{shared} Senior"), fit_name(f"{shared} Junior")
    assert first != second
    assert len(first) == len(second) == 41
    assert first.startswith("Bartholomew-Featherstonehaugh")
    assert fit_name(f"{shared} Senior") == first


@given(st.text(min_size=42, max_size=80), st.text(min_size=42, max_size=80))
def test_fit_name_distinct_folded_names_stay_distinct(one: str, other: str) -> None:
    folded_one = " ".join(qb_text(one).replace(":", " ").split())
    folded_other = " ".join(qb_text(other).replace(":", " ").split())
    if folded_one != folded_other:
        assert fit_name(one) != fit_name(other)


def test_fit_name_replaces_colons_and_collapses_spaces() -> None:
    assert fit_name("  Smith:  John  ") == "Smith John"


def test_fit_line_plain_ascii_is_cut_like_any_other_text() -> None:
    assert fit_line("  Ab  cd ", 4) == "Ab c"
    assert fit_line("Ab   cd", 3) == "Ab"
    assert fit_line("Ab cd", 40) == fit(" ".join(qb_text("Ab cd").split()), 40)
