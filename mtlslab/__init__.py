"""mtlslab: see how an OAuth resource server should answer certificate-bound access tokens (RFC 8705).

The front door::

    from mtlslab import Lab, Simulator, evaluate, BUILTINS, get_scenario

    sim = Simulator(Lab(seed="workshop"))
    sim.row(get_scenario("no-cert-optional"))       # one scenario under every built-in reading
    print(sim.matrix().to_text())                   # the catalogue × the readings, for a draft

The core is pure (no sockets, no widgets) and imports one way::

    pki → tokens → scenarios / tls → jose → rs → interpretations → compare

with the edges — :mod:`mtlslab.live`, :mod:`mtlslab.widgets`, :mod:`mtlslab.probe`, :mod:`mtlslab.cli` —
built on top. ``import mtlslab`` loads only the foundation (errors, PKI, tokens); the engine's names below
are loaded when first used. Everything else lives in its module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
from mtlslab.tokens import AccessToken, AuthorizationServer, DPoPKey, dpop_proof, jwk_thumbprint

if TYPE_CHECKING:
    from mtlslab.compare import Matrix, Simulator
    from mtlslab.interpretations import BUILTINS, Interpretation, derive, get_interpretation
    from mtlslab.rs import evaluate, inspect_token
    from mtlslab.scenarios import CATALOGUE, Scenario, get_scenario

__version__ = "0.1.0"

#: The engine's front-door names, each with the module that defines it (imported on first use).
_LATER = {
    name: module
    for module, names in {
        "mtlslab.compare": ("Matrix", "Simulator"),
        "mtlslab.interpretations": ("BUILTINS", "Interpretation", "derive", "get_interpretation"),
        "mtlslab.rs": ("evaluate", "inspect_token"),
        "mtlslab.scenarios": ("CATALOGUE", "Scenario", "get_scenario"),
    }.items()
    for name in names
}

__all__ = [
    "BUILTINS",
    "CATALOGUE",
    "LAB_NOW",
    "AccessToken",
    "Artefact",
    "AuthorizationServer",
    "CertificateAuthority",
    "CertificateError",
    "DPoPKey",
    "Identity",
    "InputError",
    "Interpretation",
    "InterpretationError",
    "KeyType",
    "KeyTypeError",
    "Lab",
    "Matrix",
    "MtlslabError",
    "Scenario",
    "ScenarioError",
    "Simulator",
    "TokenError",
    "UnknownScenarioError",
    "__version__",
    "derive",
    "dpop_proof",
    "evaluate",
    "get_interpretation",
    "get_scenario",
    "inspect_token",
    "jwk_thumbprint",
    "x5t_s256",
]


def __getattr__(name: str) -> Any:
    """The engine's front-door names, imported when first asked for (PEP 562)."""
    module = _LATER.get(name)
    if module is None:
        raise AttributeError(f"module 'mtlslab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
