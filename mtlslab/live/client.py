"""A real HTTP-over-TLS client that reports what it observed, including TLS alerts and when they came.

It presents a certificate (or none), sends one request and reads the answer. A TLS alert is reported with
its name, number and the moment the client noticed it: during the handshake (TLS 1.2) or at the first read
after a handshake it believed successful (TLS 1.3, RFC 8446 §4.4.2.4). If the server's alert — or its early
answer to a request too large to read (431, 413) — races the client's write, the client still reads it
rather than reporting a broken pipe.

Any server, even a hostile one, gets a bounded client: ``timeout`` bounds the whole exchange (handshake,
write and every read together, not each read), a response head is read up to :data:`MAX_HEAD` bytes and a
body up to :data:`MAX_BODY` (the prefix is kept, with the length when the server declared one). An answer
that is not HTTP/1.1 — HTTP/0.9, garbage, a connection closed mid-head, a head too large — is an
:class:`Observed` whose ``error`` says so and quotes the first bytes (escaped), never an exception.
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
    "MAX_BODY",
    "MAX_HEAD",
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

#: The most bytes of a response head (status line and header fields) the client reads: a longer head is a
#: malformed answer (h11 would otherwise buffer without end).
MAX_HEAD = 64 * 1024
#: The most bytes of a response body the client keeps; it stops reading there (``Observed.truncated``).
MAX_BODY = 1024 * 1024
#: How many of the first bytes received a malformed answer's error quotes.
_QUOTED = 64

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
    """What the client saw on the wire.

    ``error`` is a failure that is neither an alert nor a response (reset, timeout, an answer that is not
    HTTP/1.1); with a ``status`` it says why the body is incomplete. ``truncated``: the body was longer than
    :data:`MAX_BODY` and only its prefix is in ``body``; ``body_length`` is the body's full length in bytes
    when known (read whole, or declared by ``Content-Length``)."""

    tls_alert: TlsAlert | None = None
    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    error: str = ""
    elapsed: float = 0.0
    truncated: bool = False
    body_length: int | None = None

    def header(self, name: str) -> str | None:
        """All values of ``name`` joined with ", " (RFC 9110 §5.3), or None."""
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None

    def error_code(self) -> str | None:
        """The OAuth error code: from the first ``WWW-Authenticate`` challenge that has one; only when there is
        no challenge at all, from a JSON body's ``error`` member (a server without a challenge, like 3scale
        APIcast). None without either: challenges that carry no error mean none (RFC 6750 §3.1), whatever
        the body says."""
        www = self.header("WWW-Authenticate")
        if www and www.strip():
            with contextlib.suppress(ChallengeError):
                for found in parse_www_authenticate(www):
                    if found.error:
                        return found.error
            return None
        if self.truncated or not self.body.lstrip().startswith("{"):
            return None
        try:
            data = json.loads(self.body)
        except (ValueError, RecursionError):  # not JSON, or nested beyond the parser's depth
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


class _Clock:
    """One deadline for a whole exchange: each blocking call gets only the time that is left."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.started = time.monotonic()
        self.end = self.started + timeout

    def arm(self, sock: socket.socket) -> None:
        """Give ``sock`` the time left; :class:`TimeoutError` when none is."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        sock.settimeout(left)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def expired(self, stage: str) -> Observed:
        return Observed(
            error=f"{stage}: no answer within {self.timeout:g} s (the limit for the whole request)",
            elapsed=self.elapsed(),
        )


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
    by the same context) it offers to resume that TLS session. ``timeout`` bounds the whole exchange. A connection that cannot be opened raises :class:`OSError`; anything after that — an alert, a
    reset, a timeout, an answer that is not HTTP/1.1 — is returned as an :class:`Observed`.
    """
    if context is None:
        if ca is None:
            raise TypeError(
                "send() needs ca= (the CA to trust) or context= (a ready client context)"
            )
        context = client_context(ca=ca, identity=identity, version=version)
    clock = _Clock(timeout)
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
            clock.arm(tls)
            tls.do_handshake()
        except TimeoutError:
            return clock.expired("handshake")
        except ssl.SSLError as exc:
            return _failed(exc, "handshake", clock)
        except OSError as exc:
            return Observed(error=f"handshake: {exc}", elapsed=clock.elapsed())
        try:
            _write(tls, _encode(request), clock)
        except TimeoutError:
            return clock.expired("write")
        except (ssl.SSLError, OSError) as exc:
            # The alert may already be in our receive buffer: read it rather than report the broken pipe.
            return _read_after_failed_write(tls, exc, clock)
        return _read_response(tls, clock)
    finally:
        with contextlib.suppress(OSError):
            tls.close()


