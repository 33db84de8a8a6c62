"""JMAUser orders as plain, immutable values; the rest of the bridge speaks only these."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal


class OrderType(enum.IntEnum):
    """The JMAUser ``OrderType`` codes."""

    WEB_ORDER = 0
    WEB_REFUND = 1
    INVOICE = 2
    CREDIT_MEMO = 3
    SALES_ORDER = 4
    SALES_RECEIPT = 5
    REFUND_RECEIPT = 6


class OrderStatus(enum.StrEnum):
    """Where an order stands; see docs/state-machine.md."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    SYNCED = "synced"
    DUPLICATE = "duplicate"
    ERROR = "error"
    UNPOSTED = "unposted"  # the bridge deleted what it had added (`unpost`)
    SUMMARIZED = "summarized"  # in a daily summary, whose TxnID it carries
    CANCELLED = "cancelled"  # deleted by its channel before it reached QuickBooks


class PaymentStatus(enum.StrEnum):
    """Where one payment of an order stands."""

    PENDING = "pending"
    SYNCED = "synced"
    DUPLICATE = "duplicate"
    ERROR = "error"
    UNPOSTED = "unposted"
    SUMMARIZED = "summarized"


class TxnKind(enum.StrEnum):
    """The QuickBooks transaction an order becomes (the qbXML element stem)."""

    INVOICE = "Invoice"
    SALES_RECEIPT = "SalesReceipt"
    SALES_ORDER = "SalesOrder"
    CREDIT_MEMO = "CreditMemo"


@dataclass(frozen=True, slots=True)
class Address:
    """A JMAUser billing or shipping address; empty strings where the channel sent nothing."""

    address1: str = ""
    address2: str = ""
    city: str = ""
    company: str = ""
    country_name: str = ""
    email: str = ""
    first_name: str = ""
    last_name: str = ""
    full_name: str = ""
    phone_number: str = ""
    postal_code: str = ""
    region_name: str = ""
    two_letter_iso_code: str = ""


@dataclass(frozen=True, slots=True)
class LineOption:
    """A chosen option of an order line (size, colour, engraving, ...)."""

    name: str
    value: str = ""
    sku: str = ""
    quantity: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One order detail: becomes one QuickBooks line with ItemRef = SKU."""

    sku: str
    name: str
    quantity: Decimal
    price_excl_tax: Decimal
    price_incl_tax: Decimal | None = None
    options: tuple[LineOption, ...] = ()

    @property
    def amount(self) -> Decimal:
        """Line amount excluding tax, rounded half up to the cent as QuickBooks does."""
        return (self.quantity * self.price_excl_tax).quantize(Decimal("0.01"), ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Payment:
    """A JMAPayment: one ReceivePaymentAdd applied to the order's invoice."""

    amount: Decimal
    payment_date: date
    credit_card_name: str = ""
    reference_number: str = ""


@dataclass(frozen=True, slots=True)
class Order:
    """A validated JMAUser order."""

    order_number: str
    order_date: date
    customer_name: str
    lines: tuple[OrderLine, ...]
    total_tax: Decimal
    order_total: Decimal
    order_type: OrderType = OrderType.WEB_ORDER
    billing_address: Address = field(default_factory=Address)
    shipping_address: Address = field(default_factory=Address)
    shipping_method: str = ""
    shipping_excl_tax: Decimal = Decimal("0")
    shipping_incl_tax: Decimal | None = None
    discount_excl_tax: Decimal = Decimal("0")
    discount_incl_tax: Decimal | None = None
    channel_name: str = ""
    credit_card_name: str = ""
    payments: tuple[Payment, ...] = ()
    # The moment of the order (UTC) when its OrderDate has a time and a UTC offset (or is a
    # .NET /Date(ms)/): a daily summary takes its day in the company's time zone from it.
    ordered_at: datetime | None = None

    @property
    def computed_total(self) -> Decimal:
        """Lines + shipping - discount + tax: what OrderTotal must equal within a cent."""
        lines = sum((line.amount for line in self.lines), Decimal("0"))
        return lines + self.shipping_excl_tax - self.discount_excl_tax + self.total_tax


class OrderStage(enum.StrEnum):
    """What a claimed order waits for next within a run (engine/steps.py)."""

    CHECK = "check"  # customer lookup + duplicate check of the transaction
    ADD = "add"  # customer add (when absent) + transaction add
    PAY_CHECK = "pay_check"  # duplicate check of each payment
    PAY_ADD = "pay_add"  # add each payment found absent
    DONE = "done"


# The error code of an order that ended in a RefNumber conflict (QuickBooks' codes are
# positive): `qbwc-bridge resolve` takes such orders only.
REFNUMBER_CONFLICT = -1
# The error code of an order whose undo found it changed in QuickBooks: nothing was deleted.
UNPOST_REFUSED = -2


