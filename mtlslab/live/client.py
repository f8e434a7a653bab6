"""A real HTTP-over-TLS client that reports what it observed, including TLS alerts and when they came.

It presents a certificate (or none), sends one request and reads the answer. A TLS alert is reported with
its name, number and the moment the client noticed it: during the handshake (TLS 1.2) or at the first read
after a handshake it believed successful (TLS 1.3, RFC 8446 §4.4.2.4). If the server's alert — or its early
answer to a request too large to read (431, 413) — races the client's write, the client still reads it
rather than reporting a broken pipe.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Literal

import h11

from mtlslab.challenge import ChallengeError, parse_www_authenticate
from mtlslab.pki import CertificateAuthority, Identity
from mtlslab.scenarios import Request
from mtlslab.tls import ALERTS, TlsAlert, TlsVersion

__all__ = [
    "CLOSED_WITHOUT_ALERT",
    "FRAMING_FIELDS",
    "Observed",
    "alert_from_error",
    "client_context",
    "send",
]

#: The error of a connection the server closed after the handshake without an answer and without any TLS
#: alert, not even close_notify (RFC 8446 §6.1): what a client sees when a server's refusal alert is lost.
CLOSED_WITHOUT_ALERT = "connection closed without a TLS alert or a response after the handshake"

#: Response fields :meth:`Observed.wire` leaves out of its further fields: those the wire tuple already holds
#: (``WWW-Authenticate``, ``Content-Type``), the framing, and what a server adds of its own.
FRAMING_FIELDS = frozenset(
    (
        "www-authenticate",
        "content-type",
        "content-length",
        "connection",
        "transfer-encoding",
        "date",
        "server",
    )
)

_PREFIXES = ("TLSV13_ALERT_", "TLSV1_ALERT_", "SSLV3_ALERT_")


def alert_from_error(
    error: BaseException, when: Literal["handshake", "first_read"]
) -> TlsAlert | None:
    """The TLS alert an :class:`ssl.SSLError` reports (``TLSV13_ALERT_CERTIFICATE_REQUIRED`` → 116), if any."""
    reason = getattr(error, "reason", None) or ""
    for prefix in _PREFIXES:
        if reason.startswith(prefix):
            name = reason[len(prefix) :].lower()
            if name in ALERTS:
                return TlsAlert(name=name, code=ALERTS[name], when=when)
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Observed:
    """What the client saw on the wire."""

    tls_alert: TlsAlert | None = None
    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    error: str = ""  # a failure that is neither an alert nor a response (reset, timeout...)
    elapsed: float = 0.0

    def header(self, name: str) -> str | None:
        """All values of ``name`` joined with ", " (RFC 9110 §5.3), or None."""
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None

    def error_code(self) -> str | None:
        """The OAuth error code: from the first ``WWW-Authenticate`` challenge that has one, else from a JSON
        body's ``error`` member (a server without a challenge, like 3scale APIcast); None without either."""
        www = self.header("WWW-Authenticate")
        if www:
            with contextlib.suppress(ChallengeError):
                for found in parse_www_authenticate(www):
                    if found.error:
                        return found.error
        try:
            data = json.loads(self.body)
        except ValueError:
            return None
        error = data.get("error") if isinstance(data, dict) else None
        return error if isinstance(error, str) else None

    def wire(self) -> tuple[Any, ...]:
        """Comparable with :meth:`mtlslab.interpretations.Outcome.wire`: the further fields (``Cache-Control``,
        ``DPoP-Nonce``...) follow in the order they came, every field but :data:`FRAMING_FIELDS`."""
        if self.tls_alert is not None:
            return ("tls", self.tls_alert.name, self.tls_alert.code, self.tls_alert.when)
        if self.status is None:
            return ("error", self.error)
        return (
            "http",
            self.status,
            self.header("WWW-Authenticate"),
            self.header("Content-Type"),
            self.body,
            *((k, v) for k, v in self.headers if k.lower() not in FRAMING_FIELDS),
        )

    def summary(self) -> str:
        """``TLS certificate_required (116) at the first read``, ``401 …``."""
        if self.tls_alert is not None:
            return str(self.tls_alert)
        if self.status is None:
            return f"no answer ({self.error})"
        www = self.header("WWW-Authenticate")
        return f"{self.status}" + (f" WWW-Authenticate: {www}" if www else "")

    def http_text(self) -> str:
        """The response as received (or the alert)."""
        if self.tls_alert is not None:
            return f"(no HTTP response: {self.tls_alert})"
        if self.status is None:
            return f"(no HTTP response: {self.error})"
        lines = [f"HTTP/1.1 {self.status}"] + [f"{k}: {v}" for k, v in self.headers]
        return "\r\n".join(lines) + "\r\n\r\n" + self.body


