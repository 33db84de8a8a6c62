"""QuickBooks statuses as outcomes and as messages a person can act on.

Statuses are values, not exceptions: a missing item fails one order, not the run. Severity and
code both count ("non-zero = failure" would turn an empty query into an error).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable

from qbwc_bridge.qbxml.responses import QbStatus

_ABSENT_ON_QUERY = frozenset({1, 500})
_TRANSIENT = frozenset({3175, 3176, 3180, 3200, 3231})
_FIRST_ERROR_CODE = 3000
_FIRST_INTERNAL_CODE = 9001


class Outcome(enum.StrEnum):
    """What one response means for the order or step that sent it."""

    OK = "ok"
    ABSENT = "absent"
    WARNING = "warning"
    FAILED = "failed"


def classify(status: QbStatus, kind: str) -> Outcome:
    """``kind`` is the request stem ("CustomerQuery", "InvoiceAdd")."""
    if kind.endswith("Query") and status.code in _ABSENT_ON_QUERY:
        return Outcome.ABSENT
    if status.code >= _FIRST_ERROR_CODE or status.severity == "Error":
        return Outcome.FAILED
    if status.severity == "Warn":
        return Outcome.WARNING
    if status.code == 0 or status.severity == "Info":
        return Outcome.OK
    return Outcome.WARNING if status.code < _FIRST_ERROR_CODE else Outcome.FAILED


def is_transient(status: QbStatus) -> bool:
    """QuickBooks was busy, locked or could not save: the same request may work later."""
    return status.code in _TRANSIENT or status.code >= _FIRST_INTERNAL_CODE


# --- explanations --------------------------------------------------------------------------


# A quoted value in QuickBooks' messages: in double or curly quotes, which an apostrophe
# inside does not end ("Men's TEE"), or in single quotes, ended only by a quote that is
# followed by a space, punctuation or the end ('O'Neil, Olivia').
def _quoted(name: str) -> str:
    return rf"(?:\"(?P<{name}_d>[^\"]*)\"|“(?P<{name}_c>[^”]*)”|'(?P<{name}_s>.*?)'(?=[\s.,;:)]|$))"


def _value(match: re.Match[str], name: str) -> str:
    for style in ("d", "c", "s"):
        found = match.group(f"{name}_{style}")
        if found is not None:
            return found
    return ""


_INVALID_REFERENCE = re.compile(
    r"invalid reference to (?:QuickBooks )?([A-Za-z ]+?) " + _quoted("value")
)
_TOO_LONG = re.compile(r"string " + _quoted("value") + r" in the field " + _quoted("field"))
_NAME_IN_USE = re.compile(r"name " + _quoted("value"))
_OBJECT = re.compile(r"Object " + _quoted("value"))

_FEATURES = {
    "SalesOrder": "sales orders (Edit > Preferences > Sales & Customers)",
    "ItemInventory": "inventory (Edit > Preferences > Items & Inventory)",
    "ItemInventoryAssembly": "inventory assemblies (QuickBooks Premier or Enterprise)",
    "SalesReceipt": "sales receipts",
    "ReceivePayment": "receiving payments",
}


def _subject(kind: str) -> str:
    return kind.removesuffix("Add").removesuffix("Query") or kind


def _invalid_reference(status: QbStatus, kind: str) -> str:
    match = _INVALID_REFERENCE.search(status.message)
    if match is None:
        return (
            f"the {_subject(kind)} names a list entry (item, customer, payment method...) that "
            f"does not exist in QuickBooks: {status.message}"
        )
    list_name, value = match.group(1).strip(), _value(match, "value")
    if list_name.lower() == "item":
        return f"Item '{value}' does not exist in QuickBooks: create it or map the SKU"
    if list_name.lower() == "customer":
        return (
            f"Customer '{value}' does not exist in QuickBooks: it was not found or was "
            "made inactive; add or reactivate it, or check the customer matching setting"
        )
    return (
        f"{list_name} '{value}' does not exist in QuickBooks: create it in QuickBooks "
        "or change the setting that names it"
    )


def invalid_reference(status: QbStatus) -> tuple[str, str] | None:
    """The list and the name a 3140 says do not exist, e.g. ("Item", "SKU-9"); None when
    the status is not such an answer or does not name them."""
    if status.code != 3140:
        return None
    match = _INVALID_REFERENCE.search(status.message)
    if match is None:
        return None
    return " ".join(match.group(1).split()), _value(match, "value")


def _too_long(status: QbStatus, kind: str) -> str:
    match = _TOO_LONG.search(status.message)
    if match is None:
        return f"a value in the {_subject(kind)} is too long for QuickBooks: {status.message}"
    return (
        f"the {_value(match, 'field')} value '{_value(match, 'value')}' is too long for QuickBooks"
    )


def _name_in_use(status: QbStatus, kind: str) -> str:
    match = _NAME_IN_USE.search(status.message)
    name = _value(match, "value") if match else "?"
    return (
        f"The name '{name}' is already in use in QuickBooks (names are shared by customers, "
        "vendors, employees and other names, and include inactive ones): rename or "
        "reactivate the existing one, or change the customer matching setting"
    )


def _not_found(status: QbStatus, kind: str) -> str:
    match = _OBJECT.search(status.message)
    what = f"'{_value(match, 'value')}'" if match else "it refers to"
    return (
        f"the QuickBooks record {what} no longer exists (deleted or merged in QuickBooks): "
        f"{status.message}"
    )


def _could_not_save(status: QbStatus, kind: str) -> str:
    return (
        f"QuickBooks could not save the {_subject(kind)} (the company file may be busy or "
        f"locked); it will be tried again: {status.message}"
    )


def _changed_meanwhile(status: QbStatus, kind: str) -> str:
    return (
        f"the record changed in QuickBooks while the bridge worked on it; it will be tried "
        f"again: {status.message}"
    )


def _feature_off(status: QbStatus, kind: str) -> str:
    feature = _FEATURES.get(_subject(kind), _subject(kind))
    return (
        f"feature not enabled in this company file: {feature}. Turn it on in QuickBooks, "
        f"or change the company's settings. QuickBooks says: {status.message}"
    )


def _no_permission(status: QbStatus, kind: str) -> str:
    return (
        f"permission denied: the QuickBooks user the Web Connector runs as may not do "
        f"{_subject(kind)}; grant it in the Web Connector's access settings "
        f"(Edit > Preferences > Integrated Applications): {status.message}"
    )


_EXPLAINERS: dict[int, Callable[[QbStatus, str], str | None]] = {
    3070: _too_long,
    3100: _name_in_use,
    3120: _not_found,
    3140: _invalid_reference,
    3180: _could_not_save,
    3200: _changed_meanwhile,
    3250: _feature_off,
    3260: _no_permission,
}


def explain(status: QbStatus, kind: str) -> str:
    """A message a person can act on, always starting "QuickBooks error {code}: "."""
    explainer = _EXPLAINERS.get(status.code)
    text = explainer(status, kind) if explainer else None
    if text is None:
        text = status.message or f"{kind} answered statusCode {status.code} with no message"
    return f"QuickBooks error {status.code}: {text}"
