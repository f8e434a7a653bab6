"""Certificate and token inspectors: paste a PEM or a JWT (or pick lab material) and see it decoded.

::

    from mtlslab.widgets import CertificateInspector, TokenInspector
    CertificateInspector()     # decoded; x5t#S256 step by step (DER → SHA-256 → base64url); binding
    TokenInspector()           # header, claims, signature against the lab JWKS, binding

Each change makes one core call (:func:`mtlslab.pki.load_certificate` / :func:`mtlslab.rs.inspect_token`)
and renders; whatever is pasted is escaped, and unusable input is explained inside the widget.
"""

from __future__ import annotations

import json
from typing import Any

import ipywidgets as widgets
from cryptography.hazmat.primitives.serialization import Encoding

from mtlslab.compare import Simulator
from mtlslab.errors import TokenError
from mtlslab.pki import Lab, certificate_html, load_certificate
from mtlslab.rs import inspect_token
from mtlslab.tokens import TOKEN_VARIANTS, AuthorizationServer, DPoPKey
from mtlslab.widgets import _render as render
from mtlslab.widgets._common import LABEL_STYLE, Adapter, classed, root
from mtlslab.workshop import LAB_SEED

__all__ = ["PASTE", "CertificateInspector", "TokenInspector"]

#: The source choice that means "what is in the text box".
PASTE = "paste"


def _lab_certificates(lab: Lab) -> dict[str, Any]:
    named: dict[str, Any] = {"ca": lab.ca.certificate, "server": lab.server.certificate}
    named.update({name: ident.certificate for name, ident in lab.identities().items()})
    return named


class CertificateInspector(Adapter):
    """A certificate decoded, its ``x5t#S256`` computed step by step, and whether a token's binding holds.

    Controls: ``source`` (a lab certificate or ``"paste"``), ``pem`` (the text box), ``token`` (the lab
    token variant whose ``cnf`` is compared).
    """

    def __init__(self, simulator: Simulator | None = None, *, seed: str = LAB_SEED) -> None:
        super().__init__(simulator, seed)
        self.lab = self.simulator.lab
        self.asrv: AuthorizationServer = self.simulator.asrv
        self._lab_certificates = _lab_certificates(self.lab)
        self.source = classed(
            widgets.Dropdown(
                options=[
                    *((f"lab: {n}", n) for n in self._lab_certificates),
                    ("paste a PEM below", PASTE),
                ],
                value="client",
                description="certificate",
                style=LABEL_STYLE,
            ),
            "mtlslab-control-cert-source",
        )
        self.pem = classed(
            widgets.Textarea(
                placeholder="-----BEGIN CERTIFICATE-----",
                layout=widgets.Layout(width="98%", height="140px"),
            ),
            "mtlslab-control-pem",
        )
        self.token = widgets.Dropdown(
            options=[name for name, v in TOKEN_VARIANTS.items() if v.kind == "jwt"],
            value="bound",
            description="compare with token",
            style=LABEL_STYLE,
        )
        self.error = widgets.HTML()
        self.decoded = classed(widgets.HTML(), "mtlslab-certificate")
        self.steps = classed(widgets.HTML(), "mtlslab-thumbprint")
        self.binding = widgets.HTML()
        self.widget = root(
            "cert-inspector",
            "Certificate inspector",
            [self.source, self.pem, self.error, self.decoded, self.steps, self.token, self.binding],
        )
        self._observe(self._source_changed, self.source)
        self._observe(self._pem_changed, self.pem)
        self._observe(self.render, self.token)
        self._source_changed()

    def _source_changed(self) -> None:
        if self.source.value != PASTE:
            cert = self._lab_certificates[self.source.value]
            with self.held():
                self.pem.value = load_certificate(cert).public_bytes(Encoding.PEM).decode("ascii")
        self.render()

    def _pem_changed(self) -> None:
        if self.source.value != PASTE:
            with self.held():
                self.source.value = PASTE
        self.render()

    def render(self) -> None:
        """Decode the text box (one core call), show the thumbprint steps and the binding."""
        try:
            cert = load_certificate(self.pem.value, field="pasted certificate")
            steps = render.thumbprint_steps(cert)
            token = self.asrv.mint(self.token.value)
            inspection = inspect_token(token.value, jwks=self.asrv.jwks(), certificate=steps.der)
        except Exception as exc:  # shown inside the widget, which keeps working
            self.error.value = render.error_html(exc)
            self.decoded.value = self.steps.value = self.binding.value = ""
            return
        self.error.value = ""
        self.decoded.value = certificate_html(cert)
        self.steps.value = render.thumbprint_html(steps)
        self.binding.value = render.binding_html(inspection.binding)


