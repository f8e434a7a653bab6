"""The lab PKI: a reproducible CA, client and server identities, and ``x5t#S256``::

    lab = Lab(seed="workshop-2026")
    lab.client.x5t_s256            # the same string on every machine for this seed
    lab.client.registration()      # RFC 8705 §2.1 client metadata
    lab.ca.configure_trust(ctx)    # an ssl.SSLContext now trusts the lab CA

Reproducible from a seed: every EC P-256 and Ed25519 key (HKDF from the seed), every certificate (fixed
serials and validity; deterministic ECDSA per RFC 6979, or Ed25519), so every thumbprint.
What is not: RSA keys. Deriving one needs hand-rolled prime generation, which mtlslab refuses: they are
fresh random keys, so what is made with one differs from run to run (even if PKCS#1 v1.5 is not random).
Validity uses fixed lab dates (:data:`LAB_EPOCH` to :data:`LAB_NOT_AFTER`), not the wall clock.

Spec references: RFC 8705 §2.1 (``tls_client_auth`` and its metadata), §2.2
(``self_signed_tls_client_auth``), §3.1 (``x5t#S256``: base64url, no padding, of the SHA-256 of the DER).
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import dataclasses
import datetime as dt
import enum
import errno
import hashlib
import hmac
import html
import ipaddress
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar

import jwt.algorithms
import jwt.utils
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from mtlslab.errors import CertificateError, KeyTypeError

if TYPE_CHECKING:  # only for annotations: the core never opens a socket or builds an SSL server
    import ssl

__all__ = [
    "LAB_EPOCH",
    "LAB_NOT_AFTER",
    "LAB_NOW",
    "Artefact",
    "AuthMethod",
    "CertificateAuthority",
    "ChainProblem",
    "ChainVerdict",
    "Identity",
    "IdentityMatch",
    "KeyType",
    "Lab",
    "PrivateKey",
    "PublicKey",
    "certificate_der",
    "certificate_html",
    "load_certificate",
    "load_private_key",
    "public_jwk",
    "same_thumbprint",
    "sha256_b64url",
    "sign_certificate",
    "validate_client_chain",
    "x5t_s256",
]

PrivateKey: TypeAlias = "ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey"
PublicKey: TypeAlias = "ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey"
_PRIVATE_TYPES = (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)

#: Certificates are valid from this instant (a fixed lab date, not the wall clock).
LAB_EPOCH = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
#: ... until this one: far enough ahead that real TLS stacks accept lab certificates for years.
LAB_NOT_AFTER = dt.datetime(2045, 1, 1, tzinfo=dt.timezone.utc)
#: The lab clock: tokens are issued, and scenarios evaluated, at this instant unless told otherwise.
LAB_NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)

# Validity of the deliberately defective variants.
_EXPIRED = (LAB_EPOCH.replace(year=2024), LAB_EPOCH.replace(month=6, day=30))
_FUTURE = (LAB_EPOCH.replace(year=2090), LAB_EPOCH.replace(year=2095))

_DERIVATION_SALT = b"mtlslab/lab-key-derivation/v1"


class KeyType(enum.Enum):
    """Key types the lab issues: EC P-256 (default, reproducible), RSA-2048 (random), Ed25519."""

    EC = "ec"
    RSA = "rsa"
    ED25519 = "ed25519"

    @property
    def reproducible(self) -> bool:
        """Whether a key of this type can be derived from the lab seed."""
        return self is not KeyType.RSA


@dataclass(frozen=True, slots=True)
class Artefact:
    """PEM (or DER) bytes of one certificate, chain or key, as trustme's ``Blob``."""

    data: builtins.bytes
    kind: Literal["certificate", "certificate chain", "private key", "public key", "lab manifest"]

    def bytes(self) -> builtins.bytes:
        """The raw bytes."""
        return self.data

    def text(self) -> str:
        """The bytes as text (PEM is ASCII)."""
        return self.data.decode("ascii")

    @property
    def secret(self) -> bool:
        """Whether this artefact holds a private key."""
        return self.kind == "private key"

    def write_to_path(self, path: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Write to ``path`` (private keys 0600, the rest 0644) and return it; an existing ``path`` (a link
        too) is refused with :class:`FileExistsError` unless ``force``. The bytes go to a new file beside
        it (:func:`tempfile.mkstemp`, ``O_EXCL``) renamed over ``path``: a link is replaced, not followed."""
        target = Path(path)
        if not force and os.path.lexists(target):
            raise FileExistsError(
                errno.EEXIST, "exists (pass force=True to replace it)", str(target)
            )
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                if not self.secret:
                    os.fchmod(fh.fileno(), 0o644)
                fh.write(self.data)
            os.replace(name, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
            raise
        return target

    @contextlib.contextmanager
    def tempfile(self) -> Iterator[str]:
        """A temporary file holding the bytes (0600), deleted when the ``with`` block ends."""
        fd, name = tempfile.mkstemp(suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(self.data)
            yield name
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)

    def __repr__(self) -> str:
        return f"<Artefact {self.kind} {len(self.data)} bytes>"


def load_certificate(
    data: x509.Certificate | builtins.bytes | str, *, field: str = "certificate"
) -> x509.Certificate:
    """A certificate from a certificate object, PEM (bytes or text) or DER bytes; a
    :class:`~mtlslab.errors.CertificateError` naming ``field`` when the input is not one."""
    if isinstance(data, x509.Certificate):
        return data
    if isinstance(data, str):
        raw = data.encode("utf-8", "surrogateescape")
    elif isinstance(data, (builtins.bytes, bytearray, memoryview)):
        raw = builtins.bytes(data)
    else:
        raise CertificateError(
            field, f"expected a certificate, PEM or DER, got {type(data).__name__}"
        )
    if not raw.strip():
        raise CertificateError(field, "empty input")
    # PEM may follow explanatory text (openssl's "Bag Attributes", a subject line): look for the block.
    pem_start = raw.find(b"-----BEGIN CERTIFICATE-----")
    if pem_start < 0 and b"-----BEGIN" in raw:
        kind = raw[raw.find(b"-----BEGIN") :].split(b"\n", 1)[0].decode("ascii", "replace")
        raise CertificateError(field, f"PEM block is {kind.strip()!r}, not a CERTIFICATE")
    if pem_start < 0 and isinstance(data, str):
        raise CertificateError(field, "text without a -----BEGIN CERTIFICATE----- block is not PEM")
    try:
        if pem_start >= 0:
            return x509.load_pem_x509_certificate(raw[pem_start:])
        return x509.load_der_x509_certificate(raw)
    except (ValueError, UnsupportedAlgorithm) as exc:
        form = "PEM" if pem_start >= 0 else "DER"
        raise CertificateError(field, f"not a valid {form} certificate ({exc})") from None


def certificate_der(data: x509.Certificate | builtins.bytes | str) -> builtins.bytes:
    """The DER encoding of a certificate given as object, PEM or DER (validated either way)."""
    if isinstance(data, (builtins.bytes, bytearray)) and data[:1] == b"\x30":
        # DER already: parse once to refuse garbage, but hash the caller's exact bytes.
        load_certificate(builtins.bytes(data))
        return builtins.bytes(data)
    return load_certificate(data).public_bytes(serialization.Encoding.DER)


def x5t_s256(cert: x509.Certificate | builtins.bytes | str) -> str:
    """RFC 8705 §3.1: base64url (no padding) of the SHA-256 of the certificate's DER encoding (PEM is
    decoded to DER first, so the thumbprint never depends on PEM line breaks)."""
    return sha256_b64url(certificate_der(cert))


def same_thumbprint(expected: object, presented: str) -> bool:
    """Whether the thumbprint a token carries (any JSON value) is exactly ``presented``, in constant time; a
    non-string, or invalid Unicode (a lone surrogate escaped in the JSON), does not match, never raises."""
    return isinstance(expected, str) and secrets.compare_digest(
        expected.encode("utf-8", "surrogatepass"), presented.encode("utf-8", "surrogatepass")
    )


def sha256_b64url(data: builtins.bytes) -> str:
    """Base64url without padding of the SHA-256 of ``data``: every thumbprint and hash the OAuth specs use
    (``x5t#S256``, a JWK thumbprint, DPoP's ``ath``)."""
    return jwt.utils.base64url_encode(hashlib.sha256(data).digest()).decode("ascii")


def load_private_key(data: builtins.bytes | str, *, field: str = "private key") -> PrivateKey:
    """An EC, RSA or Ed25519 private key from unencrypted PEM or DER (PKCS#8 or traditional)."""
    if not isinstance(data, (str, builtins.bytes, bytearray, memoryview)):
        raise KeyTypeError(field, f"expected PEM or DER, got {type(data).__name__}")
    raw = data.encode() if isinstance(data, str) else builtins.bytes(data)
    pem = raw.lstrip().startswith(b"-----")
    try:
        load = serialization.load_pem_private_key if pem else serialization.load_der_private_key
        key = load(raw, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyTypeError(field, f"not a usable unencrypted private key ({exc})") from None
    if not isinstance(key, _PRIVATE_TYPES):
        raise KeyTypeError(
            field, f"{type(key).__name__} is not supported; use EC P-256, RSA or Ed25519"
        )
    return key


def public_jwk(key: PublicKey | PrivateKey) -> dict[str, Any]:
    """The public JWK (RFC 7517) of a key, via pyjwt's algorithm classes."""
    public = key.public_key() if isinstance(key, _PRIVATE_TYPES) else key
    if isinstance(public, ec.EllipticCurvePublicKey):
        return dict(jwt.algorithms.ECAlgorithm.to_jwk(public, as_dict=True))
    if isinstance(public, rsa.RSAPublicKey):
        return dict(jwt.algorithms.RSAAlgorithm.to_jwk(public, as_dict=True))
    if isinstance(public, ed25519.Ed25519PublicKey):
        return dict(jwt.algorithms.OKPAlgorithm.to_jwk(public, as_dict=True))
    raise KeyTypeError("key", f"{type(public).__name__} has no JWK form in mtlslab")


def sign_certificate(builder: x509.CertificateBuilder, key: PrivateKey) -> x509.Certificate:
    """Sign with the issuer's key: deterministic ECDSA (RFC 6979), Ed25519, or RSA PKCS#1 v1.5."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return builder.sign(key, hashes.SHA256(), ecdsa_deterministic=True)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return builder.sign(key, None)
    return builder.sign(key, hashes.SHA256())


_Extension = TypeVar("_Extension", bound=x509.ExtensionType)


def _extension(cert: x509.Certificate, kind: type[_Extension]) -> _Extension | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _san_of(cert: x509.Certificate) -> tuple[x509.GeneralName, ...]:
    return tuple(_extension(cert, x509.SubjectAlternativeName) or ())


class ChainProblem(enum.Enum):
    """Why a client certificate chain fails clientAuth validation."""

    UNTRUSTED_ISSUER = "untrusted_issuer"
    SELF_SIGNED = "self_signed"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    WRONG_EKU = "wrong_eku"
    OTHER = "other"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainVerdict:
    """The result of validating a client certificate chain for clientAuth."""

    valid: bool
    problem: ChainProblem | None
    reason: str
    chain: tuple[x509.Certificate, ...] = ()

    def __repr__(self) -> str:
        if self.valid or self.problem is None:
            return f"<ChainVerdict valid, {len(self.chain)} certificates>"
        return f"<ChainVerdict invalid: {self.problem.value} ({self.reason})>"


def validate_client_chain(
    leaf: x509.Certificate | builtins.bytes | str,
    *,
    roots: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate] = (),
    at: dt.datetime = LAB_NOW,
) -> ChainVerdict:
    """Validate ``leaf`` for TLS clientAuth against ``roots`` with cryptography's x509 verifier. A failure
    says why: the verifier's message, classified into a :class:`ChainProblem` (the TLS model's alert)."""
    cert = load_certificate(leaf, field="leaf")
    if not roots:
        raise CertificateError("roots", "at least one trust anchor is needed")
    verifier = (
        PolicyBuilder()
        .store(Store(list(roots)))
        .time(at)
        .extension_policies(
            ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=_CLIENT_EE_POLICY
        )
        .build_client_verifier()
    )
    try:
        verified = verifier.verify(cert, list(intermediates))
    except VerificationError as exc:
        problem = _classify(cert, at)
        reason = f"{_PROBLEM_TEXT[problem]} ({exc})"
        return ChainVerdict(valid=False, problem=problem, reason=reason)
    return ChainVerdict(
        valid=True, problem=None, reason="valid for clientAuth", chain=tuple(verified.chain)
    )


# RFC 8705 §2.1.2 lets a client be recognised by its subject DN alone, so unlike the Web PKI defaults
# a client certificate may come without subjectAltName.
_CLIENT_EE_POLICY = ExtensionPolicy.webpki_defaults_ee().may_be_present(
    x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
)

_ANY_EKU, _SERVER_AUTH = ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE, ExtendedKeyUsageOID.SERVER_AUTH
_PROBLEM_TEXT = {
    ChainProblem.UNTRUSTED_ISSUER: "issued by a CA the verifier does not trust",
    ChainProblem.SELF_SIGNED: "self-signed where a CA-issued certificate is expected",
    ChainProblem.EXPIRED: "the certificate has expired",
    ChainProblem.NOT_YET_VALID: "the certificate is not yet valid",
    ChainProblem.WRONG_EKU: "extendedKeyUsage lacks clientAuth",
    ChainProblem.OTHER: "the chain does not validate",
}


def _classify(cert: x509.Certificate, at: dt.datetime) -> ChainProblem:
    """Name the single defect the lab's variants carry, in the order OpenSSL reports them."""
    if cert.issuer == cert.subject:
        with contextlib.suppress(ValueError, TypeError, InvalidSignature):
            cert.verify_directly_issued_by(cert)
            return ChainProblem.SELF_SIGNED
    if at > cert.not_valid_after_utc:
        return ChainProblem.EXPIRED
    if at < cert.not_valid_before_utc:
        return ChainProblem.NOT_YET_VALID
    eku = list(_extension(cert, x509.ExtendedKeyUsage) or [_ANY_EKU])  # no EKU restricts nothing
    if ExtendedKeyUsageOID.CLIENT_AUTH not in eku and _ANY_EKU not in eku:
        return ChainProblem.WRONG_EKU
    return ChainProblem.UNTRUSTED_ISSUER


_MatchKind = Literal["subject_dn", "san_dns", "san_uri", "san_ip", "san_email"]


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityMatch:
    """How an RFC 8705 §2.1.2 ``tls_client_auth`` client is recognised: which metadata name, what value."""

    kind: _MatchKind
    value: str

    @property
    def metadata_name(self) -> str:
        """The client metadata parameter, e.g. ``tls_client_auth_san_dns``."""
        return f"tls_client_auth_{self.kind}"


AuthMethod = Literal["tls_client_auth", "self_signed_tls_client_auth", "server"]


class _Certified:
    """What an identity and a CA share: a certificate, shown as PEM and as its thumbprint."""

    __slots__ = ()
    certificate: x509.Certificate

    @property
    def cert_pem(self) -> Artefact:
        """The certificate as PEM (a CA's is what a peer trusts)."""
        return Artefact(self.certificate.public_bytes(serialization.Encoding.PEM), "certificate")

    @property
    def x5t_s256(self) -> str:
        """RFC 8705 §3.1 thumbprint of the certificate."""
        return x5t_s256(self.certificate)


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity(_Certified):
    """A certificate with its private key (and chain), as a client or server presents it; equal by name,
    certificate and chain, so two labs made from the same seed hold equal identities."""

    name: str
    certificate: x509.Certificate
    private_key: PrivateKey = field(compare=False)
    chain: tuple[x509.Certificate, ...] = ()
    auth_method: AuthMethod = field(default="tls_client_auth", compare=False)
    match: IdentityMatch | None = field(default=None, compare=False)
    client_id: str | None = field(default=None, compare=False)
    defect: str | None = field(default=None, compare=False)
    issuer: CertificateAuthority | None = field(default=None, repr=False, compare=False)

    @property
    def der(self) -> builtins.bytes:
        """The certificate's DER encoding."""
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def key_type(self) -> KeyType:
        """The key type of this identity."""
        if isinstance(self.private_key, ec.EllipticCurvePrivateKey):
            return KeyType.EC
        return KeyType.RSA if isinstance(self.private_key, rsa.RSAPrivateKey) else KeyType.ED25519

    @property
    def cert_chain_pem(self) -> Artefact:
        """Leaf then intermediates, as PEM: what a TLS peer sends."""
        parts = [self.certificate, *self.chain]
        pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in parts)
        return Artefact(pem, "certificate chain")

    @property
    def private_key_pem(self) -> Artefact:
        """The private key as unencrypted PKCS#8 PEM (written 0600)."""
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return Artefact(pem, "private key")

    def jwks(self) -> dict[str, Any]:
        """The JWK Set a ``self_signed_tls_client_auth`` client registers (RFC 8705 §2.2), with ``x5c``."""
        jwk = public_jwk(self.private_key)
        jwk["x5c"] = [base64.b64encode(self.der).decode("ascii")]  # RFC 7517 §4.7: base64 DER
        return {"keys": [jwk]}

    def registration(self) -> dict[str, Any]:
        """RFC 8705 client metadata for this identity (§2.1.2 or §2.2, plus §3.4's bound-token flag)."""
        if self.auth_method == "server":
            raise CertificateError(
                "identity", f"{self.name} is a server identity; clients register"
            )
        meta: dict[str, Any] = {} if self.client_id is None else {"client_id": self.client_id}
        meta["token_endpoint_auth_method"] = self.auth_method
        if self.auth_method == "tls_client_auth":
            assert self.match is not None
            meta[self.match.metadata_name] = self.match.value
        else:
            meta["jwks"] = self.jwks()
        meta["tls_client_certificate_bound_access_tokens"] = True
        return meta

    def configure_cert(self, ctx: ssl.SSLContext) -> None:
        """Load this identity's certificate chain and key into ``ctx`` (client or server side)."""
        with self.cert_chain_pem.tempfile() as certfile, self.private_key_pem.tempfile() as keyfile:
            ctx.load_cert_chain(certfile, keyfile)

    def _reissue(
        self,
        defect: str,
        *,
        by: CertificateAuthority | None = None,
        itself: bool = False,
        **changes: Any,
    ) -> Identity:
        """The same subject, key and SANs in a new certificate, signed ``by`` a CA (its own issuer by
        default) or, with ``itself``, by its own key."""
        ca = by or self.issuer
        if ca is None:
            raise CertificateError(
                "identity", f"{self.name} has no issuer to re-sign a variant with"
            )
        name, signer = f"{self.name}+{defect}", None if itself else ca
        label = f"self-signed/{name}" if itself else f"{ca.name}/variant/{self.name}/{defect}"
        subject, san = self.certificate.subject, _san_of(self.certificate)
        cert = _issue(
            ca.lab.serial(label), subject, self.private_key, by=signer, san=san, **changes
        )
        return dataclasses.replace(
            self,
            name=name,
            certificate=cert,
            chain=signer.chain if signer else (),
            auth_method="tls_client_auth" if itself else self.auth_method,
            defect=defect,
            issuer=signer,
        )

    def expired(self) -> Identity:
        """The same subject and key, in a certificate whose validity ended on 2025-06-30."""
        return self._reissue("expired", not_before=_EXPIRED[0], not_after=_EXPIRED[1])

    def not_yet_valid(self) -> Identity:
        """The same subject and key, in a certificate valid only from 2090."""
        return self._reissue("not-yet-valid", not_before=_FUTURE[0], not_after=_FUTURE[1])

    def server_auth_only(self) -> Identity:
        """The same subject and key, but an EKU of serverAuth only: unusable for clientAuth."""
        return self._reissue("server-auth-only", eku=[_SERVER_AUTH])

    def issued_by(self, ca: CertificateAuthority) -> Identity:
        """The same subject and key, issued by ``ca`` (e.g. a CA the resource server does not trust)."""
        return self._reissue(f"issued-by-{ca.name}", by=ca)

    def self_signed(self) -> Identity:
        """The same subject and key in a self-signed certificate, where a PKI-issued one is expected."""
        if self.issuer is None:
            raise CertificateError("identity", f"{self.name} is self-signed already")
        return self._reissue("self-signed", itself=True)

    def __repr__(self) -> str:
        subject = self.certificate.subject.rfc4514_string()
        defect = f" defect={self.defect}" if self.defect else ""
        return f"<Identity {self.name} {self.auth_method} subject={subject!r} x5t#S256={self.x5t_s256}{defect}>"

    def _repr_html_(self) -> str:
        rows = [("auth method", self.auth_method), ("key type", self.key_type.value)]
        if self.match is not None:
            rows.append((self.match.metadata_name, self.match.value))
        if self.defect:
            rows.append(("defect (on purpose)", self.defect))
        return certificate_html(self.certificate, title=f"Identity {self.name}", extra=rows)


