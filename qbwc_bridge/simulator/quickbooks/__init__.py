"""A stand-in QuickBooks Desktop for CI: answers qbXML messages the way the real one does.

It shares no code with the bridge's engine or qbXML builders (only the hardened parser), so a
mistake in how the bridge writes or reads qbXML shows up here as it would against QuickBooks.

Layout: ``core`` holds FakeQuickBooks (the public methods, message handling, dispatch); each
request family answers in its own module (``customers``, ``inventory``, ``transactions``,
``payments``, ``company``) over ``books`` (the shared state) and ``queries`` (filters, iterators).

Deliberate choices where the real behaviour is unknown or out of scope:
- A request type the stand-in does not implement answers statusCode 1030 Error ("This request
  is not supported by this implementation."), so a bridge mistake is loud, not silently empty.
- An invalid or expired iterator answers 3391 Error 'The iteratorID "{…}" is not valid.'
  (the wording QuickBooks users report).
- A payment applied to another customer's invoice answers 3120 (the invoice is not found among
  that customer's open transactions); applying more than the open balance answers 3180.
- Quantities change with sales but the item's TimeModified does not, as in QuickBooks.
- onError="rollbackOnError" behaves like stopOnError.
- A sales transaction answered to a message of an older qbXML version leaves out the
  elements that version lacks (Addr5, the address blocks, Other1/Other2 ... before 6.0).
- Sales entered, changed and deleted by hand (``add_sale``, ``modify_transaction``,
  ``delete_transaction``) move TimeModified as a save does; deletions answer
  TxnDeletedQuery.
- Requests are validated against Intuit's XSD (element order, types, enums): a failure is the
  parse error 0x80040400. Over-long strings pass that check and answer 3070 per request, as
  QuickBooks does.
- An InvoiceRet carries no TotalAmount (the schema has none): Subtotal, AppliedAmount and
  BalanceRemaining say it. Sales tax is not computed (SalesTaxTotal 0.00; a tax line is a line).
"""

from __future__ import annotations

from qbwc_bridge.simulator.quickbooks.company import KNOWN_QBXML_VERSIONS
from qbwc_bridge.simulator.quickbooks.core import FakeQuickBooks
from qbwc_bridge.simulator.quickbooks.failures import (
    COULD_NOT_START_HRESULT,
    COULD_NOT_START_MESSAGE,
    PARSE_ERROR_HRESULT,
    PARSE_ERROR_MESSAGE,
    QuickBooksFailure,
    QuickBooksParseError,
    ResponseLost,
)
from qbwc_bridge.simulator.quickbooks.records import (
    Aggregate,
    AppliedPayment,
    CustomerRecord,
    Field,
    ItemKind,
    ItemRecord,
    ItemStock,
    LatencyModel,
    PaymentRecord,
    SaleLine,
    TransactionLine,
    TransactionRecord,
    TxnKind,
)

__all__ = [
    "COULD_NOT_START_HRESULT",
    "COULD_NOT_START_MESSAGE",
    "KNOWN_QBXML_VERSIONS",
    "PARSE_ERROR_HRESULT",
    "PARSE_ERROR_MESSAGE",
    "Aggregate",
    "AppliedPayment",
    "CustomerRecord",
    "FakeQuickBooks",
    "Field",
    "ItemKind",
    "ItemRecord",
    "ItemStock",
    "LatencyModel",
    "PaymentRecord",
    "QuickBooksFailure",
    "QuickBooksParseError",
    "ResponseLost",
    "SaleLine",
    "TransactionLine",
    "TransactionRecord",
    "TxnKind",
]
