"""A real TLS resource server on loopback that decides nothing itself: each request becomes the engine's
:class:`~mtlslab.scenarios.Request`, is evaluated by :func:`mtlslab.rs.evaluate` and answered by an
:class:`~mtlslab.interpretations.Interpretation` — the simulation's own calls, so wire and model compare.

TLS is pyOpenSSL's: Python's :mod:`ssl` cannot accept a client certificate without validating it
(``optional-no-ca``, RFC 8705 §2.2 / §6.2). A :class:`Listener` drives every connection on one I/O thread
without blocking (handshake, request, a certificate asked for late, answer, graceful close) and takes a
worker only to compute an answer. Sessions resume (RFC 8446 §2.2), carrying the certificate of the
handshake that set them up, or none. :class:`Origin` is the same server without TLS behind a proxy
(:mod:`mtlslab.live.proxy`): it trusts the proxy's RFC 9440 ``Client-Cert`` only if the deployment says so.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import ipaddress
import json
import selectors
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import h11
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL, crypto
from OpenSSL._util import lib as _lib  # private: pyOpenSSL wraps no post-handshake authentication

from mtlslab.compare import lab_configs
from mtlslab.findings import Finding
from mtlslab.interpretations import Interpretation, Outcome, reason_phrase
from mtlslab.jose import DPOP_ALGS
from mtlslab.pki import LAB_NOW, Lab
from mtlslab.rs import MAX_BODY_BYTES, MAX_HEADER_BYTES, Decision, evaluate, size_decision
from mtlslab.scenarios import Deployment, Request
from mtlslab.tls import ClientAuth, TlsVersion
from mtlslab.tokens import AuthorizationServer

__all__ = [
    "HEAD_SLACK",
    "Incoming",
    "Limits",
    "Listener",
    "LiveServer",
    "Origin",
    "Refusal",
    "RequestReader",
    "engine_request",
    "http_answer",
    "is_loopback",
    "is_wildcard",
    "listen_host",
    "listening_socket",
    "peer_chain",
    "peer_der",
    "server_context",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Bounds on what clients can make a server hold; every one is tested (the README lists them).

    * ``connection_timeout``: the whole connection (handshake, request, answer); a silent or slowloris
      client is cut off unanswered when it runs out.
    * ``max_pending``: connections held at once, at most a quarter of ``ulimit -n``; when full, the one
      waiting longest without a complete request is dropped to make room.
    * ``max_connections``: requests answered at once (workers); complete requests beyond them wait.
    * ``max_header_bytes``, ``max_body_bytes``: beyond them the engine's 431 (RFC 6585 §5) or 413 (RFC 9110
      §15.5.14), as simulated; the parser buffers an unfinished head up to this plus :data:`HEAD_SLACK`.
    * ``drain_timeout``: before closing, what the client still sends is read and discarded for at most
      twice this long, so a client still writing meets no TCP reset; 0 closes at once.
    """

    connection_timeout: float = 5.0
    max_pending: int = 512
    max_connections: int = 64
    max_header_bytes: int = MAX_HEADER_BYTES
    max_body_bytes: int = MAX_BODY_BYTES
    drain_timeout: float = 1.0


#: What the HTTP parser buffers beyond ``max_header_bytes`` before giving up on an unfinished header section:
#: room for the framing the engine's count leaves out (``HTTP/1.1``, CR LFs, Host, Connection, Content-Length).
HEAD_SLACK = 1024


_L = TypeVar("_L", bound="Listener")

_VERSIONS = {TlsVersion.TLS1_2: SSL.TLS1_2_VERSION, TlsVersion.TLS1_3: SSL.TLS1_3_VERSION}


