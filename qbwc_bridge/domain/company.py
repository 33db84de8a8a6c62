"""Per-company settings (docs/operations.md) with their defaults and validation."""

from __future__ import annotations

import dataclasses
import zoneinfo
from dataclasses import dataclass

from qbwc_bridge.errors import BridgeError

TXN_TYPES = ("invoice", "sales_receipt", "sales_order")
REFUND_TYPES = ("credit_memo",)
CUSTOMER_MATCH_STRATEGIES = ("last_first", "first_last", "company", "email")
# What export_transactions may list: the QuickBooks sales transactions read back out.
EXPORT_TYPES = ("invoice", "sales_receipt", "sales_order", "credit_memo")


class InvalidSetting(BridgeError):
    """That company setting is not valid."""


@dataclass(frozen=True, slots=True)
class CompanySettings:
    """How one QuickBooks company wants its orders mapped and paced."""

    txn_type: str = "invoice"
    refund_type: str = "credit_memo"
    customer_match: str = "last_first"
    shipping_item: str = "Shipping"
    discount_item: str = "Discount"
    tax_item: str = "Sales Tax"
    batch_min: int = 50
    batch_max: int = 250
    inventory_every_minutes: int = 60
    orders_per_message: int = 0  # 0 = adaptive; 1 = strictly one order per exchange
    export_transactions: str = ""  # a comma list of EXPORT_TYPES; empty: no export
    export_every_minutes: int = 60
    # Posting rules (docs/operations.md#posting-rules).
    create_missing_items: str = "off"  # or non_inventory
    income_account: str = ""  # the account of the items the bridge creates
    posting: str = "individual"  # or daily_summary
    timezone: str = "UTC"  # an IANA name: when a day is over for the daily summaries
    summary_customer: str = ""  # empty: the channel's name + " Sales"
    summary_delay_hours: int = 2

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def with_value(self, key: str, raw: str) -> CompanySettings:
        """Return a copy with ``key`` set from its command-line text, validated."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        if key not in fields:
            raise InvalidSetting(f"Unknown setting {key!r}; known: {', '.join(sorted(fields))}")
        value: str | int
        if fields[key].type == "int":
            try:
                value = int(raw)
            except ValueError:
                raise InvalidSetting(f"{key} must be a whole number, not {raw!r}") from None
            if value < 0:
                raise InvalidSetting(f"{key} must not be negative")
        elif key == "export_transactions":
            value = _export_list(raw)  # empty turns the export off
        elif key in _MAY_BE_EMPTY:
            value = raw.strip()  # empty: the default
        elif key in _LOWER_CASE:
            value = raw.strip().lower()
            if not value:
                raise InvalidSetting(f"{key} must not be empty")
        else:
            value = raw.strip()
            if not value:
                raise InvalidSetting(f"{key} must not be empty")
        updated = dataclasses.replace(self, **{key: value})  # type: ignore[arg-type]
        # Name the rule as it reads from the key being set.
        if key == "batch_max" and updated.batch_max < updated.batch_min:
            raise InvalidSetting(f"batch_max must be at least batch_min ({updated.batch_min})")
        if key == "batch_min" and updated.batch_min > updated.batch_max:
            raise InvalidSetting(f"batch_min must be at most batch_max ({updated.batch_max})")
        updated.validate()
        return updated

    def validate(self) -> None:
        """Raise InvalidSetting when the settings contradict each other."""
        if self.txn_type not in TXN_TYPES:
            raise InvalidSetting(f"txn_type must be one of {', '.join(TXN_TYPES)}")
        if self.refund_type not in REFUND_TYPES:
            raise InvalidSetting(f"refund_type must be one of {', '.join(REFUND_TYPES)}")
        match = self.customer_match
        if match not in CUSTOMER_MATCH_STRATEGIES and not (
            match.startswith("fixed:") and match[len("fixed:") :].strip()
        ):
            raise InvalidSetting(
                "customer_match must be last_first, first_last, company, email or fixed:NAME"
            )
        if self.batch_min < 1:
            raise InvalidSetting("batch_min must be at least 1")
        if self.batch_min > self.batch_max:
            raise InvalidSetting(
                f"batch_min ({self.batch_min}) must be at most batch_max ({self.batch_max})"
            )
        if self.inventory_every_minutes < 1:
            raise InvalidSetting("inventory_every_minutes must be at least 1")
        unknown = [t for t in self.export_types if t not in EXPORT_TYPES]
        if unknown:
            raise InvalidSetting(
                f"export_transactions lists {unknown[0]!r}: give a comma list of "
                f"{', '.join(EXPORT_TYPES)} (or nothing, for no export)"
            )
        if self.export_every_minutes < 1:
            raise InvalidSetting("export_every_minutes must be at least 1")
        self._validate_posting()

    def _validate_posting(self) -> None:
        if self.create_missing_items not in CREATE_MISSING_ITEMS:
            raise InvalidSetting(
                f"create_missing_items must be one of {', '.join(CREATE_MISSING_ITEMS)}"
            )
        if self.create_missing_items != "off" and not self.income_account.strip():
            raise InvalidSetting(
                "set income_account first (the QuickBooks income account of the items the "
                "bridge creates), then create_missing_items"
            )
        if self.posting not in POSTING_MODES:
            raise InvalidSetting(f"posting must be one of {', '.join(POSTING_MODES)}")
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise InvalidSetting(
                f"timezone {self.timezone!r} is not a time zone name such as UTC, "
                "America/New_York or Europe/Berlin"
            ) from None
        if self.summary_delay_hours > MAX_SUMMARY_DELAY_HOURS:
            raise InvalidSetting(f"summary_delay_hours must be at most {MAX_SUMMARY_DELAY_HOURS}")

    @property
    def export_types(self) -> tuple[str, ...]:
        """The transaction types export_transactions names, each once, in its order."""
        return tuple(dict.fromkeys(_split(self.export_transactions)))

    def as_dict(self) -> dict[str, str | int]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> CompanySettings:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})  # type: ignore[arg-type]


# What each setting means, one line each (`company set --help`, docs/operations.md).
SETTING_MEANINGS = {
    "txn_type": "what a web order becomes: " + ", ".join(TXN_TYPES),
    "refund_type": "what a refund becomes: " + ", ".join(REFUND_TYPES),
    "customer_match": "how customers are named: "
    + ", ".join(CUSTOMER_MATCH_STRATEGIES)
    + " or fixed:NAME",
    "shipping_item": "the QuickBooks item for shipping lines",
    "discount_item": "the QuickBooks item for discount lines",
    "tax_item": "the QuickBooks item for sales tax lines",
    "batch_min": "orders a run takes at least (when that many wait), however slow QuickBooks is",
    "batch_max": "orders a run takes at most; between the two it follows QuickBooks' speed",
    "inventory_every_minutes": "how often a run also queries inventory",
    "orders_per_message": "orders per qbXML message: 0 adaptive, 1 strictly one",
    "export_transactions": "QuickBooks transactions read back out for the channels, a comma "
    "list of " + ", ".join(EXPORT_TYPES) + "; empty: none",
    "export_every_minutes": "how often a run also reads those transactions",
    "create_missing_items": "an unknown SKU: off (the order fails) or non_inventory (the "
    "bridge adds it as a non-inventory item)",
    "income_account": "the QuickBooks income account of the items the bridge adds",
    "posting": "individual (one transaction per order) or daily_summary (one sales receipt "
    "and one credit memo per day and channel)",
    "timezone": "the company's time zone (IANA name): when a day is over for daily summaries",
    "summary_customer": "the customer of daily summaries; empty: the channel's name + ' Sales'",
    "summary_delay_hours": "how long after a day is over its daily summary is posted",
}

# Posting rules (domain/posting.py, domain/summaries.py).
CREATE_MISSING_ITEMS = ("off", "non_inventory")
POSTING_MODES = ("individual", "daily_summary")
MAX_SUMMARY_DELAY_HOURS = 24 * 14
_MAY_BE_EMPTY = frozenset({"income_account", "summary_customer"})
_LOWER_CASE = frozenset({"create_missing_items", "posting"})


def _split(text: str) -> list[str]:
    return [part.strip().lower() for part in text.split(",") if part.strip()]


def _export_list(raw: str) -> str:
    """export_transactions as stored: lower case, each type once, in EXPORT_TYPES' order
    (an unknown one last, for validate() to name)."""
    given = dict.fromkeys(_split(raw))
    return ",".join(
        [t for t in EXPORT_TYPES if t in given] + [t for t in given if t not in EXPORT_TYPES]
    )


@dataclass(frozen=True, slots=True)
class CompanyFile:
    """What identifies an open QuickBooks company file: the FileID the Web Connector
    stamped in it, its company name, its path. A copy of a file keeps FileID and name, so
    the path counts too. "" where QuickBooks did not say."""

    file_id: str = ""
    company_name: str = ""
    path: str = ""

    def differences(self, other: CompanyFile) -> list[str]:
        """What tells ``other`` apart from this file (only what both know is compared)."""
        found = []
        if self.file_id and other.file_id and self.file_id.upper() != other.file_id.upper():
            found.append("FileID")
        if (
            self.company_name
            and other.company_name
            and self.company_name.casefold() != other.company_name.casefold()
        ):
            found.append("company name")
        if self.path and other.path and _path_key(self.path) != _path_key(other.path):
            found.append("path")
        return found

    def describe(self) -> str:
        parts = [f"'{self.company_name}'" if self.company_name else "a company file"]
        if self.path:
            parts.append(f"at {self.path}")
        if self.file_id:
            parts.append(f"(FileID {self.file_id})")
        return " ".join(parts)


def _path_key(path: str) -> str:
    """Windows paths compare without case, and either slash."""
    return path.replace("/", "\\").casefold()


@dataclass(frozen=True, slots=True)
class Company:
    """A QuickBooks company file the bridge serves: one Web Connector login."""

    id: int
    name: str
    username: str
    settings: CompanySettings
    owner_id: str
    file_id: str
    qbxml_version: str | None = None
    company_file: str | None = None
    # QuickBooks' measured seconds per request (moving average), for pacing.
    seconds_per_request: float | None = None
    # The company file this company is paired with (at its first run); None before.
    paired_file: CompanyFile | None = None
