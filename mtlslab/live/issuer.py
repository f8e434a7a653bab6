"""The lab issuer: mtlslab's authorization server served on loopback over HTTPS, for a server under test.

What :func:`mtlslab.probe.probe` needs in lab-issuer mode: a server configured with this issuer and its
audience accepts every token mtlslab mints, broken ones included. It serves the JWKS, RFC 8414 metadata,
RFC 7662 introspection and an RFC 8705 token endpoint.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from typing import Any

from mtlslab.compare import lab_configs
from mtlslab.errors import InputError
from mtlslab.interpretations import BUILTINS
from mtlslab.live.server import (
    Incoming,
    Limits,
    Listener,
    engine_request,
    http_answer,
    is_loopback,
    server_context,
)
from mtlslab.pki import Lab
from mtlslab.rs import evaluate
from mtlslab.scenarios import ClientAuth, Deployment, Endpoint
from mtlslab.tokens import LAB_AUDIENCE, AuthorizationServer

__all__ = ["LabIssuer"]

_METADATA_PATHS = ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")


class LabIssuer(Listener):
    """The lab authorization server's public face on loopback, for a server under test to trust.

    Serves over HTTPS (the lab server certificate, issued by the lab CA; TLS 1.2 and 1.3):

    * ``/.well-known/oauth-authorization-server`` (RFC 8414 §3) and ``/.well-known/openid-configuration``;
    * ``/jwks`` — the signing key;
    * ``POST /introspect`` — RFC 7662 §2 for the tokens this issuer minted (no client authentication:
      a lab);
    * ``POST /token`` — the client credentials grant with mutual-TLS client authentication (RFC 8705 §2.1,
      ``tls_client_auth``): the lab client (``client_id=lab-client``), registered by the subject of its
      certificate from the lab CA, gets a token bound to that certificate (RFC 8705 §3.1); no certificate,
      or another one, is ``invalid_client``. The engine decides (:func:`mtlslab.rs.evaluate`, the token
      endpoint the simulation's ``token-endpoint-*`` scenarios run) and the RFC baseline answers (never
      cached).

    TLS asks for a client certificate without requiring one and accepts any (``optional-no-ca``), so a
    server under test fetches the keys without one; the token endpoint validates the chain itself. The
    issuer identifier is this server's URL (``https://127.0.0.1:PORT``) unless an authorization server is
    injected (self-tests). Use as a context manager; ``fetched`` lists the requests it answered.
    """

    def __init__(
        self,
        lab: Lab | None = None,
        *,
        audience: str = LAB_AUDIENCE,
        host: str = "127.0.0.1",
        port: int = 0,
        asrv: AuthorizationServer | None = None,
        now: dt.datetime | None = None,
        limits: Limits | None = None,
    ) -> None:
        if not is_loopback(host):
            raise InputError(
                "host", f"{host!r} is not loopback: the lab issuer serves on loopback only"
            )
        self.lab = lab = lab or Lab(seed="mtlslab")
        # the token endpoint as the engine models it: RFC 8705 §2.1 behind TLS accepting any certificate
        token = Deployment(endpoint=Endpoint.TOKEN_PKI, client_auth=ClientAuth.OPTIONAL_NO_CA)
        self.deployment = token
        self.context = server_context(token, lab, pin_version=False)
        super().__init__(host=host, port=port, limits=limits or Limits(max_connections=16))
        try:  # what needs the URL: if it fails, the socket bound is released
            self.asrv = asrv or AuthorizationServer(lab, issuer=self.url, audience=audience)
            self._token_config = lab_configs(lab, self.asrv, now=now)(token)  # made once
        except BaseException:
            self.close()
            raise
        self.now = now
        self.fetched: list[str] = []

    @property
    def issuer(self) -> str:
        """The issuer identifier tokens carry in ``iss``."""
        return self.asrv.issuer

    @property
    def audience(self) -> str:
        """The audience tokens carry in ``aud``."""
        return self.asrv.audience

    @property
    def jwks_url(self) -> str:
        """Where the JWKS is served."""
        return f"{self.url}/jwks"

    @property
    def metadata_url(self) -> str:
        """Where the RFC 8414 metadata is served."""
        return f"{self.url}{_METADATA_PATHS[0]}"

    @property
    def token_url(self) -> str:
        """Where the token endpoint is served (RFC 8705 §2)."""
        return f"{self.url}/token"

    def metadata(self) -> dict[str, Any]:
        """The RFC 8414 metadata served (endpoints on this server)."""
        meta = self.asrv.metadata()
        meta["jwks_uri"] = self.jwks_url
        meta["introspection_endpoint"] = f"{self.url}/introspect"
        meta["token_endpoint"] = self.token_url
        meta["token_endpoint_auth_methods_supported"] = ["tls_client_auth"]  # RFC 8705 §2.1.1
        return meta

    def __repr__(self) -> str:
        return f"<LabIssuer {self.issuer} jwks={self.jwks_url}>"

    def _answer(
        self, incoming: Incoming, *, peer: bytes | None, chain: tuple[bytes, ...], **_: object
    ) -> bytes:
        request = incoming.request
        if request is None or incoming.status is not None:
            return self._refuse(incoming)
        method = request.method.decode("ascii", "replace")
        path = urllib.parse.urlsplit(request.target.decode("latin-1")).path
        with self._lock:
            self.fetched.append(f"{method} {path}")
        now = self.now or dt.datetime.now(dt.timezone.utc)
        if (method, path) == ("POST", "/token"):
            host = self.url.split("//")[1]
            sent = engine_request(
                request, incoming.body, client_cert=peer, default_host=host, client_chain=chain
            )
            decision = evaluate(sent, self._token_config, now=now)
            return self._respond(incoming, BUILTINS["baseline"].respond(decision))
        status, payload = 404, {"error": "not_found"}
        if method == "GET" and path in _METADATA_PATHS:
            status, payload = 200, self.metadata()
        elif (method, path) == ("GET", "/jwks"):
            status, payload = 200, self.asrv.jwks()
        elif (method, path) == ("POST", "/introspect"):
            form = urllib.parse.parse_qs(incoming.body.decode("latin-1"))
            status, payload = 200, self.asrv.introspect(form.get("token", [""])[0], now=now)
        data = json.dumps(payload, indent=2).encode()
        fields = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
        return http_answer(incoming.conn, status, fields, data)