class Resolution(enum.StrEnum):
    """How a person resolved a RefNumber conflict (``qbwc-bridge resolve``)."""

    DUPLICATE = "duplicate"  # the transaction QuickBooks has with this RefNumber is this order
    ADD = "add"  # it is not: add this order too (QuickBooks allows a repeated RefNumber)


class LazyOrder:
    """An order's content, decoded on first use and then kept.

    Most steps of a run need only what the queue keeps in columns (number, kind, customer),
    so a callback decodes only the orders it actually maps to qbXML.
    """

    __slots__ = ("_decode", "_order")

    def __init__(self, decode: Callable[[], Order]) -> None:
        self._decode: Callable[[], Order] | None = decode
        self._order: Order | None = None

    def get(self) -> Order:
        if self._order is None:
            assert self._decode is not None
            self._order, self._decode = self._decode(), None
        return self._order


@dataclass(frozen=True, slots=True)
class QueuedPayment:
    id: int
    position: int
    source: LazyOrder
    status: PaymentStatus
    stage: OrderStage
    qb_txn_id: str | None = None
    error: str | None = None
    add_sent: bool = False
    # As the bridge's ReceivePaymentAdd left it (an undo deletes it only if unchanged).
    qb_edit_sequence: str | None = None
    qb_time_modified: str | None = None

    @property
    def payment(self) -> Payment:
        return self.source.get().payments[self.position]


@dataclass(frozen=True, slots=True)
class QueuedOrder:
    """An order in the queue with everything the bridge learnt about it so far."""

    id: int
    order_number: str
    source: LazyOrder
    status: OrderStatus
    stage: OrderStage
    txn_kind: TxnKind
    customer_name: str
    customer_list_id: str | None = None
    invoice_customer: str | None = None
    qb_txn_id: str | None = None
    qb_ref_number: str | None = None
    attempts: int = 0
    add_sent: bool = False
    error: str | None = None
    payments: tuple[QueuedPayment, ...] = ()
    resolution: Resolution | None = None
    # `unpost` asked for: the run deletes what the bridge added instead of adding.
    unpost: bool = False
    # The transaction as the bridge's add left it (an undo deletes it only if unchanged).
    qb_edit_sequence: str | None = None
    qb_time_modified: str | None = None
    # Set on a daily summary (domain/summaries.py): its Memo; its members are other orders.
    summary_memo: str | None = None

    @property
    def order(self) -> Order:
        """The order's content (decoded now if no step needed it before)."""
        return self.source.get()


# --- what a run learns about its orders ----------------------------------------------------
# The engine's steps decide these; the store turns them into guarded statements.


@dataclass(frozen=True, slots=True)
class TxnLink:
    """The QuickBooks transaction an order is: added by the run, or found by its check."""

    txn_id: str
    ref_number: str
    customer: str  # the transaction's customer as QuickBooks has it (payments go to it)
    edit_sequence: str = ""  # as the add (or the check of a lost add) found it
    time_modified: str = ""


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    """The order leaves the run: synced, duplicate, error, unposted, or pending (back in the
    queue)."""

    status: OrderStatus
    error: str | None = None
    error_code: int | None = None


@dataclass(frozen=True, slots=True)
class OrderChange:
    """What one message's answers taught the run about one order; None changes nothing.

    An outcome is final within a message: nothing later in the message changes the order.
    """

    stage: OrderStage | None = None
    customer_list_id: str | None = None
    txn: TxnLink | None = None
    outcome: OrderOutcome | None = None

    def then(self, later: OrderChange) -> OrderChange:
        """This change followed by ``later`` (what ``later`` sets wins)."""
        return OrderChange(
            stage=later.stage if later.stage is not None else self.stage,
            customer_list_id=later.customer_list_id
            if later.customer_list_id is not None
            else self.customer_list_id,
            txn=later.txn if later.txn is not None else self.txn,
            outcome=later.outcome if later.outcome is not None else self.outcome,
        )


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    """The payment is done: synced or duplicate (with its TxnID), or error."""

    status: PaymentStatus
    qb_txn_id: str | None = None
    error: str | None = None
    edit_sequence: str = ""  # a payment the bridge added, as QuickBooks answered the add
    time_modified: str = ""


@dataclass(frozen=True, slots=True)
class PaymentChange:
    """What the run learnt about one payment of one of its orders."""

    order_id: int
    stage: OrderStage | None = None
    outcome: PaymentOutcome | None = None

    def then(self, later: PaymentChange) -> PaymentChange:
        return PaymentChange(
            order_id=self.order_id,
            stage=later.stage if later.stage is not None else self.stage,
            outcome=later.outcome if later.outcome is not None else self.outcome,
        )