def certificate_html(
    cert: x509.Certificate, *, title: str = "", extra: Sequence[tuple[str, str]] = ()
) -> str:
    """A certificate decoded as an inline-styled, escaped HTML table: names, usage, validity, serial,
    key, ``extra`` rows and the ``x5t#S256`` (under ``title``, in a box, when one is given)."""
    key = cert.public_key()
    spki = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    eku = _extension(cert, x509.ExtendedKeyUsage)
    usage = (
        "(none)" if eku is None else ", ".join(getattr(o, "_name", o.dotted_string) for o in eku)
    )
    valid = f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} → {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    rows: list[tuple[str, str]] = [
        ("subject", cert.subject.rfc4514_string() or "(empty)"),
        ("issuer", cert.issuer.rfc4514_string() or "(empty)"),
        ("self-signed", "yes" if cert.subject == cert.issuer else "no"),
        ("subjectAltName", ", ".join(str(n.value) for n in _san_of(cert)) or "(none)"),
        ("extendedKeyUsage", usage),
        ("valid", valid),
        ("serial", f"{cert.serial_number:x}"),
        ("public key", f"{type(key).__name__.lstrip('_')} ({len(spki)} bytes SPKI)"),
        *extra,
        ("x5t#S256", x5t_s256(cert)),
    ]
    cells = "".join(
        f"<tr><th style='text-align:left;padding:2px 8px;color:#555;font-weight:normal'>{html.escape(k)}</th>"
        f"<td style='padding:2px 8px;font-family:monospace;word-break:break-all'>{html.escape(v)}</td></tr>"
        for k, v in rows
    )
    table = f"<table style='border-collapse:collapse;font-size:12px'>{cells}</table>"
    if not title:
        return table
    return (
        "<div style='border:1px solid #ccc;border-radius:4px;padding:6px;margin:4px 0'>"
        f"<div style='font-weight:bold;margin-bottom:4px'>{html.escape(title)}</div>{table}</div>"
    )


def _name(common_name: str) -> x509.Name:
    org, cn = NameOID.ORGANIZATION_NAME, NameOID.COMMON_NAME
    return x509.Name([x509.NameAttribute(org, "mtlslab"), x509.NameAttribute(cn, common_name)])


def _issue(
    serial: int,
    subject: x509.Name,
    key: PrivateKey,
    *,
    by: CertificateAuthority | None = None,
    ca: bool = False,
    path_length: int | None = None,
    eku: Sequence[x509.ObjectIdentifier] = (ExtendedKeyUsageOID.CLIENT_AUTH,),
    san: Sequence[x509.GeneralName] = (),
    not_before: dt.datetime = LAB_EPOCH,
    not_after: dt.datetime = LAB_NOT_AFTER,
) -> x509.Certificate:
    """Every lab certificate: issued ``by`` a CA (with its key identifier), or self-signed; a CA's
    (``path_length``) or a leaf's (``eku``, ``san``)."""
    public, extensions = key.public_key(), list[tuple[x509.ExtensionType, bool]]()
    if by is not None:  # RFC 5280 §4.2.1.1: the issuer's key identifier (as its SKI, from its key)
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(by.private_key.public_key())
        extensions.append((aki, False))
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not ca and isinstance(key, rsa.RSAPrivateKey),
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )
    extensions += [
        (x509.BasicConstraints(ca=ca, path_length=path_length), True),
        (usage, True),
        *([] if ca else [(x509.ExtendedKeyUsage(list(eku)), False)]),
        (x509.SubjectKeyIdentifier.from_public_key(public), False),
        *([(x509.SubjectAlternativeName(list(san)), False)] if san else []),
    ]
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if by is None else by.certificate.subject)
        .public_key(public)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return sign_certificate(builder, key if by is None else by.private_key)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class CertificateAuthority(_Certified):
    """A lab CA (root or intermediate) that issues client and server certificates."""

    name: str
    certificate: x509.Certificate
    private_key: PrivateKey
    lab: Lab = field(repr=False)
    parent: CertificateAuthority | None = field(default=None, repr=False)

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """This CA and its parents below the root: what a leaf it issues sends along."""
        return () if self.parent is None else (self.certificate, *self.parent.chain)

    @property
    def root(self) -> CertificateAuthority:
        """The self-signed root above this CA."""
        return self if self.parent is None else self.parent.root

    def configure_trust(self, ctx: ssl.SSLContext) -> None:
        """Make ``ctx`` trust this CA's root."""
        ctx.load_verify_locations(cadata=self.root.cert_pem.text())

    def intermediate(self, name: str = "intermediate") -> CertificateAuthority:
        """A CA issued by this one (path length 0)."""
        label = f"{self.name}/{name}"
        key = self.lab.key(label, KeyType.EC)
        serial = self.lab.serial(f"{self.name}/{label}")
        cert = _issue(serial, _name(f"mtlslab {name}"), key, by=self, ca=True, path_length=0)
        return CertificateAuthority(
            name=name, certificate=cert, private_key=key, lab=self.lab, parent=self
        )

    def issue_client(
        self,
        name: str,
        *,
        client_id: str | None = None,
        subject_dn: str | None = None,
        san_dns: Sequence[str] = (),
        san_uri: Sequence[str] = (),
        san_ip: Sequence[str] = (),
        san_email: Sequence[str] = (),
        match: _MatchKind | None = None,
        key_type: KeyType = KeyType.EC,
    ) -> Identity:
        """A ``tls_client_auth`` client certificate (RFC 8705 §2.1) with EKU clientAuth, recognised by its
        subject DN unless ``match`` names a SAN kind (by default the first SAN kind given)."""
        try:
            subject = x509.Name.from_rfc4514_string(subject_dn) if subject_dn else _name(name)
        except ValueError as exc:
            raise CertificateError(
                "subject_dn", f"not an RFC 4514 distinguished name ({exc})"
            ) from None
        given = dict(zip(_SAN_KINDS, (san_dns, san_uri, san_ip, san_email), strict=True))
        first: _MatchKind = next((k for k, values in given.items() if values), "subject_dn")
        kind = first if match is None else match
        if kind != "subject_dn" and not given[kind]:
            raise CertificateError("match", f"{kind} chosen but no such subjectAltName given")
        value = subject.rfc4514_string() if kind == "subject_dn" else given[kind][0]
        key = self.lab.key(f"client/{name}", key_type)
        serial = self.lab.serial(f"{self.name}/client/{name}")
        return Identity(
            name=name,
            certificate=_issue(serial, subject, key, by=self, san=_san_names(given)),
            private_key=key,
            chain=self.chain,
            match=IdentityMatch(kind=kind, value=value),
            client_id=client_id or f"lab-{name}",
            issuer=self,
        )

    def __repr__(self) -> str:
        kind = "root" if self.parent is None else f"intermediate under {self.parent.name}"
        return f"<CertificateAuthority {self.name} ({kind}) x5t#S256={self.x5t_s256}>"

    def _repr_html_(self) -> str:
        return certificate_html(self.certificate, title=f"Certificate authority {self.name}")


