"""The bridge's exceptions; each docstring is its default message."""

from __future__ import annotations


class BridgeError(Exception):
    """Something went wrong in qbwc-bridge."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self.args[0])


class OrderRejected(BridgeError):
    """An order is not valid."""

    def __init__(self, order_number: str, field: str, problem: str) -> None:
        self.order_number = order_number
        self.field = field
        self.problem = problem
        label = order_number or "(no OrderNumber)"
        super().__init__(f"order {label}: {field}: {problem}")

    def as_dict(self) -> dict[str, str]:
        return {"order_number": self.order_number, "field": self.field, "problem": self.problem}


class UnknownCompany(BridgeError):
    """No company of that name is registered: add it with `qbwc-bridge company add`."""


class CompanyExists(BridgeError):
    """A company with that name or username is already registered."""


class InvalidTicket(BridgeError):
    """The ticket is not valid (unknown, expired or closed): let the Web Connector start a new run."""


class LeaseLost(BridgeError):
    """The run no longer holds the lease on its orders; another run took them over."""


class MalformedXml(BridgeError):
    """A document from outside could not be read as XML."""

    KIND = "XML"

    def __init__(self, problem: str, content: bytes | str = b"") -> None:
        raw = content if isinstance(content, str) else content.decode("utf-8", "replace")
        self.problem = problem
        self.excerpt = raw[:200]
        super().__init__(f"Malformed {self.KIND}: {problem}")


class MalformedQbxml(MalformedXml):
    """QuickBooks' response could not be read as qbXML."""

    KIND = "qbXML"


class StoreUnavailable(BridgeError):
    """The database is not reachable; check QBWC_BRIDGE_DATABASE_URL and that the server runs."""


class WrongCompanyFile(BridgeError):
    """QuickBooks has another company file open than the one this company is paired with."""


class UnsupportedQuickBooks(BridgeError):
    """This QuickBooks edition or version is not supported."""
