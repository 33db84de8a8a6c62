"""The Web Connector's eight callbacks, named as Intuit names them, one line each into RunEngine."""

from __future__ import annotations

from typing import Any

from spyne import Application, Array, Integer32, ServiceBase, Unicode, rpc

from qbwc_bridge.engine.run import NOT_VALID_USER, RunEngine
from qbwc_bridge.soap.guard import guarded, remote_address


class BridgeApplication(Application):  # type: ignore[misc]
    """spyne's Application with the RunEngine its callbacks call (``ctx.app.engine``)."""

    def __init__(self, services: list[type], engine: RunEngine | None, **options: Any) -> None:
        super().__init__(services, **options)
        self.engine = engine


String = Unicode
# Intuit's names and occurrence rules, so the WSDL we publish is Intuit's contract.
ArrayOfString = Array(String, type_name="ArrayOfString")
RequiredInt = Integer32(min_occurs=1)


def _login_outcome(answer: list[str]) -> str:
    """The callback's log line says a refused login was refused (logins' line says why)."""
    return "login-refused" if answer[1:] == [NOT_VALID_USER] else "ok"


class QBWebConnectorSvc(ServiceBase):  # type: ignore[misc]
    """Intuit's QBWebConnectorSvc contract (namespace http://developer.intuit.com/).

    spyne reads the parameter names off these signatures, so they are Intuit's, not ours.
    """

    @rpc(_returns=String)  # type: ignore[untyped-decorator]
    def serverVersion(ctx: Any) -> str:
        return guarded(ctx, "serverVersion", "", "", lambda e: e.server_version())

    @rpc(String, _returns=String)  # type: ignore[untyped-decorator]
    def clientVersion(ctx: Any, strVersion: str | None) -> str:
        return guarded(
            ctx,
            "clientVersion",
            "",
            "",
            lambda e: e.client_version(strVersion or "", remote_address(ctx)),
        )

    @rpc(String, String, _returns=ArrayOfString)  # type: ignore[untyped-decorator]
    def authenticate(ctx: Any, strUserName: str | None, strPassword: str | None) -> list[str]:
        def call(engine: RunEngine) -> list[str]:
            result = engine.authenticate(strUserName or "", strPassword or "", remote_address(ctx))
            return [result.ticket, result.answer]

        # A failure here is ours (database down, a crash), not a wrong password: "busy"
        # has the Web Connector try again later instead of reporting bad credentials.
        return guarded(ctx, "authenticate", "", ["", "busy"], call, judge=_login_outcome)

    @rpc(String, String, String, String, RequiredInt, RequiredInt, _returns=String)  # type: ignore[untyped-decorator]
    def sendRequestXML(
        ctx: Any,
        ticket: str | None,
        strHCPResponse: str | None,
        strCompanyFileName: str | None,
        qbXMLCountry: str | None,
        qbXMLMajorVers: int | None,
        qbXMLMinorVers: int | None,
    ) -> str:
        return guarded(
            ctx,
            "sendRequestXML",
            ticket,
            "",
            lambda e: e.next_request(
                ticket or "",
                strHCPResponse or "",
                strCompanyFileName or "",
                qbXMLCountry or "",
                qbXMLMajorVers or 0,
                qbXMLMinorVers or 0,
            ),
        )

    @rpc(String, String, String, String, _returns=RequiredInt)  # type: ignore[untyped-decorator]
    def receiveResponseXML(
        ctx: Any,
        ticket: str | None,
        response: str | None,
        hresult: str | None,
        message: str | None,
    ) -> int:
        return guarded(
            ctx,
            "receiveResponseXML",
            ticket,
            -1,
            lambda e: e.record_response(ticket or "", response or "", hresult or "", message or ""),
        )

    @rpc(String, String, String, _returns=String)  # type: ignore[untyped-decorator]
    def connectionError(
        ctx: Any, ticket: str | None, hresult: str | None, message: str | None
    ) -> str:
        return guarded(
            ctx,
            "connectionError",
            ticket,
            "done",
            lambda e: e.connection_error(ticket or "", hresult or "", message or ""),
        )

    @rpc(String, _returns=String)  # type: ignore[untyped-decorator]
    def getLastError(ctx: Any, ticket: str | None) -> str:
        return guarded(
            ctx,
            "getLastError",
            ticket,
            "The service could not read its state; see its log.",
            lambda e: e.last_error(ticket or ""),
            explain=str,
        )

    @rpc(String, _returns=String)  # type: ignore[untyped-decorator]
    def closeConnection(ctx: Any, ticket: str | None) -> str:
        return guarded(ctx, "closeConnection", ticket, "Closed.", lambda e: e.close(ticket or ""))
