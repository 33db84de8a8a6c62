"""Per-company settings (docs/operations.md) with their defaults and validation."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from qbwc_bridge.errors import BridgeError

TXN_TYPES = ("invoice", "sales_receipt", "sales_order")
REFUND_TYPES = ("credit_memo",)
CUSTOMER_MATCH_STRATEGIES = ("last_first", "first_last", "company", "email")


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
        else:
            value = raw.strip()
            if not value:
                raise InvalidSetting(f"{key} must not be empty")
        updated = dataclasses.replace(self, **{key: value})  # type: ignore[arg-type]
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
        if not 1 <= self.batch_min <= self.batch_max:
            raise InvalidSetting("batch_min must be at least 1 and at most batch_max")
        if self.inventory_every_minutes < 1:
            raise InvalidSetting("inventory_every_minutes must be at least 1")

    def as_dict(self) -> dict[str, str | int]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> CompanySettings:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})  # type: ignore[arg-type]


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
