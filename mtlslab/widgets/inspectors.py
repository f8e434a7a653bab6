"""Certificate and token inspectors: paste a PEM or JWT (or pick lab material), see it decoded."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import ipywidgets as widgets
from cryptography.hazmat.primitives.serialization import Encoding

from mtlslab.compare import Simulator
from mtlslab.errors import TokenError
from mtlslab.pki import CertificateAuthority, Identity, certificate_html, load_certificate
from mtlslab.rs import inspect_token
from mtlslab.spec import cite
from mtlslab.tokens import TOKEN_VARIANTS, AuthorizationServer, DPoPKey
from mtlslab.widgets import _render as render
from mtlslab.widgets._common import LABEL_STYLE, Adapter, checkbox, classed, root
from mtlslab.widgets._render import error_html, esc

__all__ = ["PASTE", "CertificateInspector", "TokenInspector"]

#: The source choice that means "what is in the text box".
PASTE = "paste"


class _Inspector(Adapter):
    """A text box filled from the lab material picked in ``source`` or pasted, decoded on change."""

    source: Any
    render: Callable[[], None]

    def __init__(self, simulator: Simulator | None) -> None:
        super().__init__(simulator)
        self.lab = self.simulator.lab
        self.asrv: AuthorizationServer = self.simulator.asrv

    def _sources(self, kind: str, names: Iterable[str], pasted: str, **options: Any) -> Any:
        """The ``source`` dropdown: each lab name, then ``pasted`` (the :data:`PASTE` choice)."""
        choices = [*((f"lab: {n}", n) for n in names), (pasted, PASTE)]
        control = widgets.Dropdown(options=choices, style=LABEL_STYLE, **options)
        return classed(control, f"mtlslab-control-{kind}-source")

    def _watch(self, box: Any, lab_text: Callable[[str], str], *others: Any) -> None:
        """Fill ``box`` with ``lab_text(name)`` when a lab source is picked, pick :data:`PASTE` when
        ``box`` is edited, render on every change (of ``others`` too), and render once now."""

        def picked() -> None:
            if self.source.value != PASTE:
                with self.held():
                    box.value = lab_text(self.source.value)
            self.render()

        def edited() -> None:
            if self.source.value != PASTE:
                with self.held():
                    self.source.value = PASTE
            self.render()

        self._observe(picked, self.source)
        self._observe(edited, box)
        self._observe(self.render, *others)
        picked()


class CertificateInspector(_Inspector):
    """A certificate decoded, its ``x5t#S256`` computed step by step, and whether the binding of a
    token (``token``: the lab token variant whose ``cnf`` is compared) holds."""

    def __init__(self, simulator: Simulator | None = None) -> None:
        super().__init__(simulator)
        named: dict[str, CertificateAuthority | Identity] = {"ca": self.lab.ca}
        named |= {"server": self.lab.server, **self.lab.identities()}
        self.source = self._sources(
            "cert", named, "paste a PEM below", value="client", description="certificate"
        )
        self.pem = widgets.Textarea(
            placeholder="-----BEGIN CERTIFICATE-----",
            layout=widgets.Layout(width="98%", height="140px"),
        )
        self.token = widgets.Dropdown(
            options=[name for name, v in TOKEN_VARIANTS.items() if v.kind == "jwt"],
            value="bound",
            description="compare with token",
            style=LABEL_STYLE,
        )
        classed(self.pem, "mtlslab-control-pem")
        self.error = widgets.HTML()
        self.decoded = classed(widgets.HTML(), "mtlslab-certificate")
        self.steps = classed(widgets.HTML(), "mtlslab-thumbprint")
        self.binding = widgets.HTML()
        self.widget = root(
            "cert-inspector",
            "Certificate inspector",
            [self.source, self.pem, self.error, self.decoded, self.steps, self.token, self.binding],
        )
        self._watch(self.pem, lambda name: named[name].cert_pem.text(), self.token)

    def render(self) -> None:
        """Decode the text box (one core call), show the thumbprint steps and the binding."""
        try:
            cert = load_certificate(self.pem.value, field="pasted certificate")
            der = cert.public_bytes(Encoding.DER)
            token = self.asrv.mint(self.token.value)
            inspection = inspect_token(token.value, jwks=self.asrv.jwks(), certificate=der)
        except Exception as exc:  # shown inside the widget, which keeps working
            self.error.value = error_html(exc)
            self.decoded.value = self.steps.value = self.binding.value = ""
            return
        self.error.value = ""
        self.decoded.value = certificate_html(cert)
        self.steps.value = render.thumbprint_html(der)
        self.binding.value = render.binding_html(inspection.binding)


class TokenInspector(_Inspector):
    """A JWT decoded, its signature checked against the lab JWKS, and its binding against a certificate
    (``certificate``: a lab identity or none) or the lab client's DPoP key (``dpop``)."""

    def __init__(self, simulator: Simulator | None = None) -> None:
        super().__init__(simulator)
        variants = [n for n in TOKEN_VARIANTS if n != "none"]
        self.source = self._sources(
            "token", variants, "paste a JWT below", value="bound", description="token"
        )
        self.token = widgets.Textarea(
            placeholder="eyJ...", layout=widgets.Layout(width="98%", height="90px")
        )
        self.certificate = widgets.Dropdown(
            options=[("none", ""), *((n, n) for n in self.lab.identities())],
            value="client",
            description="certificate",
            style=LABEL_STYLE,
        )
        classed(self.token, "mtlslab-control-jwt")
        classed(self.certificate, "mtlslab-control-token-certificate")
        self.dpop = checkbox("present the lab client's DPoP key")
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
        self._watch(
            self.token, lambda name: self.asrv.mint(name).value, self.certificate, self.dpop
        )

    def render(self) -> None:
        """Inspect the text box (one core call: :func:`inspect_token`) and render."""
        value = self.token.value.strip()
        identity = self.lab.identities().get(self.certificate.value)
        jkt = DPoPKey.for_lab(self.lab).jkt if self.dpop.value else None
        try:
            jwks = self.asrv.jwks()
            inspection = inspect_token(value, jwks=jwks, certificate=identity, dpop_jkt=jkt)
        except Exception as exc:  # shown inside the widget, which keeps working
            hint = ""
            if isinstance(exc, TokenError):
                answer = json.dumps(self.asrv.introspect(value, now=self.simulator.now), indent=2)
                hint = (
                    "<div>Not a JWT — an opaque token is checked by introspection "
                    f"({render.link(cite('RFC 7662 §2.2'))}); the lab authorization server answers:"
                    f"</div><pre style='background:#f6f6f6;padding:4px'>{esc(answer)}</pre>"
                )
            self.error.value = error_html(exc) + hint
            self.decoded.value = ""
            return
        self.error.value = ""
        self.decoded.value = render.token_html(inspection)