def _ip_name(text: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(text))
    except ValueError:
        raise CertificateError("san_ip", f"{text!r} is not an IP address") from None


#: The subjectAltName kinds of RFC 8705 §2.1.2, in the order a certificate lists them and a default
#: match prefers them.
_SAN_KINDS: dict[_MatchKind, Callable[[str], x509.GeneralName]] = {
    "san_dns": x509.DNSName,
    "san_uri": x509.UniformResourceIdentifier,
    "san_ip": _ip_name,
    "san_email": x509.RFC822Name,
}


def _san_names(given: Mapping[_MatchKind, Sequence[str]]) -> list[x509.GeneralName]:
    return [make(value) for kind, make in _SAN_KINDS.items() for value in given.get(kind, ())]


#: The named client identities of a :class:`Lab`, in the order :meth:`Lab.identities` lists them; each is the
#: attribute of the same name with ``_`` for ``-``.
_IDENTITY_NAMES = (
    "client",
    "other-client",
    "self-signed-client",
    "expired-client",
    "not-yet-valid-client",
    "untrusted-ca-client",
    "server-auth-only-client",
    "pki-self-signed-client",
)


class Lab:
    """Everything a workshop needs, derived from one seed: CAs, client and server identities, and the
    deliberately defective variants of the client (each a property, listed by :meth:`identities`).
    ``Lab(seed)`` is reproducible to the byte; ``Lab()`` draws a random seed (shown as ``lab.seed``, so a
    surprising run can be repeated). Material is made on first use and kept."""

    def __init__(
        self,
        seed: str | int | builtins.bytes | None = None,
        *,
        intermediate: bool = False,
        client_key_type: KeyType = KeyType.EC,
    ) -> None:
        self.seeded = seed is not None
        self.seed: str | int | builtins.bytes = os.urandom(16).hex() if seed is None else seed
        if isinstance(self.seed, bool) or not isinstance(self.seed, (str, int, builtins.bytes)):
            raise CertificateError(
                "seed", f"a seed is a str, int or bytes, not {type(seed).__name__}"
            )
        # RFC 5869 §2.2 HKDF-Extract once per lab; derive() runs only HKDF-Expand per label. The output is
        # exactly HKDF(salt, seed, label), but a lab's many derivations no longer repeat the extract step.
        material = self.seed if isinstance(self.seed, builtins.bytes) else str(self.seed).encode()
        self._prk = hmac.digest(_DERIVATION_SALT, material, "sha256")
        self.with_intermediate = intermediate
        self.client_key_type = client_key_type

    def derive(self, label: str, length: int = 32) -> builtins.bytes:
        """``length`` bytes derived from the seed for ``label`` (HKDF-SHA256)."""
        expand = HKDFExpand(algorithm=hashes.SHA256(), length=length, info=label.encode())
        return expand.derive(self._prk)

    def key(self, label: str, key_type: KeyType = KeyType.EC) -> PrivateKey:
        """The private key for ``label``: derived for EC and Ed25519, random for RSA (see module docs)."""
        if key_type is KeyType.EC:
            order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # P-256 group order
            scalar = int.from_bytes(self.derive(f"key/ec/{label}", 48), "big") % (order - 1) + 1
            return ec.derive_private_key(scalar, ec.SECP256R1())
        if key_type is KeyType.ED25519:
            return ed25519.Ed25519PrivateKey.from_private_bytes(
                self.derive(f"key/ed25519/{label}", 32)
            )
        if key_type is KeyType.RSA:
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)
        raise KeyTypeError("key_type", f"unsupported key type {key_type!r}")

    def serial(self, label: str) -> int:
        """A positive 127-bit certificate serial derived from the seed for ``label``."""
        return int.from_bytes(self.derive(f"serial/{label}", 16), "big") >> 1 or 1

    @cached_property
    def ca(self) -> CertificateAuthority:
        """The lab's root CA."""
        return self._root("ca", "mtlslab Lab Root CA")

    @cached_property
    def issuing_ca(self) -> CertificateAuthority:
        """The CA that issues the lab's leaf certificates (an intermediate when asked for one)."""
        return self.ca.intermediate("intermediate") if self.with_intermediate else self.ca

    @cached_property
    def rogue_ca(self) -> CertificateAuthority:
        """Another CA, which no lab resource server trusts."""
        return self._root("rogue-ca", "Rogue CA (not trusted by the lab)")

    def _root(self, name: str, common_name: str) -> CertificateAuthority:
        key = self.key(f"ca/{name}", KeyType.EC)
        cert = _issue(self.serial(f"ca/{name}"), _name(common_name), key, ca=True)
        return CertificateAuthority(name=name, certificate=cert, private_key=key, lab=self)

    @cached_property
    def client(self) -> Identity:
        """The lab client (``tls_client_auth`` by subject DN); bound tokens are bound to this one."""
        return self.issuing_ca.issue_client(
            "client", client_id="lab-client", key_type=self.client_key_type
        )

    @cached_property
    def other_client(self) -> Identity:
        """A second valid ``tls_client_auth`` client (recognised by SAN DNS)."""
        return self.issuing_ca.issue_client(
            "other-client", client_id="lab-other-client", san_dns=("other-client.mtlslab.test",)
        )

    @cached_property
    def self_signed_client(self) -> Identity:
        """A ``self_signed_tls_client_auth`` client (RFC 8705 §2.2): certificate registered via ``jwks``."""
        name = "self-signed-client"
        key = self.key(f"self-signed/{name}", self.client_key_type)
        uri = x509.UniformResourceIdentifier("https://client.mtlslab.test/self-signed")
        return Identity(
            name=name,
            certificate=_issue(self.serial(f"self-signed/{name}"), _name(name), key, san=(uri,)),
            private_key=key,
            auth_method="self_signed_tls_client_auth",
            client_id="lab-self-signed-client",
        )

    @cached_property
    def server(self) -> Identity:
        """The resource server's certificate (EKU serverAuth), for ``localhost``, ``127.0.0.1`` and ``::1``."""
        ca, key = self.issuing_ca, self.key("server/server", KeyType.EC)
        san = _san_names({"san_dns": ["localhost"], "san_ip": ["127.0.0.1", "::1"]})
        serial = self.serial(f"{ca.name}/server/server")
        cert = _issue(serial, _name("localhost"), key, by=ca, eku=[_SERVER_AUTH], san=san)
        return Identity(
            name="server",
            certificate=cert,
            private_key=key,
            chain=ca.chain,
            auth_method="server",
            issuer=ca,
        )

    @cached_property
    def expired_client(self) -> Identity:
        """``client``'s key and subject in a certificate that expired on 2025-06-30."""
        return self.client.expired()

    @cached_property
    def not_yet_valid_client(self) -> Identity:
        """``client``'s key and subject in a certificate valid only from 2090."""
        return self.client.not_yet_valid()

    @cached_property
    def untrusted_ca_client(self) -> Identity:
        """``client``'s key and subject, issued by :attr:`rogue_ca`."""
        return self.client.issued_by(self.rogue_ca)

    @cached_property
    def server_auth_only_client(self) -> Identity:
        """``client``'s key and subject with EKU serverAuth only."""
        return self.client.server_auth_only()

    @cached_property
    def pki_self_signed_client(self) -> Identity:
        """``client``'s key and subject, self-signed where a PKI-issued certificate is expected."""
        return self.client.self_signed()

    def identities(self) -> dict[str, Identity]:
        """Every named client identity, by the name scenarios use."""
        return {name: self.identity(name) for name in _IDENTITY_NAMES}

    def identity(self, name: str) -> Identity:
        """The client identity scenarios call ``name`` (``other-client``), made only if it is asked for."""
        if name not in _IDENTITY_NAMES:
            raise KeyError(name)
        return getattr(self, name.replace("-", "_"))  # type: ignore[no-any-return]

    def validate(self, identity: Identity, *, at: dt.datetime = LAB_NOW) -> ChainVerdict:
        """Validate ``identity`` for clientAuth against the lab root (what a lab TLS server does)."""
        return validate_client_chain(
            identity.certificate, roots=[self.ca.certificate], intermediates=identity.chain, at=at
        )

    def __repr__(self) -> str:
        seed = repr(self.seed) if self.seeded else f"random {self.seed!r}"
        extra = ", intermediate" if self.with_intermediate else ""
        return f"<Lab seed={seed}{extra}>"

    def _repr_html_(self) -> str:
        named: dict[str, _Certified] = {"ca": self.ca, **self.identities(), "server": self.server}
        cell = "<td style='padding:2px 8px;font-family:monospace'>"
        rows = "".join(
            f"<tr><td style='padding:2px 8px'>{html.escape(name)}</td>{cell}"
            f"{html.escape(it.certificate.subject.rfc4514_string())}</td>{cell}{it.x5t_s256}</td></tr>"
            for name, it in named.items()
        )
        head = "".join(
            f"<th style='text-align:left;padding:2px 8px'>{h}</th>"
            for h in ("name", "subject", "x5t#S256")
        )
        return (
            f"<div><b>{html.escape(repr(self))}</b><table style='border-collapse:collapse'>"
            f"<tr>{head}</tr>{rows}</table></div>"
        )
