"""How a whole message fails: what the Web Connector reports when QuickBooks cannot answer."""

from __future__ import annotations

PARSE_ERROR_HRESULT = "0x80040400"
PARSE_ERROR_MESSAGE = "QuickBooks found an error when parsing the provided XML text stream."
COULD_NOT_START_HRESULT = "0x80040408"
COULD_NOT_START_MESSAGE = "Could not start QuickBooks."


class QuickBooksFailure(Exception):
    """QuickBooks could not process the message; the Web Connector reports hresult and message."""

    def __init__(self, hresult: str, message: str) -> None:
        super().__init__(f"{hresult}: {message}")
        self.hresult = hresult
        self.message = message


class QuickBooksParseError(QuickBooksFailure):
    """QuickBooks found an error when parsing the provided XML text stream."""

    def __init__(self, reason: str) -> None:
        super().__init__(PARSE_ERROR_HRESULT, PARSE_ERROR_MESSAGE)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.hresult}: {self.message} ({self.reason})"


class ResponseLost(Exception):
    """QuickBooks applied the message, but its response never reached the Web Connector."""

    def __init__(self, response: str) -> None:
        super().__init__("the response to this message was lost")
        self.response = response
