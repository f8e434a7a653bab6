"""A real HTTP-over-TLS client that reports what it observed, including TLS alerts and when they came.

It presents a certificate (or none), sends one request and reads the answer. A TLS alert is reported with
its name, number and the moment the client noticed it: during the handshake (TLS 1.2) or at the first read
after a handshake it believed successful (TLS 1.3, RFC 8446 §4.4.2.4), even when it races the client's
write, as a server's early answer to a request too large to read (431, 413) may.

Any server, even a hostile one, gets a bounded client: ``timeout`` bounds the whole exchange (handshake,
write and every read together, not each read), a response head is read up to :data:`MAX_HEAD` bytes and a
body up to :data:`MAX_BODY` (the prefix is kept, with the length when the server declared one). An answer
that is not HTTP/1.1 — HTTP/0.9, garbage, a connection closed mid-head, a head too large — is an
:class:`Observed` whose ``error`` says so and quotes the first bytes (escaped), never an exception.
"""

from __future__ import annotations

import contextlib
import json
import re
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

#: The error when a server closes after the handshake with no answer and no TLS alert, not even
#: close_notify (RFC 8446 §6.1): what a client sees when a server's refusal alert is lost.
CLOSED_WITHOUT_ALERT = "connection closed without a TLS alert or a response after the handshake"

#: Response fields :meth:`Observed.wire` leaves out of its further fields.
FRAMING_FIELDS = frozenset(
    {"www-authenticate", "content-type"}  # the wire tuple holds them already
    | {"content-length", "connection", "transfer-encoding"}  # the framing
    | {"date", "server"}  # what a server adds of its own
)

#: The most bytes of a response head (status line and header fields) the client reads: a longer head
#: is a malformed answer (h11 would otherwise buffer without end).
MAX_HEAD = 64 * 1024
#: The most bytes of a response body the client keeps; it stops reading there (``truncated``).
MAX_BODY = 1024 * 1024
#: How many of the first bytes received a malformed answer's error quotes.
_QUOTED = 64

#: How OpenSSL names a TLS alert it received (``TLSV13_ALERT_CERTIFICATE_REQUIRED``).
_ALERT_REASON = re.compile("(TLSV13|TLSV1|SSLV3)_ALERT_")


def alert_from_error(
    error: BaseException, when: Literal["handshake", "first_read"]
) -> TlsAlert | None:
    """The TLS alert an :class:`ssl.SSLError` names (``TLSV13_ALERT_CERTIFICATE_REQUIRED``: 116), if any."""
    reason = getattr(error, "reason", None) or ""
    found = _ALERT_REASON.match(reason)
    name = reason[found.end() :].lower() if found else ""
    return TlsAlert(name=name, code=ALERTS[name], when=when) if name in ALERTS else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Observed:
    """What the client saw on the wire. ``error``: a failure that is neither an alert nor a response (reset,
    timeout, an answer that is not HTTP/1.1), or with a ``status`` why the body is incomplete.
    ``truncated``: the body was longer than :data:`MAX_BODY` and ``body`` holds its prefix; ``body_length``
    is its full length in bytes when known (read whole, or declared by ``Content-Length``)."""

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
        """The OAuth error code: from the first ``WWW-Authenticate`` challenge that has one; only without
        any challenge, from a JSON body's ``error`` member (as 3scale APIcast answers). None without either:
        challenges that carry no error mean none (RFC 6750 §3.1), whatever the body says."""
        www = self.header("WWW-Authenticate")
        if www and www.strip():
            with contextlib.suppress(ChallengeError):
                return next((c.error for c in parse_www_authenticate(www) if c.error), None)
            return None
        data: Any = None
        if not self.truncated and self.body.lstrip().startswith("{"):
            with contextlib.suppress(ValueError, RecursionError):  # not JSON, or nested too deep
                data = json.loads(self.body)
        error = data.get("error") if isinstance(data, dict) else None
        return error if isinstance(error, str) else None

    def wire(self) -> tuple[Any, ...]:
        """Comparable with :meth:`mtlslab.interpretations.Outcome.wire`: the further fields
        (``Cache-Control``, ``DPoP-Nonce``...) in the order they came, all but :data:`FRAMING_FIELDS`."""
        if self.tls_alert is not None:
            return ("tls", self.tls_alert.name, self.tls_alert.code, self.tls_alert.when)
        if self.status is None:
            return ("error", self.error)
        www, kind = self.header("WWW-Authenticate"), self.header("Content-Type")
        further = ((k, v) for k, v in self.headers if k.lower() not in FRAMING_FIELDS)
        return ("http", self.status, www, kind, self.body, *further)

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
        if self.tls_alert is not None or self.status is None:
            return f"(no HTTP response: {self.tls_alert or self.error})"
        lines = [f"HTTP/1.1 {self.status}"] + [f"{k}: {v}" for k, v in self.headers]
        return "\r\n".join(lines) + "\r\n\r\n" + self.body