def server_context(
    deployment: Deployment, lab: Lab, *, pin_version: bool = True, refusal: Refusal = "alert"
) -> SSL.Context:
    """A pyOpenSSL server context for ``deployment``: its TLS version pinned (without ``pin_version``, 1.2
    and 1.3 both), client auth as configured, a certificate asked for late left to the :class:`Listener`.
    ``refusal="close"`` refuses a certificate without OpenSSL's alert: the handshake finishes and the
    listener closes the connection without a word (what a client sees when a server's alert is lost)."""
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    version = _VERSIONS[deployment.tls_version]
    ctx.set_min_proto_version(version if pin_version else SSL.TLS1_2_VERSION)
    ctx.set_max_proto_version(version if pin_version else SSL.TLS1_3_VERSION)
    server = lab.server
    ctx.use_certificate(server.certificate)
    for extra in server.chain:
        ctx.add_extra_chain_cert(extra)
    ctx.use_privatekey(server.private_key)
    ctx.check_privatekey()
    # Sessions are resumed only within the context that made them; without this id OpenSSL refuses every
    # resumption at a server that asks for certificates (internal_error, 80).
    ctx.set_session_id(b"mtlslab")
    mode = deployment.client_auth
    if mode is ClientAuth.NONE:
        ctx.set_verify(SSL.VERIFY_NONE)
        return ctx
    store = ctx.get_cert_store()
    assert store is not None
    store.add_cert(crypto.X509.from_cryptography(lab.ca.certificate))
    if mode.late:  # asked for by _Late; a renegotiation that resumed the session would ask nothing
        ctx.set_verify(SSL.VERIFY_NONE)
        if mode is ClientAuth.RENEGOTIATION:
            ctx.set_options(_NO_SESSION_RESUMPTION_ON_RENEGOTIATION)
    elif refusal == "close":  # every handshake finishes; _refused_silently says which to close
        ctx.set_verify(SSL.VERIFY_PEER, _accept_any)
        ctx.set_app_data(mode)
    else:
        flags = SSL.VERIFY_PEER | (SSL.VERIFY_FAIL_IF_NO_PEER_CERT if mode.requires else 0)
        ctx.set_verify(flags, None if mode.validates else _accept_any)
    return ctx


#: How a server refuses a client certificate: with OpenSSL's TLS alert, or by closing without one.
Refusal = Literal["alert", "close"]

#: OpenSSL's SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION (pyOpenSSL does not name it).
_NO_SESSION_RESUMPTION_ON_RENEGOTIATION = 0x00010000

_REFUSED = object()  # set on a connection whose certificate failed validation (refusal="close")


def _accept_any(conn: SSL.Connection, _cert: crypto.X509, _err: int, _depth: int, ok: int) -> bool:
    """Accept any certificate (``*-no-ca``: the application checks the binding), marking a connection whose
    certificate failed validation for :func:`_refused_silently`."""
    if not ok:
        conn.set_app_data(_REFUSED)
    return True


def _refused_silently(tls: SSL.Connection) -> bool:
    """Whether a handshake just finished is one its context (``refusal="close"``) refuses without an alert:
    a certificate that failed validation, or none where one is required."""
    mode = tls.get_context().get_app_data()
    if not isinstance(mode, ClientAuth):
        return False
    refused = mode.validates and tls.get_app_data() is _REFUSED
    return refused or (mode.requires and tls.get_peer_certificate() is None)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or an address in 127.0.0.0/8 or ::1 (in brackets or not)."""
    name = host.strip("[]").lower()
    try:
        return name == "localhost" or ipaddress.ip_address(name).is_loopback
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


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket listening on ``host`` (as :func:`listen_host` reads it) and ``port`` (0: a free one);
    OSError when the port is taken."""
    host = listen_host(host)
    ipv6 = ":" in host
    return socket.create_server(
        (host, port),
        family=socket.AF_INET6 if ipv6 else socket.AF_INET,
        backlog=128,
        # "::" is every interface, IPv4 as well where the system allows one socket for both
        dualstack_ipv6=ipv6 and is_wildcard(host) and socket.has_dualstack_ipv6(),
    )


def peer_der(tls: SSL.Connection) -> bytes | None:
    """The DER of the certificate the client presented in this handshake, or None."""
    peer = tls.get_peer_certificate(as_cryptography=True)
    return peer.public_bytes(Encoding.DER) if peer is not None else None


