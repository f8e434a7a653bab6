"""The errors mtlslab raises, and only when it is misused or fed unusable input.

A request that a resource server rejects is *not* an error: it is a returned
:class:`~mtlslab.rs.Decision`. Exceptions mean the library was called wrongly or
given something it cannot use, and each says which field and why::

    MtlslabError                      base of everything mtlslab raises on purpose
    └── InputError (ValueError)       unusable input: .field, .reason
        ├── CertificateError          malformed PEM/DER, not a certificate, wrong usage
        ├── KeyTypeError              a key of the wrong type or size
        ├── TokenError                a string that is not a JWT, unusable claims, bad JWKS
        ├── ScenarioError             a scenario or deployment that cannot be realised
        │   └── UnknownScenarioError  an id not in the catalogue (.suggestions: nearest ids)
        ├── InterpretationError       an interpretation table that is incomplete or invalid
        └── ChallengeError            mtlslab.challenge: a challenge that cannot be sent or parsed

The command line turns any :class:`MtlslabError` into one line on stderr and exit status 2.
"""

from __future__ import annotations

__all__ = [
    "CertificateError",
    "InputError",
    "InterpretationError",
    "KeyTypeError",
    "MtlslabError",
    "ScenarioError",
    "TokenError",
    "UnknownScenarioError",
]


class MtlslabError(Exception):
    """Base class of every exception mtlslab raises on purpose."""


class InputError(MtlslabError, ValueError):
    """Input mtlslab cannot use; ``field`` names what was wrong, ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class CertificateError(InputError):
    """A certificate (or its PEM/DER encoding) that cannot be used."""


class KeyTypeError(InputError):
    """A key of a type or size that does not fit where it was given."""


class TokenError(InputError):
    """A token, JWK or JWKS that cannot be used (not a JWT, bad base64url, bad JSON...)."""


class ScenarioError(InputError):
    """A scenario, deployment or presentation that cannot be realised."""


class UnknownScenarioError(ScenarioError):
    """A scenario id that is not in the catalogue; ``suggestions`` lists the nearest ids."""

    def __init__(self, scenario_id: str, suggestions: tuple[str, ...]) -> None:
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__("scenario", f"unknown scenario id {scenario_id!r}{hint}")
        self.scenario_id = scenario_id
        self.suggestions = suggestions


class InterpretationError(InputError):
    """An interpretation that is incomplete, inconsistent or cannot be loaded."""