def client_context(
    *, ca: CertificateAuthority | str | None, identity: Identity | None, version: TlsVersion
) -> ssl.SSLContext:
    """A client context that trusts ``ca`` (a lab CA, PEM text, or None: the system's trust store), pins
    ``version`` and presents ``identity`` if given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    pinned = ssl.TLSVersion.TLSv1_2 if version is TlsVersion.TLS1_2 else ssl.TLSVersion.TLSv1_3
    ctx.minimum_version = ctx.maximum_version = pinned
    if isinstance(ca, CertificateAuthority):
        ca.configure_trust(ctx)
    elif ca is None:
        ctx.load_default_certs()
    else:
        ctx.load_verify_locations(cadata=ca)
    if identity is not None:
        identity.configure_cert(ctx)
    return ctx


class _Clock:
    """One deadline for a whole exchange: each blocking call gets only the time that is left."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.started = time.monotonic()

    def arm(self, sock: socket.socket) -> None:
        """Give ``sock`` the time left; :class:`TimeoutError` when none is."""
        left = self.started + self.timeout - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        sock.settimeout(left)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def expired(self, stage: str) -> Observed:
        why = f"no answer within {self.timeout:g} s (the limit for the whole request)"
        return Observed(error=f"{stage}: {why}", elapsed=self.elapsed())


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

    The client trusts ``ca``, pins ``version`` and presents ``identity``; or does what a ready ``context``
    says. With ``session`` (made by the same context) it offers to resume that TLS session. A connection
    that cannot be opened raises :class:`OSError`; anything after that is an :class:`Observed`.
    """
    if context is None:
        if ca is None:
            raise TypeError(
                "send() needs ca= (the CA to trust) or context= (a ready client context)"
            )
        context = client_context(ca=ca, identity=identity, version=version)
    clock = _Clock(timeout)
    parts = urllib.parse.urlsplit(request.url)
    raw = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 443), timeout)
    tls = context.wrap_socket(
        raw,
        server_hostname=server_hostname,
        do_handshake_on_connect=False,
        suppress_ragged_eofs=False,  # an end without close_notify: CLOSED_WITHOUT_ALERT
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
            view = memoryview(_encode(request))
            while view:
                clock.arm(tls)
                view = view[tls.send(view) :]
        except TimeoutError:
            return clock.expired("write")
        except (ssl.SSLError, OSError) as exc:
            # The server may have answered before the write ended (an alert TLS 1.3 clients see only
            # now, or 431/413 to a request it stopped reading): read that, not the broken pipe.
            observed = _read_response(tls, clock)
            answered = observed.tls_alert is not None or observed.status is not None
            if answered or observed.error == CLOSED_WITHOUT_ALERT:
                return observed
            return Observed(error=f"write: {type(exc).__name__}: {exc}", elapsed=clock.elapsed())
        return _read_response(tls, clock)
    finally:
        with contextlib.suppress(OSError):
            tls.close()


def _failed(
    exc: BaseException, when: Literal["handshake", "first_read"], clock: _Clock
) -> Observed:
    alert = alert_from_error(exc, when)
    error = "" if alert is not None else f"{when}: {type(exc).__name__}: {exc}"
    return Observed(tls_alert=alert, error=error, elapsed=clock.elapsed())


def _encode(request: Request) -> bytes:
    length = [("Content-Length", str(len(request.body)))] if request.body else []
    fields = [("Host", request.host), *request.headers, *length, ("Connection", "close")]
    head = h11.Request(method=request.method, target=request.target, headers=fields)
    data = [h11.Data(data=request.body)] if request.body else []
    conn = h11.Connection(h11.CLIENT)
    return b"".join(conn.send(event) or b"" for event in (head, *data, h11.EndOfMessage()))


class _Reading:
    """The state of reading one answer: the head, the body's prefix and length, the first bytes."""

    def __init__(self, clock: _Clock) -> None:
        self.clock = clock
        self.head: h11.Response | None = None
        self.body = bytearray()
        self.length = 0  # body bytes received
        self.first = bytearray()  # the first bytes received, quoted when the answer is not HTTP
        self.ragged = False  # the stream ended without close_notify

    def observed(self, *, error: str = "", truncated: bool = False) -> Observed:
        """What was read: the answer (complete, or with ``error`` saying why not), or only ``error``."""
        head = self.head
        if head is None:
            closed = CLOSED_WITHOUT_ALERT if self.ragged else "connection closed without a response"
            error = error or ("" if self.first else closed)
            return Observed(error=error, elapsed=self.clock.elapsed())
        raw = head.headers.raw_items()  # the names as the server spelled them
        lengths = [int(v) for k, v in head.headers if k == b"content-length" and v.isdigit()]
        declared = next(iter(lengths), None)
        return Observed(
            status=head.status_code,
            headers=tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in raw),
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
        quoted = f"no readable HTTP/1.1 answer: {why}; it began {bytes(self.first)!r}"
        return self.observed(error=quoted)


def _read_response(tls: ssl.SSLSocket, clock: _Clock) -> Observed:
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
    # h11 reads a response once it has sent a request: one it believes sent
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    conn.send(h11.EndOfMessage())
    reading = _Reading(clock)
    while True:
        try:
            event = conn.next_event()
        except h11.ProtocolError as exc:  # not HTTP, cut short, or a head beyond MAX_HEAD
            too_long = getattr(exc, "error_status_hint", None) == 431
            why = f"a response head longer than {MAX_HEAD} bytes" if too_long else str(exc)
            return reading.malformed(why)
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
            reading.first += data[: max(0, _QUOTED - len(reading.first))]
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