def peer_chain(tls: SSL.Connection) -> tuple[bytes, ...]:
    """The DER of the certificates the client sent along with its own (its intermediates), in order; a
    server's OpenSSL leaves the client's own certificate out of this list."""
    sent = tls.get_peer_cert_chain(as_cryptography=True) or []
    return tuple(c.public_bytes(Encoding.DER) for c in sent)


@dataclass(frozen=True, slots=True, kw_only=True)
class Incoming:
    """One request as read off the wire: complete (``status`` None), or refused part-way with 431 (the head
    ran past the parser's bound; ``request`` None), 413 (the body past ``max_body_bytes``) or the parser's
    code for a malformed request. Both None: the client closed without asking anything. ``conn`` is the
    parser, which serialises the answer (:func:`http_answer`)."""

    conn: h11.Connection
    request: h11.Request | None
    body: bytes = b""
    status: int | None = None
    received: int = 0  # bytes read, framing included


class RequestReader:
    """Reads one HTTP/1.1 request within the limits: bytes in (``b""`` at end of stream), an
    :class:`Incoming` out. No I/O and no clock: the caller reads and keeps the deadline."""

    def __init__(self, limits: Limits) -> None:
        self._max_body = limits.max_body_bytes
        self._conn = h11.Connection(
            h11.SERVER, max_incomplete_event_size=limits.max_header_bytes + HEAD_SLACK
        )
        self._request: h11.Request | None = None
        self._body = bytearray()
        self._received = 0

    def feed(self, data: bytes) -> Incoming | None:
        """The request once it is complete, refused or cut off; None while more bytes are needed."""
        self._received += len(data)
        self._conn.receive_data(data)
        while True:
            try:
                event = self._conn.next_event()
            except h11.RemoteProtocolError as exc:  # 431 for an endless head, 400 for most others
                return self._incoming(exc.error_status_hint)
            if event is h11.NEED_DATA:
                return None if data else self._incoming(None)
            if isinstance(event, h11.Request):
                self._request = event
            elif isinstance(event, h11.Data):
                self._body += event.data
                if len(self._body) > self._max_body:
                    return self._incoming(413)
            else:  # EndOfMessage, or ConnectionClosed before any request
                return self._incoming(None)

    def _incoming(self, status: int | None) -> Incoming:
        return Incoming(
            conn=self._conn,
            request=self._request,
            body=bytes(self._body),
            status=status,
            received=self._received,
        )


def http_answer(
    conn: h11.Connection, status: int, headers: Iterable[tuple[str, str]], body: bytes
) -> bytes:
    """An HTTP/1.1 answer serialised by the request's own parser, with ``Content-Length`` and
    ``Connection: close`` added; ``b""`` when the parser can send no answer any more."""
    fields = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    fields += [(b"Content-Length", str(len(body)).encode()), (b"Connection", b"close")]
    head = h11.Response(
        status_code=status, headers=fields, reason=reason_phrase(status).encode("ascii")
    )
    try:
        return b"".join(
            conn.send(event) or b"" for event in (head, h11.Data(data=body), h11.EndOfMessage())
        )
    except h11.LocalProtocolError:
        return b""


# a connection's stages, in order (_LATE: a certificate asked for after the request)
_HANDSHAKE, _READ, _LATE, _WORK, _WRITE, _DRAIN, _CLOSED = range(7)
_WAITING = (_HANDSHAKE, _READ, _LATE, _DRAIN)  # for the client: what may be dropped to make room
_R, _W = selectors.EVENT_READ, selectors.EVENT_WRITE


class _Conn:
    """One connection's state, touched only by the listener's I/O thread (workers read it, never write)."""

    def __init__(self, sock: socket.socket, tls: SSL.Connection | None, limits: Limits) -> None:
        self.sock, self.tls, self.fd = sock, tls, sock.fileno()
        self.deadline = time.monotonic() + limits.connection_timeout  # handshake, request, answer
        self.ends = self.deadline  # when the current stage is cut off (a drain has its own)
        self.stage = _HANDSHAKE if tls is not None else _READ
        self.reader = RequestReader(limits)
        self.peer: bytes | None = None  # the client certificate's DER, once the handshake is done
        self.chain: tuple[bytes, ...] = ()  # the intermediates the client sent with it
        self.late: _Late | None = None  # a certificate asked for after the request
        self.out = b""  # the answer still to write
        self.events = 0  # what the selector watches for


