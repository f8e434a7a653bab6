"""A real TLS resource server on loopback that decides nothing itself.

Each request is turned into the engine's :class:`~mtlslab.scenarios.Request`, evaluated by
:func:`mtlslab.rs.evaluate`, and answered by an :class:`~mtlslab.interpretations.Interpretation` —
exactly the calls the simulation makes, so the wire can be compared with the model.

TLS is pyOpenSSL's, because Python's :mod:`ssl` cannot accept a client certificate without validating it
(``optional-no-ca``, RFC 8705 §2.2 / §6.2). The server is threaded and bounded: a cap on concurrent
connections, on header and body size, and on the time a connection may take; a handshake that fails is
closed gracefully (write side shut, what the client already sent drained) so the client reliably sees the
TLS alert rather than a TCP reset.

:class:`Origin` is the same server without TLS, behind a TLS-terminating proxy (:mod:`mtlslab.live.proxy`):
it sees the proxy's RFC 9440 ``Client-Cert`` header and trusts it only if the deployment says so.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import h11
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL, crypto

from mtlslab.findings import Finding
from mtlslab.interpretations import Interpretation, Outcome, reason_phrase
from mtlslab.pki import LAB_NOW, Identity, Lab
from mtlslab.rs import (
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    Decision,
    Jwks,
    config_for,
    evaluate,
    head_size,
    size_decision,
)
from mtlslab.scenarios import Deployment, Request
from mtlslab.tls import ClientAuth, TlsVersion
from mtlslab.tokens import AuthorizationServer

__all__ = [
    "HEAD_SLACK",
    "Limits",
    "Listener",
    "LiveServer",
    "Origin",
    "is_loopback",
    "is_wildcard",
    "listen_host",
    "peer_der",
    "server_context",
    "tls_recv",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Bounds on what one client can make the server hold; every one is tested.

    * ``max_connections`` (64): connections served at once. One more is accepted and waits up to
      ``connection_timeout`` for a slot — served when one frees, else closed unanswered — while further ones
      wait in the listen backlog (128).
    * ``max_header_bytes`` (16 KiB, :data:`mtlslab.rs.MAX_HEADER_BYTES`): the request line and header fields
      as :func:`mtlslab.rs.head_size` counts them. Beyond it the engine's ``headers_too_large`` answer goes
      out (431, RFC 6585 §5) — the same bytes the simulation predicts. The HTTP parser itself stops buffering
      an unfinished header section at this limit plus :data:`HEAD_SLACK`, for the framing fields the count
      leaves out.
    * ``max_body_bytes`` (64 KiB, :data:`mtlslab.rs.MAX_BODY_BYTES`): beyond it, ``body_too_large`` (413,
      RFC 9110 §15.5.14); the rest of the body is not kept.
    * ``connection_timeout`` (5 s): the whole connection — handshake, request, response. A silent client, or
      one that trickles its request a byte at a time (slowloris), is dropped when it runs out; no single read
      may stall longer either.
    * ``drain_timeout`` (1 s): before closing, the server shuts its side and reads (and discards) what the
      client still sends for at most twice this long, so a client still writing — a refused handshake, an
      oversized request answered early — reads the alert or the answer instead of a TCP reset.
    """

    max_connections: int = 64
    max_header_bytes: int = MAX_HEADER_BYTES
    max_body_bytes: int = MAX_BODY_BYTES
    connection_timeout: float = 5.0
    drain_timeout: float = 1.0


#: What the HTTP parser buffers beyond ``max_header_bytes`` before giving up on an unfinished header section:
#: room for the framing the engine's count leaves out (``HTTP/1.1``, CR LFs, Host, Connection, Content-Length).
HEAD_SLACK = 1024


_T = TypeVar("_T")

_VERSIONS = {TlsVersion.TLS1_2: SSL.TLS1_2_VERSION, TlsVersion.TLS1_3: SSL.TLS1_3_VERSION}


def server_context(
    deployment: Deployment,
    lab: Lab,
    *,
    identity: Identity | None = None,
    pin_version: bool = True,
) -> SSL.Context:
    """A pyOpenSSL server context for ``deployment``: TLS version pinned to the deployment's (or, without
    ``pin_version``, TLS 1.2 and 1.3 both), client auth as configured."""
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    version = _VERSIONS[deployment.tls_version]
    ctx.set_min_proto_version(version if pin_version else SSL.TLS1_2_VERSION)
    ctx.set_max_proto_version(version if pin_version else SSL.TLS1_3_VERSION)
    server = identity or lab.server
    ctx.use_certificate(server.certificate)
    for extra in server.chain:
        ctx.add_extra_chain_cert(extra)
    ctx.use_privatekey(server.private_key)
    ctx.check_privatekey()
    mode = deployment.client_auth
    if mode is ClientAuth.NONE:
        ctx.set_verify(SSL.VERIFY_NONE)
        return ctx
    store = ctx.get_cert_store()
    assert store is not None
    store.add_cert(crypto.X509.from_cryptography(lab.ca.certificate))
    flags = SSL.VERIFY_PEER | (SSL.VERIFY_FAIL_IF_NO_PEER_CERT if mode.requires else 0)
    if mode.validates:
        ctx.set_verify(flags)
    else:
        ctx.set_verify(flags, _accept_any)
    return ctx


