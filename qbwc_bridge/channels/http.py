"""The rules every outbound request follows, in one place so no channel client can forget one.

- Timeouts: connect 10 s, read 60 s (per read, not for the whole body).
- Bodies are streamed and bounded: past ``max_bytes`` the request fails (or, for short
  answers shown to the operator, the body is cut).
- Redirects are followed only to the scheme, host and port first asked, at most 5.
- TLS is verified; plain ``http://`` is allowed only to localhost, 127.0.0.1 and ::1.
- Every request says who sends it: ``User-Agent: qbwc-bridge/VERSION``.
- No proxy, certificate or ``.netrc`` settings are taken from the environment: what the
  bridge sends, and where, depends only on the channel's settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import httpx

from qbwc_bridge import __version__
from qbwc_bridge.errors import BridgeError

USER_AGENT = f"qbwc-bridge/{__version__}"
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
MAX_REDIRECTS = 5
EXCERPT_CHARS = 200

_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class OutboundFailure(BridgeError):
    """An outbound request got no answer that can be used."""

    # A later attempt of the same request may succeed.
    retryable = False

    def __init__(self, url: httpx.URL | str, problem: str) -> None:
        self.url = redact(url)
        self.problem = problem
        super().__init__(f"{self.url}: {problem}")


class UnsafeUrl(OutboundFailure):
    """The bridge does not send requests to this URL."""


class Unreachable(OutboundFailure):
    """No answer came: the connection failed or timed out."""

    retryable = True


class RedirectRefused(OutboundFailure):
    """A redirect to another scheme, host or port, or one too many."""


class BodyTooLarge(OutboundFailure):
    """The answer's body is larger than the bridge reads."""

    def __init__(self, url: httpx.URL | str, limit: int, status: int, content_type: str) -> None:
        self.limit = limit
        self.status = status
        self.content_type = content_type
        super().__init__(
            url,
            f"the body is over {limit} bytes (HTTP {status}, {content_type or 'no content type'})",
        )


def redact(url: httpx.URL | str) -> str:
    """The URL without user name and password, fit for messages and logs."""
    try:
        parsed = httpx.URL(url) if isinstance(url, str) else url
    except httpx.InvalidURL:
        return "(an invalid URL)"
    return str(parsed.copy_with(userinfo=b"")) if parsed.userinfo else str(parsed)


def check_url(url: str) -> httpx.URL:
    """``url`` parsed, if the bridge may send requests to it; else UnsafeUrl, saying why."""
    try:
        parsed = httpx.URL(url.strip())
    except httpx.InvalidURL:
        raise UnsafeUrl(url, "not a valid URL") from None
    if parsed.scheme not in _DEFAULT_PORTS or not parsed.host:
        raise UnsafeUrl(parsed, "only http:// and https:// URLs with a host name are supported")
    if parsed.userinfo:
        raise UnsafeUrl(
            parsed, "the URL holds a user name or password; give them as their own settings"
        )
    if parsed.scheme == "http" and parsed.host not in LOCAL_HOSTS:
        raise UnsafeUrl(
            parsed,
            "plain http:// is allowed only to localhost, 127.0.0.1 and ::1; use https://",
        )
    return parsed


def origin(url: httpx.URL) -> tuple[str, str, int]:
    """Scheme, host and port, with the scheme's default port filled in."""
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme, 0)


def same_origin(first: httpx.URL, second: httpx.URL) -> bool:
    return origin(first) == origin(second)