def client_context(
    *, ca: CertificateAuthority, identity: Identity | None, version: TlsVersion
) -> ssl.SSLContext:
    """A client context that trusts the lab CA, pins ``version`` and presents ``identity`` if given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    pinned = ssl.TLSVersion.TLSv1_2 if version is TlsVersion.TLS1_2 else ssl.TLSVersion.TLSv1_3
    ctx.minimum_version = pinned
    ctx.maximum_version = pinned
    ca.configure_trust(ctx)
    if identity is not None:
        identity.configure_cert(ctx)
    return ctx


def send(
    request: Request,
    *,
    ca: CertificateAuthority | None = None,
    identity: Identity | None = None,
    version: TlsVersion = TlsVersion.TLS1_3,
    timeout: float = 5.0,
    context: ssl.SSLContext | None = None,
    server_hostname: str = "localhost",
    session: ssl.SSLSession | None = None,
) -> Observed:
    """Send ``request`` (its URL says where) over real TLS and report what came back.

    The client trusts ``ca``, pins ``version`` and presents ``identity``; or, with ``context``, does what that
    ready context says (``ca``, ``identity`` and ``version`` are then not used). With ``session`` (one made
    by the same context) it offers to resume that TLS session.
    """
    if context is None:
        if ca is None:
            raise TypeError(
                "send() needs ca= (the CA to trust) or context= (a ready client context)"
            )
        context = client_context(ca=ca, identity=identity, version=version)
    started = time.monotonic()
    parts = urllib.parse.urlsplit(request.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 443
    raw = socket.create_connection((host, port), timeout=timeout)
    tls = context.wrap_socket(
        raw,
        server_hostname=server_hostname,
        do_handshake_on_connect=False,
        suppress_ragged_eofs=False,  # an end without close_notify is told apart (CLOSED_WITHOUT_ALERT)
        session=session,
    )
    try:
        try:
            tls.do_handshake()
        except ssl.SSLError as exc:
            return _failed(exc, "handshake", started)
        except OSError as exc:
            return Observed(error=f"handshake: {exc}", elapsed=time.monotonic() - started)
        data = _encode(request)
        try:
            tls.sendall(data)
        except (ssl.SSLError, OSError) as exc:
            # The alert may already be in our receive buffer: read it rather than report the broken pipe.
            return _read_after_failed_write(tls, exc, started)
        return _read_response(tls, started)
    finally:
        with contextlib.suppress(OSError):
            tls.close()


def _failed(
    exc: BaseException, when: Literal["handshake", "first_read"], started: float
) -> Observed:
    alert = alert_from_error(exc, when)
    elapsed = time.monotonic() - started
    if alert is not None:
        return Observed(tls_alert=alert, elapsed=elapsed)
    return Observed(error=f"{when}: {type(exc).__name__}: {exc}", elapsed=elapsed)


def _read_after_failed_write(tls: ssl.SSLSocket, exc: BaseException, started: float) -> Observed:
    """The server may have answered before we finished writing — a TLS alert (a refused handshake, seen by
    TLS 1.3 clients only now) or an HTTP answer to a request it stopped reading (431, 413): read it."""
    observed = _read_response(tls, started)
    if observed.tls_alert is not None or observed.status is not None:
        return observed
    if observed.error == CLOSED_WITHOUT_ALERT:
        return observed
    return Observed(error=f"write: {type(exc).__name__}: {exc}", elapsed=time.monotonic() - started)


def _encode(request: Request) -> bytes:
    conn = h11.Connection(h11.CLIENT)
    headers = [("Host", request.host), *request.headers]
    if request.body:
        headers.append(("Content-Length", str(len(request.body))))
    headers.append(("Connection", "close"))
    out = (
        conn.send(h11.Request(method=request.method, target=request.target, headers=headers)) or b""
    )
    if request.body:
        out += conn.send(h11.Data(data=request.body)) or b""
    out += conn.send(h11.EndOfMessage()) or b""
    return out


def _read_response(tls: ssl.SSLSocket, started: float) -> Observed:
    conn = h11.Connection(h11.CLIENT)
    conn.send(
        h11.Request(method="GET", target="/", headers=[("Host", "x")])
    )  # put h11 in the response state
    conn.send(h11.EndOfMessage())
    response: h11.Response | None = None
    body = bytearray()
    first = True
    ragged = False  # the stream ended without close_notify
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:  # closed before answering, or not HTTP
            if response is None:
                break
            return Observed(error=f"read: {exc}", elapsed=time.monotonic() - started)
        if event is h11.NEED_DATA:
            try:
                data = tls.recv(65536)
            except ssl.SSLEOFError:
                data, ragged = b"", True  # closed without close_notify: the end all the same
            except ssl.SSLError as exc:
                if first:
                    return _failed(exc, "first_read", started)
                return Observed(error=f"read: {exc}", elapsed=time.monotonic() - started)
            except OSError as exc:
                return Observed(
                    error=f"read: {type(exc).__name__}: {exc}", elapsed=time.monotonic() - started
                )
            first = False
            conn.receive_data(data)
            continue
        if isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            break
    if response is None:
        error = CLOSED_WITHOUT_ALERT if ragged else "connection closed without a response"
        return Observed(error=error, elapsed=time.monotonic() - started)
    headers = tuple(
        (k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw_items()
    )
    return Observed(
        status=response.status_code,
        headers=headers,
        body=body.decode("utf-8", "replace"),
        elapsed=time.monotonic() - started,
    )