def _accept_any(
    _conn: SSL.Connection, _cert: crypto.X509, _errno: int, _depth: int, _ok: int
) -> bool:
    """``optional-no-ca`` / ``required-no-ca``: accept any certificate; the application checks the binding."""
    return True


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or an address in 127.0.0.0/8 or ::1 (in brackets or not)."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    """Whether ``host`` is a wildcard address, every interface (``0.0.0.0``, ``::``, ``::0``...)."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def listen_host(host: str) -> str:
    """``host`` as a listener binds it: ``[::1]`` is ``::1``, and an empty host is every IPv4 interface,
    which a URL spells ``0.0.0.0``."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return bare or "0.0.0.0"  # noqa: S104 - the wildcard the empty host already means


class Listener:
    """A bounded, threaded TCP listener: accept loop, connection accounting, timeouts, clean shutdown."""

    scheme = "https"

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, limits: Limits | None = None
    ) -> None:
        self.host = listen_host(host)
        self.limits = limits or Limits()
        ipv6 = ":" in self.host
        self._listener = socket.create_server(
            (self.host, port),
            family=socket.AF_INET6 if ipv6 else socket.AF_INET,
            backlog=128,
            # "::" is every interface, IPv4 as well where the system allows one socket for both
            dualstack_ipv6=ipv6 and is_wildcard(self.host) and socket.has_dualstack_ipv6(),
        )
        bound = self._listener.getsockname()
        self._bound_address = str(bound[0])
        self.port: int = bound[1]
        self._slots = threading.BoundedSemaphore(self.limits.max_connections)
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._acceptor: threading.Thread | None = None
        self.served = 0  # HTTP responses sent
        self.failed_handshakes = 0
        self.dropped = 0  # connections dropped for a limit or a protocol error

    # ---- lifecycle --------------------------------------------------------------------------------
    def _guarded(self, make: Callable[[], _T]) -> _T:
        """``make()``, for a subclass's constructor: if it fails, the socket bound here is released first."""
        try:
            return make()
        except BaseException:
            self._listener.close()
            raise

    @property
    def url(self) -> str:
        """Base URL, e.g. ``https://127.0.0.1:41234``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def address(self) -> str:
        """The address the socket is bound to (a host name resolved, ``[::1]`` as ``::1``)."""
        return self._bound_address

    @property
    def on_loopback(self) -> bool:
        """Whether the listener is on loopback only: judged by the address it is bound to, so ``localhost``,
        ``127.0.0.2`` and ``::1`` are, and ``0.0.0.0`` or an empty host (every interface) are not. It stays
        answerable after :meth:`close`."""
        return is_loopback(self._bound_address)

    def start(self) -> Any:
        """Start accepting connections in a background thread; returns ``self``."""
        self._acceptor = threading.Thread(
            target=self._accept_loop, name=f"mtlslab-accept-{self.port}", daemon=True
        )
        self._acceptor.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Stop accepting, wait for connections in progress (bounded), and release everything."""
        self._closing.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        if self._acceptor is not None:
            self._acceptor.join(timeout)
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                pending = list(self._threads)
            if not pending or time.monotonic() > deadline:
                break
            pending[0].join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def active_connections(self) -> int:
        """Connections being served right now."""
        with self._lock:
            return len(self._threads)

    # ---- accepting ----------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._closing.is_set():
            try:
                sock, _addr = self._listener.accept()
            except OSError:
                if self._closing.is_set():
                    return
                continue
            if not self._slots.acquire(timeout=self.limits.connection_timeout):
                self._count("dropped")
                sock.close()
                continue
            thread = threading.Thread(
                target=self._run_connection,
                args=(sock,),
                daemon=True,
                name=f"mtlslab-conn-{self.port}",
            )
            with self._lock:
                self._threads.add(thread)
            thread.start()

    def _run_connection(self, sock: socket.socket) -> None:
        try:
            sock.setblocking(True)
            timeout = self.limits.connection_timeout
            seconds = int(timeout)
            micro = int((timeout - seconds) * 1_000_000)
            # Kernel-level timeouts: OpenSSL reads the file descriptor directly, so settimeout() would not do.
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", seconds, micro)
            )
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", seconds, micro)
            )
            self._serve(sock, deadline=time.monotonic() + timeout)
        except Exception:
            self._count("dropped")
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            with self._lock:
                self._threads.discard(threading.current_thread())
            self._slots.release()

    def _serve(self, sock: socket.socket, *, deadline: float) -> None:
        raise NotImplementedError

    def _count(self, counter: str) -> None:
        with self._lock:
            setattr(self, counter, getattr(self, counter) + 1)

    def _drain(self, sock: socket.socket) -> None:
        """Close gracefully: shut our write side, read what the client already sent, then close.

        Closing with unread data makes the kernel send a reset, which can destroy a TLS alert in flight;
        draining first makes the client see the alert every time (measured: 200 of 200 runs).
        """
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        sock.settimeout(self.limits.drain_timeout)
        end = time.monotonic() + 2 * self.limits.drain_timeout
        with contextlib.suppress(OSError):
            while time.monotonic() < end and sock.recv(65536):
                pass

    def _tls_accept(self, context: SSL.Context, sock: socket.socket) -> SSL.Connection | None:
        """The server side of a handshake; ``None`` (after a graceful close) when it fails."""
        tls = SSL.Connection(context, sock)
        tls.set_accept_state()
        try:
            tls.do_handshake()
        except (SSL.Error, OSError):
            self._count("failed_handshakes")
            self._drain(sock)
            return None
        return tls


