"""Text as QuickBooks Desktop can store it, within its field limits.

The rule: the bridge sends printable ASCII and the printable Latin-1 range (U+00A1 to
U+00FF), nothing else. QuickBooks Desktop stores Windows-1252, turns what lies outside it
into "?", and rejects a whole message for a character outside the Basic Multilingual
Plane (0x80040400; docs/web-connector.md). Latin-1 is the part of Windows-1252 that field
reports show stored and read back intact; for the rest of it (0x80-0x9F: curly quotes,
dashes, "…", "€", "™", "Œ") no report says so, and the strictest QuickBooks refuses them,
so they are sent as their ASCII equivalents too. Every other character is transliterated
by anyascii ("Nguyễn" → "Nguyen", "Łukasz" → "Lukasz", "Ελένη" → "Eleni", "Иван" →
"Ivan", "北京" → "BeiJing"), whitespace becomes a space, and what has no equivalent is
dropped. The same converted form is used for lookups, so a returning customer is found
again.
"""

from __future__ import annotations

import hashlib
import unicodedata
from functools import lru_cache

from anyascii import anyascii

# QuickBooks limits (US editions), keyed by the qbXML element name.
FIELD_LIMITS = {
    "Name": 41,
    "FullName": 159,  # an item's full name
    "CustomerFullName": 209,  # a customer:job path (CustomerRef, EntityFilter)
    "CompanyName": 41,
    "FirstName": 25,
    "LastName": 25,
    "Addr1": 41,
    "Addr2": 41,
    "Addr3": 41,
    "Addr4": 41,
    "Addr5": 41,
    "City": 31,
    "State": 21,
    "Country": 31,
    "PostalCode": 13,
    "Phone": 21,
    "Email": 1023,
    "RefNumber": 11,
    "PaymentRefNumber": 20,
    "PONumber": 25,
    "Memo": 4095,
    "Desc": 4095,
    "ShipMethod": 15,
    "PaymentMethod": 31,
}


def _kept(char: str) -> bool:
    """Printable ASCII (with tab and line breaks) and printable Latin-1 go as they are."""
    return char in "\t\n\r" or " " <= char <= "~" or "\u00a1" <= char <= "\u00ff"


@lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    if _kept(char):
        return "" if char == "\u00ad" else char  # a soft hyphen is invisible: drop it
    category = unicodedata.category(char)
    if category.startswith("Z"):
        return " "
    if category.startswith("C"):
        return ""
    ascii_text = anyascii(char)
    if len(ascii_text) > 2 and ascii_text[0] == ascii_text[-1] == ":":
        return ""  # an emoji's :shortcode: is no one's name or address
    return "".join(c for c in ascii_text if " " <= c <= "~")


def qb_text(value: str) -> str:
    """Fold ``value`` to what QuickBooks stores (see the module's rule).

    Deterministic and idempotent: ``qb_text(qb_text(s)) == qb_text(s)``.
    """
    if value.isascii() and value.isprintable():
        return value
    # Compose first so "e" + combining acute folds the same way as the precomposed "é".
    composed = unicodedata.normalize("NFC", value)
    return "".join(_fold_char(c) for c in composed)


def fit(value: str, limit: int) -> str:
    """``qb_text`` of ``value``, whitespace trimmed, cut to ``limit`` characters."""
    return qb_text(value).strip()[:limit].rstrip()


def fit_line(value: str, limit: int) -> str:
    """``fit`` for one-line fields (address lines, city, phone): whitespace runs become a space."""
    if value.isascii() and value.isprintable():  # the usual case: nothing to fold
        return " ".join(value.split())[:limit].rstrip()
    return fit(" ".join(qb_text(value).split()), limit)


def fit_name(value: str, limit: int = 41) -> str:
    """A QuickBooks list name: folded, without colons, at most ``limit`` characters.

    A name that has to be cut keeps a short digest of the whole name at its end, so two
    long names that share their first ``limit`` characters stay two customers, and the
    same name always comes out the same.
    """
    folded = " ".join(qb_text(value).replace(":", " ").split())
    if len(folded) <= limit:
        return folded
    digest = hashlib.sha1(folded.encode("utf-8")).hexdigest()[:6].upper()
    return f"{folded[: limit - len(digest) - 1].rstrip()} {digest}"