def one_line(text: str, limit: int) -> str:
    """``text`` with its whitespace runs folded to single spaces, cut to ``limit`` characters."""
    folded = " ".join(text.split())
    return folded if len(folded) <= limit else folded[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer with its whole (bounded) body."""

    url: httpx.URL
    status: int
    reason: str
    headers: httpx.Headers
    body: bytes
    links: Mapping[str, Mapping[str, str]]
    # The body was longer than asked for and was cut (only with ``truncate=True``).
    truncated: bool = False

    @property
    def content_type(self) -> str:
        return str(self.headers.get("content-type", ""))

    @property
    def media_type(self) -> str:
        """The content type without parameters, lower case: ``text/html``."""
        return self.content_type.split(";", 1)[0].strip().lower()

    def text(self, max_bytes: int | None = None) -> str:
        """The body (or its first ``max_bytes``) as text, in its declared charset or UTF-8."""
        body = self.body if max_bytes is None else self.body[:max_bytes]
        charset = _charset(self.content_type)
        try:
            return body.decode(charset, "replace")
        except LookupError:
            return body.decode("utf-8", "replace")

    def excerpt(self, limit: int = EXCERPT_CHARS) -> str:
        """The start of the body as one line of text."""
        return one_line(self.text(max_bytes=limit * 4), limit)

    def came_back(self) -> str:
        """What came back, for a message: status, content type and the body's start."""
        kind = self.content_type or "no content type"
        excerpt = self.excerpt()
        if not excerpt:
            return f"HTTP {self.status} ({kind}), empty body"
        return f"HTTP {self.status} ({kind}): {excerpt}"


def _charset(content_type: str) -> str:
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip(' "'):
            return value.strip(' "')
    return "utf-8"


class Closing:
    """``close()`` when a ``with`` block ends."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class Sent:
    """What a receiver answered a delivery: taken (2xx) or not, and what came back."""

    ok: bool
    status: int | None
    answer: str


class HttpClient(Closing):
    """Requests under the rules above; one connection pool, closed with ``close()``."""

    def __init__(
        self,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_redirects: int = MAX_REDIRECTS,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_redirects = max_redirects
        self._client = httpx.Client(
            timeout=httpx.Timeout(
                connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
            ),
            verify=True,
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": USER_AGENT},
        )

    def get(
        self,
        url: httpx.URL,
        *,
        max_bytes: int,
        auth: tuple[str, str] | None = None,
        accept: str = "*/*",
        truncate: bool = False,
    ) -> Reply:
        """GET ``url``, following same-origin redirects; the final answer, whatever its status.

        Raises Unreachable (no answer), RedirectRefused, or BodyTooLarge (unless
        ``truncate``: then the body is cut at ``max_bytes`` and the reply says so).
        """
        current = url
        for _ in range(self.max_redirects + 1):
            reply, location = self._get_once(current, max_bytes, auth, accept, truncate)
            if location is None:
                return reply
            target = current.join(location)
            if not same_origin(url, target):
                raise RedirectRefused(
                    url,
                    f"redirected to another scheme, host or port ({redact(target)}), not followed",
                )
            current = target
        raise RedirectRefused(url, f"more than {self.max_redirects} redirects, not followed")

    def _get_once(
        self,
        url: httpx.URL,
        max_bytes: int,
        auth: tuple[str, str] | None,
        accept: str,
        truncate: bool,
    ) -> tuple[Reply, str | None]:
        try:
            with self._client.stream("GET", url, auth=auth, headers={"Accept": accept}) as response:
                location = response.headers.get("location")
                if response.status_code in _REDIRECTS and location:
                    return self._reply(response, b"", False), location
                body, cut = self._read(response, max_bytes, truncate)
                return self._reply(response, body, cut), None
        except httpx.TimeoutException as exc:
            raise Unreachable(url, self._timeout_problem(exc)) from exc
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise Unreachable(url, f"no answer ({type(exc).__name__}: {exc})") from exc
        except httpx.HTTPError as exc:
            raise OutboundFailure(url, f"{type(exc).__name__}: {exc}") from exc

    def post(
        self,
        url: httpx.URL,
        body: bytes,
        *,
        headers: dict[str, str],
        max_bytes: int = 64 * 1024,
        auth: tuple[str, str] | None = None,
    ) -> Reply:
        """POST ``body`` to ``url``; the answer, whatever its status (its body cut at
        ``max_bytes``: only enough to show the operator). A redirect is not followed: a
        receiver that moved must be configured anew."""
        try:
            with self._client.stream(
                "POST", url, content=body, auth=auth, headers=headers
            ) as response:
                answer, cut = self._read(response, max_bytes, True)
                return self._reply(response, answer, cut)
        except httpx.TimeoutException as exc:
            raise Unreachable(url, self._timeout_problem(exc)) from exc
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise Unreachable(url, f"no answer ({type(exc).__name__}: {exc})") from exc
        except httpx.HTTPError as exc:
            raise OutboundFailure(url, f"{type(exc).__name__}: {exc}") from exc

    def _timeout_problem(self, exc: httpx.TimeoutException) -> str:
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            return f"could not connect within {self.connect_timeout:g} s"
        return f"no answer within {self.read_timeout:g} s ({type(exc).__name__})"

    @staticmethod
    def _read(response: httpx.Response, max_bytes: int, truncate: bool) -> tuple[bytes, bool]:
        declared = response.headers.get("content-length", "")
        if not truncate and declared.isdigit() and int(declared) > max_bytes:
            raise BodyTooLarge(
                response.url,
                max_bytes,
                response.status_code,
                response.headers.get("content-type", ""),
            )
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                if not truncate:
                    raise BodyTooLarge(
                        response.url,
                        max_bytes,
                        response.status_code,
                        response.headers.get("content-type", ""),
                    )
                chunks.append(chunk[: max_bytes - (size - len(chunk))])
                return b"".join(chunks), True
            chunks.append(chunk)
        return b"".join(chunks), False

    @staticmethod
    def _reply(response: httpx.Response, body: bytes, truncated: bool) -> Reply:
        return Reply(
            url=response.url,
            status=response.status_code,
            reason=response.reason_phrase,
            headers=response.headers,
            body=body,
            links={rel: link for rel, link in response.links.items() if rel},
            truncated=truncated,
        )

    def send_json(
        self,
        url: httpx.URL,
        body: bytes,
        *,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        label: str = "",
    ) -> Sent:
        """POST a JSON body for delivery: taken on a 2xx; otherwise what came back, for the
        operator (prefixed with ``label``)."""
        prefix = f"{label}: " if label else ""
        try:
            reply = self.post(
                url,
                body,
                headers={"Content-Type": "application/json", **(headers or {})},
                auth=auth,
            )
        except OutboundFailure as error:
            return Sent(False, None, f"{prefix}POST {redact(url)}: {error.problem}")
        ok = 200 <= reply.status < 300
        return Sent(
            ok, reply.status, "" if ok else f"{prefix}POST {redact(url)}: {reply.came_back()}"
        )

    def close(self) -> None:
        self._client.close()