class _ResourceServer(Listener):
    """A listener that answers HTTP requests with the engine and an interpretation."""

    def __init__(
        self,
        *,
        lab: Lab,
        deployment: Deployment,
        interpretation: Interpretation,
        asrv: AuthorizationServer | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        now: dt.datetime | None = LAB_NOW,
        limits: Limits | None = None,
        required_scope: str = "read",
    ) -> None:
        # Everything that can fail comes before the socket is bound, so a failure leaves nothing open.
        limits = limits or Limits()
        self.lab = lab
        self.deployment = interpretation.adapt(deployment)
        self.interpretation = interpretation
        self.asrv = asrv or AuthorizationServer(lab)
        self.now = now
        self.config = config_for(
            self.deployment,
            jwks=Jwks.from_dict(self.asrv.jwks()),
            introspect=self._introspect,
            issuer=self.asrv.issuer,  # trust the issuer and audience of the AS it was given
            audience=self.asrv.audience,
            required_scope=required_scope,
            max_header_bytes=limits.max_header_bytes,
            max_body_bytes=limits.max_body_bytes,
        )
        self.last_finding: Finding | None = None  # the finding of the latest request answered
        super().__init__(host=host, port=port, limits=limits)

    def _introspect(self, token: str) -> Any:
        return self.asrv.introspect(token, now=self._now())

    def _now(self) -> dt.datetime:
        return self.now or dt.datetime.now(dt.timezone.utc)

    # ---- HTTP -------------------------------------------------------------------------------------
    def _http(
        self,
        recv: Callable[[int], bytes],
        send: Callable[[bytes], None],
        *,
        client_cert: bytes | None,
        from_proxy: bool,
        deadline: float,
    ) -> None:
        conn = h11.Connection(
            h11.SERVER, max_incomplete_event_size=self.limits.max_header_bytes + HEAD_SLACK
        )
        request: Request | None = None
        body = bytearray()
        received = 0
        while True:
            if time.monotonic() > deadline:
                self._count("dropped")
                return
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                # 431: an unfinished header section ran past the parser's bound
                if exc.error_status_hint == 431:
                    self._refuse(conn, send, size_decision(self.config, head=received))
                else:
                    self._send_plain(conn, send, exc.error_status_hint, "malformed request\n")
                return
            if event is h11.NEED_DATA:
                try:
                    data = recv(65536)
                except (OSError, SSL.Error):
                    self._count("dropped")
                    return
                received += len(data)
                conn.receive_data(data)
                if not data and request is None:
                    self._count("dropped")
                    return
            elif isinstance(event, h11.Request):
                request = self._request(event, b"", client_cert, from_proxy)
                if self._refuse(conn, send, size_decision(self.config, head=head_size(request))):
                    return
            elif isinstance(event, h11.Data):
                body += event.data
                if self._refuse(conn, send, size_decision(self.config, body=len(body))):
                    return
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                break
        if request is None:
            return
        outcome = self._decide(replace(request, body=bytes(body)) if body else request)
        self._send_outcome(conn, send, outcome)

    def _refuse(
        self, conn: h11.Connection, send: Callable[[bytes], None], decision: Decision | None
    ) -> bool:
        """Answer an oversized request with the engine's size decision (what the simulation predicts)."""
        if decision is None:
            return False
        self.last_finding = decision.finding
        self._count("dropped")
        with contextlib.suppress(h11.LocalProtocolError, OSError, SSL.Error):
            self._send_outcome(conn, send, self.interpretation.respond(decision))
        return True

    def _request(
        self, request: h11.Request, body: bytes, client_cert: bytes | None, from_proxy: bool
    ) -> Request:
        """The engine's view of an HTTP request (framing fields left out)."""
        headers = tuple(
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in request.headers
            if name.lower() not in (b"host", b"content-length", b"connection", b"transfer-encoding")
        )
        host = next(
            (v.decode("latin-1") for n, v in request.headers if n.lower() == b"host"),
            self.url.split("//")[1],
        )
        return Request(
            method=request.method.decode("ascii", "replace"),
            url=f"https://{host}{request.target.decode('latin-1')}",
            headers=headers,
            body=body,
            client_cert=client_cert,
            from_proxy=from_proxy,
        )

    def answer(
        self, request: h11.Request, body: bytes, *, client_cert: bytes | None, from_proxy: bool
    ) -> Outcome:
        """Evaluate one HTTP request with the engine and answer with the interpretation."""
        return self._decide(self._request(request, body, client_cert, from_proxy))

    def _decide(self, request: Request) -> Outcome:
        decision = evaluate(request, self.config, now=self._now())
        self.last_finding = decision.finding
        return self.interpretation.respond(decision)

    def _send_outcome(
        self, conn: h11.Connection, send: Callable[[bytes], None], outcome: Outcome
    ) -> None:
        assert outcome.status is not None
        headers = [
            (name.encode("latin-1"), value.encode("latin-1")) for name, value in outcome.headers()
        ]
        headers.append((b"Connection", b"close"))
        reason = reason_phrase(outcome.status).encode("ascii")
        data = conn.send(h11.Response(status_code=outcome.status, headers=headers, reason=reason))
        data = (data or b"") + (conn.send(h11.Data(data=outcome.body.encode("utf-8"))) or b"")
        data += conn.send(h11.EndOfMessage()) or b""
        self._count("served")  # before sending: whoever reads the answer sees the count
        send(data)

    def _send_plain(
        self, conn: h11.Connection, send: Callable[[bytes], None], status: int, text: str
    ) -> None:
        self._count("dropped")
        with contextlib.suppress(h11.LocalProtocolError, OSError, SSL.Error):
            body = text.encode()
            data = conn.send(
                h11.Response(
                    status_code=status,
                    headers=[
                        (b"Content-Type", b"text/plain"),
                        (b"Content-Length", str(len(body)).encode()),
                        (b"Connection", b"close"),
                    ],
                )
            )
            send(
                (data or b"")
                + (conn.send(h11.Data(data=body)) or b"")
                + (conn.send(h11.EndOfMessage()) or b"")
            )