class TokenInspector(Adapter):
    """A JWT decoded, its signature checked against the lab JWKS, and its binding against a certificate
    or the lab client's DPoP key.

    Controls: ``source`` (a lab token variant or ``"paste"``), ``token`` (the text box), ``certificate``
    (a lab identity or ``"none"``), ``dpop`` (present the lab client's DPoP key).
    """

    def __init__(self, simulator: Simulator | None = None, *, seed: str = LAB_SEED) -> None:
        super().__init__(simulator, seed)
        self.lab = self.simulator.lab
        self.asrv: AuthorizationServer = self.simulator.asrv
        self.source = classed(
            widgets.Dropdown(
                options=[
                    *((f"lab: {n}", n) for n in TOKEN_VARIANTS if n != "none"),
                    ("paste a JWT below", PASTE),
                ],
                value="bound",
                description="token",
                style=LABEL_STYLE,
            ),
            "mtlslab-control-token-source",
        )
        self.token = classed(
            widgets.Textarea(
                placeholder="eyJ...", layout=widgets.Layout(width="98%", height="90px")
            ),
            "mtlslab-control-jwt",
        )
        self.certificate = classed(
            widgets.Dropdown(
                options=[("none", ""), *((n, n) for n in self.lab.identities())],
                value="client",
                description="certificate",
                style=LABEL_STYLE,
            ),
            "mtlslab-control-token-certificate",
        )
        self.dpop = widgets.Checkbox(
            value=False, description="present the lab client's DPoP key", indent=False
        )
        self.error = widgets.HTML()
        self.decoded = classed(widgets.HTML(), "mtlslab-token")
        self.widget = root(
            "token-inspector",
            "Token inspector",
            [
                self.source,
                self.token,
                widgets.HBox([self.certificate, self.dpop]),
                self.error,
                self.decoded,
            ],
        )
        self._observe(self._source_changed, self.source)
        self._observe(self._token_changed, self.token)
        self._observe(self.render, self.certificate, self.dpop)
        self._source_changed()

    def _source_changed(self) -> None:
        if self.source.value != PASTE:
            with self.held():
                self.token.value = self.asrv.mint(self.source.value).value
        self.render()

    def _token_changed(self) -> None:
        if self.source.value != PASTE:
            with self.held():
                self.source.value = PASTE
        self.render()

    def render(self) -> None:
        """Inspect the text box (one core call: :func:`inspect_token`) and render."""
        value = self.token.value.strip()
        identity = self.lab.identities().get(self.certificate.value)
        jkt = DPoPKey.for_lab(self.lab).jkt if self.dpop.value else None
        try:
            inspection = inspect_token(
                value, jwks=self.asrv.jwks(), certificate=identity, dpop_jkt=jkt
            )
        except TokenError as exc:
            introspected = self.asrv.introspect(value, now=self.simulator.now)
            hint = (
                "<div>Not a JWT — an opaque token is checked by introspection "
                "(<a href='https://www.rfc-editor.org/rfc/rfc7662#section-2.2' target='_blank' "
                "rel='noopener noreferrer'>RFC 7662 §2.2</a>); the lab authorization server answers:</div>"
                f"<pre style='background:#f6f6f6;padding:4px'>{render.esc(json.dumps(introspected, indent=2))}</pre>"
            )
            self.error.value = render.error_html(exc) + hint
            self.decoded.value = ""
            return
        except Exception as exc:
            self.error.value = render.error_html(exc)
            self.decoded.value = ""
            return
        self.error.value = ""
        self.decoded.value = render.token_html(inspection)