def _write(tls: ssl.SSLSocket, data: bytes, clock: _Clock) -> None:
    view = memoryview(data)
    while view:
        clock.arm(tls)
        view = view[tls.send(view) :]


def _failed(
    exc: BaseException, when: Literal["handshake", "first_read"], clock: _Clock
) -> Observed:
    alert = alert_from_error(exc, when)
    if alert is not None:
        return Observed(tls_alert=alert, elapsed=clock.elapsed())
    return Observed(error=f"{when}: {type(exc).__name__}: {exc}", elapsed=clock.elapsed())


def _read_after_failed_write(tls: ssl.SSLSocket, exc: BaseException, clock: _Clock) -> Observed:
    """The server may have answered before we finished writing — a TLS alert (a refused handshake, seen by
    TLS 1.3 clients only now) or an HTTP answer to a request it stopped reading (431, 413): read it."""
    observed = _read_response(tls, clock)
    if observed.tls_alert is not None or observed.status is not None:
        return observed
    if observed.error == CLOSED_WITHOUT_ALERT:
        return observed
    return Observed(error=f"write: {type(exc).__name__}: {exc}", elapsed=clock.elapsed())


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


class _Reading:
    """The state of reading one answer: the head once parsed, the body's prefix and length, the first bytes."""

    def __init__(self, clock: _Clock) -> None:
        self.clock = clock
        self.head: h11.Response | None = None
        self.body = bytearray()
        self.length = 0  # body bytes received
        self.first = bytearray()  # the first bytes received, quoted when the answer is not HTTP
        self.ragged = False  # the stream ended without close_notify

    def observed(self, *, error: str = "", truncated: bool = False) -> Observed:
        """What was read: the answer (complete, or with ``error`` saying why not), or only ``error``."""
        if self.head is None:
            if not self.first and not error:
                error = (
                    CLOSED_WITHOUT_ALERT if self.ragged else "connection closed without a response"
                )
            return Observed(error=error, elapsed=self.clock.elapsed())
        declared = _content_length(self.head)
        return Observed(
            status=self.head.status_code,
            headers=tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in _raw(self.head)),
            body=self.body.decode("utf-8", "replace"),
            error=error,
            elapsed=self.clock.elapsed(),
            truncated=truncated,
            body_length=declared if truncated or error else self.length,
        )

    def malformed(self, why: str) -> Observed:
        """An answer h11 cannot read, described with its first bytes (``repr``: escaped, never raw)."""
        if self.head is not None:
            return self.observed(error=f"incomplete answer: {why}")
        if not self.first:
            return self.observed()
        return self.observed(
            error=f"no readable HTTP/1.1 answer: {why}; it began {bytes(self.first)!r}"
        )


def _raw(head: h11.Response) -> list[tuple[bytes, bytes]]:
    """The header fields with their names as the server spelled them."""
    return list(head.headers.raw_items())


def _content_length(head: h11.Response) -> int | None:
    for name, value in head.headers:
        if name == b"content-length" and value.isdigit():
            return int(value)
    return None


def _read_response(tls: ssl.SSLSocket, clock: _Clock) -> Observed:
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
    conn.send(
        h11.Request(method="GET", target="/", headers=[("Host", "x")])
    )  # put h11 in the response state
    conn.send(h11.EndOfMessage())
    reading = _Reading(clock)
    while True:
        try:
            event = conn.next_event()
        except h11.ProtocolError as exc:  # not HTTP, cut short, or a head beyond MAX_HEAD
            too_long = getattr(exc, "error_status_hint", None) == 431
            return reading.malformed(
                f"a response head longer than {MAX_HEAD} bytes" if too_long else str(exc)
            )
        if event is h11.NEED_DATA:
            try:
                clock.arm(tls)
                data = tls.recv(65536)
            except TimeoutError:
                expired = clock.expired("read")
                return reading.observed(error=expired.error) if reading.head else expired
            except ssl.SSLEOFError:  # closed without close_notify: the end all the same
                data = b""
                reading.ragged = True
            except ssl.SSLError as exc:
                if not reading.first and reading.head is None:
                    return _failed(exc, "first_read", clock)
                return reading.malformed(f"read: {exc}")
            except OSError as exc:
                return reading.malformed(f"read: {type(exc).__name__}: {exc}")
            if len(reading.first) < _QUOTED:
                reading.first += data[: _QUOTED - len(reading.first)]
            conn.receive_data(data)
            continue
        if isinstance(event, h11.Response):
            reading.head = event
        elif isinstance(event, h11.Data):
            reading.length += len(event.data)
            reading.body += event.data[: max(0, MAX_BODY - len(reading.body))]
            if reading.length > MAX_BODY:
                return reading.observed(truncated=True)
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            return reading.observed()