class _Late:
    """A client certificate asked for once ``incoming`` has come, without blocking: by TLS 1.3 post-handshake
    authentication (RFC 8446 §4.6.2; pyOpenSSL wraps none, so OpenSSL's private ``_lib`` calls are held
    here) or a TLS 1.2 renegotiation (RFC 5746). Validated against the lab CA; it may be absent."""

    def __init__(self, tls: SSL.Connection, mode: ClientAuth, incoming: Incoming) -> None:
        self.tls, self.mode, self.incoming = tls, mode, incoming
        self.before = tls.get_peer_finished()
        self.sent = False  # the CertificateRequest (or HelloRequest) written
        self.asked = self._queue()

    def _queue(self) -> bool:
        """Queue the request; False when this connection cannot be asked: another TLS version, or a client
        that did not offer post-handshake authentication (RFC 8446 §4.2.6)."""
        tls, post = self.tls, self.mode is ClientAuth.POST_HANDSHAKE
        if tls.get_protocol_version_name() != ("TLSv1.3" if post else "TLSv1.2"):
            return False
        if post:
            tls.set_verify(SSL.VERIFY_PEER | _lib.SSL_VERIFY_POST_HANDSHAKE)
            if _lib.SSL_verify_client_post_handshake(tls._ssl) != 1:  # not offered: nothing is sent
                _lib.ERR_clear_error()
                return False
        else:
            tls.set_verify(SSL.VERIFY_PEER)
            tls.renegotiate()
        # pyOpenSSL's AUTO_RETRY would make the reads below wait for application data, which never comes
        _lib.SSL_clear_mode(tls._ssl, _lib.SSL_MODE_AUTO_RETRY)
        return True

    def advance(self) -> None:
        """Take the exchange as far as it goes: returns once the client has answered (or could not be
        asked); raises WantReadError / WantWriteError until then, SSL.Error when the certificate is refused
        (OpenSSL has sent the alert)."""
        if not self.asked:
            return
        if not self.sent:
            with contextlib.suppress(SSL.WantReadError):  # written; the answer is read below
                self.tls.do_handshake()
            self.sent = True
        while not self._answered():
            try:
                self.tls.recv(1, socket.MSG_PEEK)  # handles the client's handshake records
                break  # application data instead of an answer: go on without one
            except SSL.WantReadError:
                if not self._answered():
                    raise
        _lib.SSL_set_mode(self.tls._ssl, _lib.SSL_MODE_AUTO_RETRY)

    def _answered(self) -> bool:
        if self.mode is ClientAuth.RENEGOTIATION:
            return not self.tls.renegotiate_pending()
        return self.tls.get_peer_finished() != self.before


