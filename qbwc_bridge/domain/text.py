"""Text as QuickBooks Desktop can store it: Windows-1252, within its field limits.

QuickBooks turns characters outside Windows-1252 into "?" and rejects a whole message for
characters outside the Basic Multilingual Plane. The bridge converts every string it sends
one deterministic way, and uses the converted form for lookups too, so a returning
customer is found again.
"""

from __future__ import annotations

import hashlib
import unicodedata
from functools import lru_cache

# Letters that do not decompose under NFKD but have an obvious Latin spelling.
_TRANSLITERATIONS = {
    "Ł": "L",
    "ł": "l",
    "Đ": "D",
    "đ": "d",
    "Ħ": "H",
    "ħ": "h",
    "ı": "i",
    "Ŀ": "L",
    "ŀ": "l",
    "Ŧ": "T",
    "ŧ": "t",
    "ſ": "s",
    "ƒ": "f",
    "Ə": "E",
    "ə": "e",
    "ŉ": "'n",
    "Ǝ": "E",
    "ǝ": "e",
    "ȷ": "j",
    "‐": "-",
    "‑": "-",
    "‒": "-",
    "―": "-",
    "−": "-",
    "⁄": "/",
    "∕": "/",
    "ẞ": "SS",
    "‚": ",",
    "„": '"',
    "‹": "<",
    "›": ">",
    "\u00a0": " ",
    "\u2007": " ",
    "\u202f": " ",
    "\u200b": "",
    "\ufeff": "",
}

# QuickBooks limits (US editions), keyed by the qbXML element name.
FIELD_LIMITS = {
    "Name": 41,
    "FullName": 159,
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


def _is_windows_1252(char: str) -> bool:
    try:
        char.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


@lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    if _is_windows_1252(char) and (char in "\t\n\r" or " " <= char != "\x7f"):
        return char
    if char in _TRANSLITERATIONS:
        return _TRANSLITERATIONS[char]
    category = unicodedata.category(char)
    if category in ("Zl", "Zp"):
        return " "
    if category.startswith("C"):
        return ""
    decomposed = unicodedata.normalize("NFKD", char)
    if decomposed == char:
        return ""
    # Fold the parts too, so "⅓" (1, fraction slash, 3) becomes "1/3", not "13".
    return "".join(_fold_char(c) for c in decomposed if not unicodedata.combining(c))


def qb_text(value: str) -> str:
    """Fold ``value`` to Windows-1252, transliterating what has an equivalent, dropping the rest.

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
