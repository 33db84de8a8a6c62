"""The Web Connector's eight callbacks, named as Intuit names them, one line each into RunEngine."""

from __future__ import annotations

from typing import Any

from spyne import Array, Integer32, ServiceBase, Unicode, rpc

from qbwc_bridge.soap.guard import guarded, remote_address

String = Unicode
# Intuit's names and occurrence rules, so the WSDL we publish is Intuit's contract.
ArrayOfString = Array(String, type_name="ArrayOfString")
RequiredInt = Integer32(min_occurs=1)


class QBWebConnectorSvc(ServiceBase):  # type: ignore[misc]
    """Intuit's QBWebConnectorSvc contract (namespace http://developer.intuit.com/).

    spyne reads the parameter names off these signatures, so they are Intuit's, not ours.
    """

    @rpc(_returns=String)  # type: ignore[misc]
    def serverVersion(ctx: Any) -> str:  # noqa: N802, N805
        return guarded(ctx, "serverVersion", "", "", lambda e: e.server_version())

    @rpc(String, _returns=String)  # type: ignore[misc]
    def clientVersion(ctx: Any, strVersion: str | None) -> str:  # noqa: N802, N803, N805
        return guarded(ctx, "clientVersion", "", "", lambda e: e.client_version(strVersion or ""))

    @rpc(String, String, _returns=ArrayOfString)  # type: ignore[misc]
    def authenticate(ctx: Any, strUserName: str | None, strPassword: str | None) -> list[str]:  # noqa: N803, N805
        def call(engine: Any) -> list[str]:
            result = engine.authenticate(strUserName or "", strPassword or "", remote_address(ctx))
            return [result.ticket, result.answer]

        return guarded(ctx, "authenticate", "", ["", "nvu"], call)

    @rpc(String, String, String, String, RequiredInt, RequiredInt, _returns=String)  # type: ignore[misc]
    def sendRequestXML(  # noqa: N802
        ctx: Any,  # noqa: N805
        ticket: str | None,
        strHCPResponse: str | None,  # noqa: N803
        strCompanyFileName: str | None,  # noqa: N803
        qbXMLCountry: str | None,  # noqa: N803
        qbXMLMajorVers: int | None,  # noqa: N803
        qbXMLMinorVers: int | None,  # noqa: N803
    ) -> str:
        return guarded(ctx, "sendRequestXML", ticket, "", lambda e: e.next_request(
            ticket or "", strHCPResponse or "", strCompanyFileName or "", qbXMLCountry or "",
            qbXMLMajorVers or 0, qbXMLMinorVers or 0,
        ))

    @rpc(String, String, String, String, _returns=RequiredInt)  # type: ignore[misc]
    def receiveResponseXML(  # noqa: N802
        ctx: Any,  # noqa: N805
        ticket: str | None,
        response: str | None,
        hresult: str | None,
        message: str | None,
    ) -> int:
        return guarded(ctx, "receiveResponseXML", ticket, -1, lambda e: e.record_response(
            ticket or "", response or "", hresult or "", message or ""
        ))

    @rpc(String, String, String, _returns=String)  # type: ignore[misc]
    def connectionError(ctx: Any, ticket: str | None, hresult: str | None, message: str | None) -> str:  # noqa: N802, N805
        return guarded(ctx, "connectionError", ticket, "done", lambda e: e.connection_error(
            ticket or "", hresult or "", message or ""
        ))

    @rpc(String, _returns=String)  # type: ignore[misc]
    def getLastError(ctx: Any, ticket: str | None) -> str:  # noqa: N802, N805
        return guarded(ctx, "getLastError", ticket, "The service could not read its state; see its log.",
                       lambda e: e.last_error(ticket or ""))

    @rpc(String, _returns=String)  # type: ignore[misc]
    def closeConnection(ctx: Any, ticket: str | None) -> str:  # noqa: N802, N805
        return guarded(ctx, "closeConnection", ticket, "Closed.", lambda e: e.close(ticket or ""))
