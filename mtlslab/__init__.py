"""mtlslab: see how an OAuth resource server should answer certificate-bound access tokens (RFC 8705).

The core is pure (no sockets, no widgets) and imports one way::

    pki → tokens → scenarios / tls → rs → interpretations → compare

with the edges — :mod:`mtlslab.live`, :mod:`mtlslab.widgets`, :mod:`mtlslab.cli` — built on top.
The most used names are re-exported here; everything else lives in its module.
"""

from __future__ import annotations

from mtlslab.errors import (
    CertificateError,
    InputError,
    InterpretationError,
    KeyTypeError,
    MtlslabError,
    ScenarioError,
    TokenError,
    UnknownScenarioError,
)
from mtlslab.pki import LAB_NOW, Artefact, CertificateAuthority, Identity, KeyType, Lab, x5t_s256
from mtlslab.tokens import (
    AccessToken,
    AuthorizationServer,
    DPoPKey,
    dpop_proof,
    inspect_token,
    jwk_thumbprint,
)

__version__ = "0.1.0"

__all__ = [
    "LAB_NOW",
    "AccessToken",
    "Artefact",
    "AuthorizationServer",
    "CertificateAuthority",
    "CertificateError",
    "DPoPKey",
    "Identity",
    "InputError",
    "InterpretationError",
    "KeyType",
    "KeyTypeError",
    "Lab",
    "MtlslabError",
    "ScenarioError",
    "TokenError",
    "UnknownScenarioError",
    "__version__",
    "dpop_proof",
    "inspect_token",
    "jwk_thumbprint",
    "x5t_s256",
]