def _descriptor_budget() -> int:
    """A quarter of this process's descriptor limit (``ulimit -n``): the most one listener holds."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return 1 << 20
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return 1 << 20 if soft == resource.RLIM_INFINITY else max(1, soft // 4)


class Listener:
    """A bounded TCP listener (TLS with ``context``): one I/O thread, which cuts every connection off at its
    deadline, and at most ``max_connections`` workers, which run a subclass's :meth:`_answer`."""

    scheme = "https"
    context: SSL.Context | None = None  # None: plain TCP (the origin behind a proxy)
    deployment: Deployment  # with TLS, client_auth.late: ask once the request has come
    # made by start(), used only from then on
    _io: threading.Thread
    _selector: selectors.BaseSelector
    _workers: ThreadPoolExecutor
    _wake_r: socket.socket
    _wake_w: socket.socket

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, limits: Limits | None = None
    ) -> None:
        self.host = listen_host(host)
        self.limits = limits or Limits()
        self._listener = listening_socket(self.host, port)
        bound = self._listener.getsockname()
        self.address = str(bound[0])  # as bound: a host name resolved, ``[::1]`` as ``::1``
        self.port: int = bound[1]
        self._max_pending = min(self.limits.max_pending, _descriptor_budget())
        self._conns: dict[int, _Conn] = {}  # by descriptor, oldest first
        # answers from workers: (connection, answer, whether the request was refused)
        self._done: collections.deque[tuple[_Conn, bytes, bool]] = collections.deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._close_by = 0.0
        self.started = False  # start() called
        self._paused_until = 0.0  # accepting stopped for a moment (no room); 0: accepting
        self.served = 0  # HTTP answers sent
        self.failed_handshakes = 0
        self.dropped = 0  # connections dropped for a limit, a deadline or a protocol error

    @property
    def url(self) -> str:
        """Base URL, e.g. ``https://127.0.0.1:41234``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def on_loopback(self) -> bool:
        """Whether the listener is on loopback only, judged by the address bound (``localhost``,
        ``127.0.0.2``, ``::1``: yes; ``0.0.0.0``, an empty host: no), also after :meth:`close`."""
        return is_loopback(self.address)

    def start(self: _L) -> _L:
        """Start serving in the background; returns ``self``."""
        self._listener.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._listener, _R)
        self._selector.register(self._wake_r, _R)
        self._workers = ThreadPoolExecutor(
            self.limits.max_connections, thread_name_prefix=f"mtlslab-conn-{self.port}"
        )
        self._io = threading.Thread(target=self._run, name=f"mtlslab-io-{self.port}", daemon=True)
        self._io.start()
        self.started = True
        return self

    def close(self) -> None:
        """Stop accepting, let answers in progress finish (for at most 5 s), release everything."""
        self._close_by = time.monotonic() + 5.0
        self._closing.set()
        if self.started:
            self._wake()
            self._io.join(6.0)
            self._workers.shutdown(wait=True, cancel_futures=True)
        self._listener.close()

    def __enter__(self: _L) -> _L:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def active_connections(self) -> int:
        """Connections open right now, at any stage from accept to close."""
        return len(self._conns)

    def _count(self, counter: str) -> None:
        with self._lock:
            setattr(self, counter, getattr(self, counter) + 1)

    def _answer(
        self, incoming: Incoming, *, peer: bytes | None, chain: tuple[bytes, ...], deadline: float
    ) -> bytes:
        """The bytes that answer ``incoming`` (``b""``: close unanswered), computed on a worker thread;
        ``peer`` is the client certificate's DER, ``chain`` the intermediates the client sent with it,
        ``deadline`` the connection's (``time.monotonic()``)."""
        raise NotImplementedError

    @staticmethod
    def _refuse(incoming: Incoming) -> bytes:
        """A plain-text answer to a request refused part-way (its status, or 400)."""
        status = incoming.status or 400
        text = f"{reason_phrase(status).lower()}\n".encode()
        return http_answer(incoming.conn, status, [("Content-Type", "text/plain")], text)

    @staticmethod
    def _respond(incoming: Incoming, outcome: Outcome) -> bytes:
        """An interpretation's answer (its Content-Length left to :func:`http_answer`, which adds one)."""
        assert outcome.status is not None
        fields = [(k, v) for k, v in outcome.headers() if k != "Content-Length"]
        return http_answer(incoming.conn, outcome.status, fields, outcome.body.encode())

    def _run(self) -> None:
        stopping = False
        try:
            while True:
                now = time.monotonic()
                if self._closing.is_set() and not stopping:
                    stopping = True
                    self._listen(False)
                    self._paused_until = 0.0  # for good
                    self._listener.close()  # new clients are refused from here on
                    # those that have asked nothing yet are let go; answers in progress go out
                    for conn in [c for c in self._conns.values() if c.stage in (_HANDSHAKE, _READ)]:
                        self._finish(conn)
                if stopping and (not self._conns or now > self._close_by):
                    return
                if self._paused_until and now >= self._paused_until:
                    self._listen(True)
                ends = [c.ends for c in self._conns.values()]
                ends.append(self._close_by if stopping else self._paused_until or now + 60.0)
                timeout = max(0.0, min(ends) - now)
                for key, _ in self._selector.select(timeout):
                    if key.fileobj is self._listener:
                        self._accept()
                    elif key.fileobj is self._wake_r:
                        self._collect()
                    elif key.data.stage != _CLOSED:  # not evicted by an accept in this round
                        self._step(key.data)
                now = time.monotonic()
                for conn in [c for c in self._conns.values() if c.ends <= now]:
                    if conn.stage == _DRAIN:
                        self._close(conn)
                    else:  # past its deadline, even while a worker computes its answer
                        self._count("dropped")
                        self._finish(conn)
        finally:
            for conn in list(self._conns.values()):
                self._close(conn)
            self._selector.close()
            self._listener.close()
            self._wake_r.close()
            self._wake_w.close()

    def _listen(self, on: bool) -> None:
        """Accept connections, or stop for a moment (0.1 s) when there is no room for another."""
        if on and self._paused_until:
            self._selector.register(self._listener, _R)
            self._paused_until = 0.0
        elif not on and not self._paused_until:
            self._selector.unregister(self._listener)
            self._paused_until = time.monotonic() + 0.1

    def _accept(self) -> None:
        for _ in range(64):  # a burst, then the connections already here get their turn
            full = len(self._conns) >= self._max_pending
            victim = self._waiting() if full else None
            if full and victim is None:  # every one is being answered: wait a moment
                self._listen(False)
                return
            try:
                sock, _addr = self._listener.accept()
            except BlockingIOError:
                return
            except OSError:  # out of descriptors (EMFILE): make room, or wait a moment
                victim = self._waiting()
                if victim is None:
                    self._listen(False)
                else:
                    self._drop(victim)
                return
            if victim is not None:  # room for the newcomer
                self._drop(victim)
            sock.setblocking(False)
            tls = None
            if self.context is not None:
                tls = SSL.Connection(self.context, sock)
                tls.set_accept_state()
            conn = _Conn(sock, tls, self.limits)
            self._conns[conn.fd] = conn
            self._watch(conn, _R)

    def _waiting(self) -> _Conn | None:
        """The oldest connection waiting for its client (or closing): the one to drop for room."""
        return next((c for c in self._conns.values() if c.stage in _WAITING), None)

    def _drop(self, conn: _Conn) -> None:
        if conn.stage != _DRAIN:
            self._count("dropped")
        self._close(conn)

    def _step(self, conn: _Conn) -> None:
        """Take ``conn`` as far as it goes without blocking."""
        try:
            if conn.stage == _HANDSHAKE:
                assert conn.tls is not None
                conn.tls.do_handshake()
                if _refused_silently(conn.tls):
                    self._count("failed_handshakes")
                    self._finish(conn, notify=False)
                    return
                conn.peer, conn.chain = peer_der(conn.tls), peer_chain(conn.tls)
                conn.stage = _READ
            if conn.stage == _READ:
                incoming = None
                while incoming is None:
                    incoming = conn.reader.feed(self._recv(conn))
                asked = incoming.request is not None and incoming.status is None
                if conn.tls is None or not asked or not self.deployment.client_auth.late:
                    self._submit(conn, incoming)  # answered as it is
                    return
                conn.stage = _LATE
                conn.late = _Late(conn.tls, self.deployment.client_auth, incoming)
            if conn.stage == _LATE:
                assert conn.late is not None
                conn.late.advance()
                conn.peer, conn.chain = peer_der(conn.late.tls), peer_chain(conn.late.tls)
                self._submit(conn, conn.late.incoming)
            elif conn.stage == _WRITE:
                while conn.out:
                    conn.out = conn.out[(conn.tls or conn.sock).send(conn.out[:65536]) :]
                self._finish(conn)
            elif conn.stage == _DRAIN:
                # then the others get their turn: a client may write without end
                for _ in range(16):
                    if not conn.sock.recv(65536):
                        self._close(conn)
                        return
        except SSL.WantReadError:
            self._watch(conn, _R)
        except SSL.WantWriteError:
            self._watch(conn, _W)
        except BlockingIOError:
            self._watch(conn, _W if conn.stage == _WRITE else _R)
        except (SSL.Error, OSError):
            if conn.stage == _DRAIN:
                self._close(conn)
            else:  # a refused certificate, early or late, is a failed handshake
                self._count("failed_handshakes" if conn.stage in (_HANDSHAKE, _LATE) else "dropped")
                self._finish(conn)

    @staticmethod
    def _recv(conn: _Conn) -> bytes:
        try:
            return (conn.tls or conn.sock).recv(65536)
        except SSL.ZeroReturnError:  # the client's close_notify: end of stream
            return b""

    def _submit(self, conn: _Conn, incoming: Incoming) -> None:
        """Hand a request read to a worker (the client closed without one: close)."""
        if incoming.request is None and incoming.status is None:
            self._count("dropped")
            self._finish(conn)
            return
        conn.stage = _WORK
        self._watch(conn, 0)
        self._workers.submit(self._work, conn, incoming)

    def _work(self, conn: _Conn, incoming: Incoming) -> None:
        """On a worker: compute the answer (none once the deadline has passed) and hand it back."""
        out = b""
        try:
            if time.monotonic() < conn.deadline:
                out = self._answer(
                    incoming, peer=conn.peer, chain=conn.chain, deadline=conn.deadline
                )
        except Exception:  # noqa: S110 - a failure is a connection closed unanswered, and counted
            pass
        self._done.append((conn, out, incoming.status is not None))
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # closed, or a wake-up already pending
            self._wake_w.send(b"\0")

    def _collect(self) -> None:
        """Write the answers workers finished."""
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass
        while self._done:
            conn, out, refused = self._done.popleft()
            if conn.stage != _WORK:  # cut off at its deadline meanwhile, or closed
                continue
            if refused or not out:  # refused for a limit or as malformed, or not answered at all
                self._count("dropped")
            if out:
                self._count("served")  # before it is sent: whoever reads the answer sees the count
                conn.stage, conn.out, conn.ends = _WRITE, out, conn.deadline
                self._step(conn)
            else:
                self._finish(conn)

    def _finish(self, conn: _Conn, *, notify: bool = True) -> None:
        """Close gracefully: shut our write side (after TLS close_notify, unless ``notify`` is False) and
        drain what the client sends. Closing with unread data makes the kernel send a reset: the client's
        next write fails (``ssl.SSLEOFError``) before it reads the alert or answer (on Windows the reset can
        discard them). Drained, nothing is unread at close (measured: 150 of 150 refused handshakes read,
        none with a failed write)."""
        if notify and conn.tls is not None and conn.stage != _HANDSHAKE:
            with contextlib.suppress(SSL.Error):
                conn.tls.shutdown()
        with contextlib.suppress(OSError):
            conn.sock.shutdown(socket.SHUT_WR)
        conn.stage, conn.ends = _DRAIN, time.monotonic() + 2 * self.limits.drain_timeout
        self._watch(conn, _R)

    def _close(self, conn: _Conn) -> None:
        self._watch(conn, 0)
        conn.stage = _CLOSED
        del self._conns[conn.fd]
        conn.sock.close()

    def _watch(self, conn: _Conn, events: int) -> None:
        if events == conn.events:
            return
        if not conn.events:
            self._selector.register(conn.sock, events, conn)
        elif not events:
            self._selector.unregister(conn.sock)
        else:
            self._selector.modify(conn.sock, events, conn)
        conn.events = events