class LiveServer(_ResourceServer):
    """The resource server with TLS (client authentication per the deployment), on loopback by default.

    Usable as a context manager::

        with LiveServer(lab=lab, deployment=Deployment(), interpretation=BUILTINS["baseline"]) as srv:
            ...  # srv.url
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.context = self._guarded(lambda: server_context(self.deployment, self.lab))

    def _serve(self, sock: socket.socket, *, deadline: float) -> None:
        tls = self._tls_accept(self.context, sock)
        if tls is None:
            return

        def send(data: bytes) -> None:
            tls.sendall(data)

        self._http(
            tls_recv(tls), send, client_cert=peer_der(tls), from_proxy=False, deadline=deadline
        )
        with contextlib.suppress(SSL.Error, OSError):
            tls.shutdown()
        self._drain(sock)


def tls_recv(tls: SSL.Connection) -> Callable[[int], bytes]:
    """``tls.recv`` as a socket's: the peer's close_notify reads as end of stream (``b""``)."""

    def recv(size: int) -> bytes:
        try:
            return tls.recv(size)
        except SSL.ZeroReturnError:
            return b""

    return recv


def peer_der(tls: SSL.Connection) -> bytes | None:
    """The DER of the certificate the client presented in this handshake, or None."""
    peer = tls.get_peer_certificate(as_cryptography=True)
    return peer.public_bytes(Encoding.DER) if peer is not None else None


class Origin(_ResourceServer):
    """The resource server without TLS, as the origin behind a TLS-terminating proxy.

    It trusts the proxy's ``Client-Cert`` only when the deployment says the proxy is trusted.
    """

    scheme = "http"

    def _serve(self, sock: socket.socket, *, deadline: float) -> None:
        def send(data: bytes) -> None:
            sock.sendall(data)

        self._http(sock.recv, send, client_cert=None, from_proxy=True, deadline=deadline)
        self._drain(sock)