def engine_request(
    request: h11.Request,
    body: bytes,
    *,
    client_cert: bytes | None,
    default_host: str,
    client_chain: tuple[bytes, ...] = (),
    from_proxy: bool = False,
) -> Request:
    """The engine's view of an HTTP request read off the wire (framing fields left out): its URL is
    ``https://`` + the Host field (``default_host`` without one) + the target."""
    fields = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers]
    host = next((value for name, value in fields if name.lower() == "host"), default_host)
    framing = ("host", "content-length", "connection", "transfer-encoding")
    headers = tuple((name, value) for name, value in fields if name.lower() not in framing)
    return Request(
        method=request.method.decode("ascii", "replace"),
        url=f"https://{host}{request.target.decode('latin-1')}",
        headers=headers,
        body=body,
        client_cert=client_cert,
        client_chain=client_chain,
        from_proxy=from_proxy,
    )


class LiveServer(Listener):
    """The resource server: a listener that answers HTTP requests with the engine and an interpretation,
    with TLS (client authentication per the deployment), on loopback by default; a context manager
    (``with LiveServer(lab=..., deployment=..., interpretation=...) as srv``). ``refusal="close"`` refuses
    a client certificate without a TLS alert (see :func:`server_context`)."""

    from_proxy = False  # whether requests arrive through a TLS-terminating proxy

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
        refusal: Refusal = "alert",
    ) -> None:
        # What can fail comes before the bind: nothing stays open.
        limits = limits or Limits()
        self.lab = lab
        self.deployment = interpretation.adapt(deployment)
        self.interpretation = interpretation
        self.asrv = asrv or AuthorizationServer(lab)
        self.now = now
        # the simulation's own configuration: the AS it was given, the lab CA, the lab client
        self.config = lab_configs(
            lab,
            self.asrv,
            now=now,
            required_scope=required_scope,
            max_header_bytes=limits.max_header_bytes,
            max_body_bytes=limits.max_body_bytes,
        )(self.deployment)
        metadata = self.config.resource_metadata  # RFC 9728 §3: served at the path challenges name
        self.metadata_path = urllib.parse.urlsplit(metadata).path if metadata else None
        self.last_finding: Finding | None = None  # the finding of the latest request answered
        if self.scheme == "https":
            self.context = server_context(self.deployment, lab, refusal=refusal)
        super().__init__(host=host, port=port, limits=limits)

    def metadata(self) -> dict[str, Any]:
        """The RFC 9728 §2 protected resource metadata this server publishes when its deployment says so
        (``resource_metadata``): the resource (the tokens' audience), the authorization server that issues
        them, certificate-bound tokens (RFC 8705 §3.4), DPoP's algorithms where it supports DPoP (RFC 9449
        §5.2), and the Bearer methods it accepts (RFC 6750 §2)."""
        meta: dict[str, Any] = {
            "resource": self.asrv.audience,
            "authorization_servers": [self.asrv.issuer],
            "bearer_methods_supported": ["header", "body"]
            + (["query"] if self.deployment.query_tokens else []),
            "tls_client_certificate_bound_access_tokens": True,
            "dpop_bound_access_tokens_required": False,
        }
        if self.deployment.dpop:
            meta["dpop_signing_alg_values_supported"] = list(DPOP_ALGS)
        return meta

    def _answer(
        self, incoming: Incoming, *, peer: bytes | None, chain: tuple[bytes, ...], **_: object
    ) -> bytes:
        """The engine decides, sizes first (what the simulation predicts); a malformed request gets 400."""
        request = incoming.request
        if (
            request is not None
            and incoming.status is None
            and request.method == b"GET"
            and urllib.parse.urlsplit(request.target.decode("latin-1")).path == self.metadata_path
        ):  # RFC 9728 §3.2: the metadata as JSON
            data = json.dumps(self.metadata(), indent=2).encode()
            return http_answer(incoming.conn, 200, [("Content-Type", "application/json")], data)
        decision: Decision | None = None
        if request is not None and incoming.status in (None, 413):
            sent = engine_request(
                request,
                incoming.body,
                client_cert=peer,
                default_host=self.url.split("//")[1],
                client_chain=chain,
                from_proxy=self.from_proxy,
            )
            decision = evaluate(sent, self.config, now=self.now or dt.datetime.now(dt.timezone.utc))
        elif incoming.status == 431:  # a head past the parser's bound: measured only
            decision = size_decision(self.config, head=incoming.received)
        if decision is None:
            return self._refuse(incoming)
        self.last_finding = decision.finding
        return self._respond(incoming, self.interpretation.respond(decision))


class Origin(LiveServer):
    """The resource server without TLS, the origin behind a TLS-terminating proxy: it trusts the proxy's
    ``Client-Cert`` only when the deployment says the proxy is trusted."""

    scheme = "http"
    from_proxy = True
