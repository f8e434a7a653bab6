"""The lab PKI: a reproducible CA, client and server identities, and ``x5t#S256``.

One front door, strict underneath::

    lab = Lab(seed="workshop-2026")
    lab.client.x5t_s256            # the same string on every machine for this seed
    lab.client.registration()      # RFC 8705 §2.1 client metadata
    lab.ca.configure_trust(ctx)    # an ssl.SSLContext now trusts the lab CA

What is reproducible from a seed: every EC P-256 and Ed25519 key (derived from the seed with HKDF),
every certificate (fixed serials and validity, signed with deterministic ECDSA per RFC 6979 or with
Ed25519, which is deterministic by design), and therefore every thumbprint. What is not: RSA keys. Deriving
an RSA key from a seed needs hand-rolled prime generation, which mtlslab refuses to do, so RSA keys are
fresh random keys and any certificate or token made with one differs from run to run (its PKCS#1 v1.5
signature is deterministic *given* the key, the key itself is not).

Validity uses fixed lab dates, not the wall clock: certificates are valid from :data:`LAB_EPOCH` to
:data:`LAB_NOT_AFTER`, a window that also contains today's date so real TLS stacks accept them, and the
lab clock :data:`LAB_NOW` sits inside it.

Spec references: RFC 8705 §2.1 (``tls_client_auth`` and its metadata), §2.2
(``self_signed_tls_client_auth``), §3.1 (``x5t#S256``: base64url, no padding, of the SHA-256 of the DER).
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import datetime as dt
import enum
import errno
import hashlib
import html
import ipaddress
import json
import os
import secrets
import stat
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import jwt.algorithms
import jwt.utils
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, hmac, serialization
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
    "LAB_MANIFEST",
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
    "LabFolder",
    "LabFolderConflict",
    "PrivateKey",
    "PublicKey",
    "certificate_der",
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

#: Certificates are valid from this instant (a fixed lab date, not the wall clock).
LAB_EPOCH = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
#: ... until this one: far enough ahead that real TLS stacks accept lab certificates for years.
LAB_NOT_AFTER = dt.datetime(2045, 1, 1, tzinfo=dt.timezone.utc)
#: The lab clock: tokens are issued, and scenarios evaluated, at this instant unless told otherwise.
LAB_NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)

# Dates of the deliberately defective variants.
_EXPIRED_NOT_BEFORE = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
_EXPIRED_NOT_AFTER = dt.datetime(2025, 6, 30, tzinfo=dt.timezone.utc)
_FUTURE_NOT_BEFORE = dt.datetime(2090, 1, 1, tzinfo=dt.timezone.utc)
_FUTURE_NOT_AFTER = dt.datetime(2095, 1, 1, tzinfo=dt.timezone.utc)

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


# --------------------------------------------------------------------------------------------------
# Artefacts: one type for every PEM/DER output.


@dataclass(frozen=True, slots=True)
class Artefact:
    """PEM (or DER) bytes of one certificate, chain or key, as trustme's ``Blob``.

    Private keys are written with mode 0600, everything else 0644.
    """

    data: builtins.bytes
    kind: Literal["certificate", "certificate chain", "private key", "public key"]

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
        """Write to ``path`` (private keys with mode 0600) and return it.

        An existing ``path`` (a symbolic link too) is refused with :class:`FileExistsError` unless
        ``force``; then it is replaced, never written through (see :func:`_write_file`)."""
        return _write_file(Path(path), self.data, secret=self.secret, force=force)

    @contextlib.contextmanager
    def tempfile(self, dir: str | None = None) -> Iterator[str]:
        """A temporary file holding the bytes (0600), deleted when the ``with`` block ends."""
        fd, name = tempfile.mkstemp(suffix=".pem", dir=dir)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(self.data)
            yield name
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)

    def __repr__(self) -> str:
        return f"<Artefact {self.kind} {len(self.data)} bytes>"


def _write_file(target: Path, data: builtins.bytes, *, secret: bool, force: bool) -> Path:
    """Write ``data`` to a new file next to ``target``, then rename it over ``target``.

    The new file is created by :func:`tempfile.mkstemp` (mode 0600, ``O_EXCL``, so never an existing file
    or a link's target); a certificate's is opened up to 0644 before anything is written in it. A rename
    replaces whatever ``target`` names, a symbolic link included, and never writes into the file a link
    points at. An existing ``target`` is refused unless ``force``."""
    if not force and os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, "exists (pass force=True to replace it)", str(target))
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            if not secret:
                os.fchmod(fh.fileno(), 0o644)
            fh.write(data)
        os.replace(name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise
    return target


def _same_file(path: Path, data: builtins.bytes) -> bool | None:
    """Whether ``path`` is a regular file holding exactly ``data`` (None: nothing is there). Links, FIFOs
    and directories are never the same; at most ``len(data) + 1`` bytes are read."""
    try:
        found = os.lstat(path)
    except (
        FileNotFoundError,
        NotADirectoryError,
    ):  # the folder is missing, or is no folder: mkdir says
        return None
    if not stat.S_ISREG(found.st_mode) or found.st_size != len(data):
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as fh:
        return stat.S_ISREG(os.fstat(fd).st_mode) and fh.read(len(data) + 1) == data


#: The file in a lab folder that names the lab which wrote it: its seed and its certificates' ``x5t#S256``.
LAB_MANIFEST = "lab.json"


class LabFolderConflict(FileExistsError):
    """A folder holds files that :meth:`Lab.write` would write differently: another seed's material, or
    unknown material. ``folder``; ``names``: the files that differ; ``seed``: the seed the folder's
    ``lab.json`` names (None when it names none or there is none)."""

    def __init__(self, folder: Path, names: tuple[str, ...], seed: str | None) -> None:
        shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        whose = (
            f"its {LAB_MANIFEST} names seed {seed!r}"
            if seed is not None
            else f"no {LAB_MANIFEST} there names their seed"
        )
        super().__init__(
            errno.EEXIST, f"{folder} holds other material ({shown}; {whose})", str(folder)
        )
        self.folder = folder
        self.names = names
        self.seed = seed


@dataclass(frozen=True, slots=True, kw_only=True)
class LabFolder:
    """What :meth:`Lab.write` did: the folder, the files it wrote, and those it kept (already there with
    the same bytes)."""

    path: Path
    written: tuple[str, ...]
    kept: tuple[str, ...]


def _recorded_seed(path: Path) -> str | None:
    """The seed a lab folder's ``lab.json`` names, if it is readable (at most 64 KiB) and names one."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        raw = fh.read(1 << 16)
    try:
        seed = json.loads(raw).get("seed")
    except (ValueError, AttributeError):
        return None
    return seed if isinstance(seed, str) else None


# --------------------------------------------------------------------------------------------------
# Loading and thumbprints.


def _as_bytes(data: x509.Certificate | builtins.bytes | str, field: str) -> builtins.bytes:
    if isinstance(data, str):
        return data.encode("utf-8", "surrogateescape")
    if isinstance(data, (builtins.bytes, bytearray, memoryview)):
        return builtins.bytes(data)
    raise CertificateError(field, f"expected a certificate, PEM or DER, got {type(data).__name__}")


def load_certificate(
    data: x509.Certificate | builtins.bytes | str, *, field: str = "certificate"
) -> x509.Certificate:
    """A certificate from a certificate object, PEM (bytes or text) or DER bytes.

    Raises :class:`~mtlslab.errors.CertificateError` naming ``field`` when the input is not one.
    """
    if isinstance(data, x509.Certificate):
        return data
    raw = _as_bytes(data, field)
    if not raw.strip():
        raise CertificateError(field, "empty input")
    # PEM may follow explanatory text (openssl's "Bag Attributes", a subject line): look for the block.
    pem_start = raw.find(b"-----BEGIN CERTIFICATE-----")
    text_like = isinstance(data, str) or b"-----BEGIN" in raw
    try:
        if pem_start >= 0:
            return x509.load_pem_x509_certificate(raw[pem_start:])
        if b"-----BEGIN" in raw:
            kind = raw[raw.find(b"-----BEGIN") :].split(b"\n", 1)[0].decode("ascii", "replace")
            raise CertificateError(field, f"PEM block is {kind.strip()!r}, not a CERTIFICATE")
        if text_like:
            raise CertificateError(
                field, "text without a -----BEGIN CERTIFICATE----- block is not PEM"
            )
        return x509.load_der_x509_certificate(raw)
    except CertificateError:
        raise
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
    """RFC 8705 §3.1: base64url (no padding) of the SHA-256 of the certificate's DER encoding.

    Accepts a certificate object, PEM (bytes or text) or DER bytes; PEM is decoded to DER first, so
    the thumbprint never depends on PEM line breaks.
    """
    return sha256_b64url(certificate_der(cert))


def same_thumbprint(expected: object, presented: str) -> bool:
    """Whether the thumbprint a token carries (any JSON value) is exactly ``presented``, compared in constant
    time. A value that is not a string, or not valid Unicode (a lone surrogate escaped in the JSON), does
    not match; it never raises."""
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
    try:
        key = (
            serialization.load_pem_private_key(raw, password=None)
            if raw.lstrip().startswith(b"-----")
            else serialization.load_der_private_key(raw, password=None)
        )
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyTypeError(field, f"not a usable unencrypted private key ({exc})") from None
    if not isinstance(
        key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)
    ):
        raise KeyTypeError(
            field, f"{type(key).__name__} is not supported; use EC P-256, RSA or Ed25519"
        )
    return key


def public_jwk(key: PublicKey | PrivateKey) -> dict[str, Any]:
    """The public JWK (RFC 7517) of a key, via pyjwt's algorithm classes."""
    public: PublicKey
    if isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
        public = key.public_key()
    else:
        public = key
    if isinstance(public, ec.EllipticCurvePublicKey):
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, rsa.RSAPublicKey):
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ed25519.Ed25519PublicKey):
        jwk = jwt.algorithms.OKPAlgorithm.to_jwk(public, as_dict=True)
    else:
        raise KeyTypeError("key", f"{type(public).__name__} has no JWK form in mtlslab")
    return dict(jwk)


def _key_type_of(key: PrivateKey | PublicKey) -> KeyType:
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return KeyType.EC
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return KeyType.RSA
    return KeyType.ED25519


def sign_certificate(builder: x509.CertificateBuilder, key: PrivateKey) -> x509.Certificate:
    """Sign with the issuer's key: deterministic ECDSA (RFC 6979), Ed25519, or RSA PKCS#1 v1.5."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return builder.sign(key, hashes.SHA256(), ecdsa_deterministic=True)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return builder.sign(key, None)
    return builder.sign(key, hashes.SHA256())


# --------------------------------------------------------------------------------------------------
# Chain validation.


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
        if self.valid:
            return f"<ChainVerdict valid, {len(self.chain)} certificates>"
        assert self.problem is not None
        return f"<ChainVerdict invalid: {self.problem.value} ({self.reason})>"


def _not_before(cert: x509.Certificate) -> dt.datetime:
    return cert.not_valid_before_utc


def _not_after(cert: x509.Certificate) -> dt.datetime:
    return cert.not_valid_after_utc


def _has_client_auth_eku(cert: x509.Certificate) -> bool:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True  # no EKU restricts nothing
    return (
        ExtendedKeyUsageOID.CLIENT_AUTH in eku or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku
    )


def validate_client_chain(
    leaf: x509.Certificate | builtins.bytes | str,
    *,
    roots: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate] = (),
    at: dt.datetime = LAB_NOW,
) -> ChainVerdict:
    """Validate ``leaf`` for TLS clientAuth against ``roots`` with cryptography's x509 verifier.

    The verdict says why a chain fails: the verifier's own message, classified into a
    :class:`ChainProblem` (the classification is what the TLS model turns into an alert).
    """
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
        return ChainVerdict(
            valid=False, problem=problem, reason=f"{_PROBLEM_TEXT[problem]} ({exc})"
        )
    return ChainVerdict(
        valid=True, problem=None, reason="valid for clientAuth", chain=tuple(verified.chain)
    )


# RFC 8705 §2.1.2 lets a client be recognised by its subject DN alone, so unlike the Web PKI defaults
# a client certificate may come without subjectAltName.
_CLIENT_EE_POLICY = ExtensionPolicy.webpki_defaults_ee().may_be_present(
    x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
)

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
    if at > _not_after(cert):
        return ChainProblem.EXPIRED
    if at < _not_before(cert):
        return ChainProblem.NOT_YET_VALID
    if not _has_client_auth_eku(cert):
        return ChainProblem.WRONG_EKU
    return ChainProblem.UNTRUSTED_ISSUER


# --------------------------------------------------------------------------------------------------
# Identities.


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityMatch:
    """How an RFC 8705 §2.1.2 ``tls_client_auth`` client is recognised: which metadata name, what value."""

    kind: Literal["subject_dn", "san_dns", "san_uri", "san_ip", "san_email"]
    value: str

    @property
    def metadata_name(self) -> str:
        """The client metadata parameter, e.g. ``tls_client_auth_san_dns``."""
        return f"tls_client_auth_{self.kind}"


AuthMethod = Literal["tls_client_auth", "self_signed_tls_client_auth", "server"]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Identity:
    """A certificate with its private key (and chain), as a client or server presents it.

    Equality compares the name, certificate and chain, so two labs made from the same seed hold equal
    identities.
    """

    name: str
    certificate: x509.Certificate
    private_key: PrivateKey
    chain: tuple[x509.Certificate, ...] = ()
    auth_method: AuthMethod = "tls_client_auth"
    match: IdentityMatch | None = None
    client_id: str | None = None
    defect: str | None = None
    issuer: CertificateAuthority | None = field(default=None, repr=False)

    # ---- values ---------------------------------------------------------------------------------
    @property
    def der(self) -> builtins.bytes:
        """The certificate's DER encoding."""
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def x5t_s256(self) -> str:
        """RFC 8705 §3.1 thumbprint of this certificate."""
        return x5t_s256(self.certificate)

    @property
    def key_type(self) -> KeyType:
        """The key type of this identity."""
        return _key_type_of(self.private_key)

    @property
    def cert_pem(self) -> Artefact:
        """The leaf certificate as PEM."""
        return Artefact(self.certificate.public_bytes(serialization.Encoding.PEM), "certificate")

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

    # ---- RFC 8705 metadata ----------------------------------------------------------------------
    def jwks(self) -> dict[str, Any]:
        """The JWK Set a ``self_signed_tls_client_auth`` client registers (RFC 8705 §2.2), with ``x5c``."""
        jwk = public_jwk(self.private_key)
        jwk["x5c"] = [
            base64.b64encode(self.der).decode("ascii")
        ]  # RFC 7517 §4.7: standard base64 DER
        return {"keys": [jwk]}

    def registration(self) -> dict[str, Any]:
        """RFC 8705 client metadata for this identity (§2.1.2 or §2.2, plus §3.4's bound-token flag)."""
        if self.auth_method == "server":
            raise CertificateError(
                "identity", f"{self.name} is a server identity; clients register"
            )
        meta: dict[str, Any] = {}
        if self.client_id is not None:
            meta["client_id"] = self.client_id
        meta["token_endpoint_auth_method"] = self.auth_method
        if self.auth_method == "tls_client_auth":
            assert self.match is not None
            meta[self.match.metadata_name] = self.match.value
        else:
            meta["jwks"] = self.jwks()
        meta["tls_client_certificate_bound_access_tokens"] = True
        return meta

    # ---- TLS helpers (take a context, never build one) -------------------------------------------
    def configure_cert(self, ctx: ssl.SSLContext) -> None:
        """Load this identity's certificate chain and key into ``ctx`` (client or server side)."""
        with self.cert_chain_pem.tempfile() as certfile, self.private_key_pem.tempfile() as keyfile:
            ctx.load_cert_chain(certfile, keyfile)

    # ---- deliberately defective variants ----------------------------------------------------------
    def _reissue(self, defect: str, **changes: Any) -> Identity:
        if self.issuer is None:
            raise CertificateError(
                "identity", f"{self.name} has no issuer to re-sign a variant with"
            )
        return self.issuer._issue_variant(self, defect=defect, **changes)

    def expired(self) -> Identity:
        """The same subject and key, in a certificate whose validity ended on 2025-06-30."""
        return self._reissue(
            "expired", not_before=_EXPIRED_NOT_BEFORE, not_after=_EXPIRED_NOT_AFTER
        )

    def not_yet_valid(self) -> Identity:
        """The same subject and key, in a certificate valid only from 2090."""
        return self._reissue(
            "not-yet-valid", not_before=_FUTURE_NOT_BEFORE, not_after=_FUTURE_NOT_AFTER
        )

    def server_auth_only(self) -> Identity:
        """The same subject and key, but an EKU of serverAuth only: unusable for clientAuth."""
        return self._reissue("server-auth-only", eku=(ExtendedKeyUsageOID.SERVER_AUTH,))

    def issued_by(self, ca: CertificateAuthority) -> Identity:
        """The same subject and key, issued by ``ca`` (e.g. a CA the resource server does not trust)."""
        return ca._issue_variant(self, defect=f"issued-by-{ca.name}")

    def self_signed(self) -> Identity:
        """The same subject and key in a self-signed certificate, where a PKI-issued one is expected."""
        if self.issuer is None:
            raise CertificateError("identity", f"{self.name} is self-signed already")
        return self.issuer.lab._self_signed(
            f"{self.name}+self-signed",
            key=self.private_key,
            subject=self.certificate.subject,
            san=_san_of(self.certificate),
            defect="self-signed",
            auth_method="tls_client_auth",
            match=self.match,
            client_id=self.client_id,
        )

    # ---- equality and display ---------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Identity):
            return NotImplemented
        return (self.name, self.certificate, self.chain) == (
            other.name,
            other.certificate,
            other.chain,
        )

    def __hash__(self) -> int:
        return hash((self.name, self.certificate))

    def __repr__(self) -> str:
        subject = self.certificate.subject.rfc4514_string()
        defect = f" defect={self.defect}" if self.defect else ""
        return f"<Identity {self.name} {self.auth_method} subject={subject!r} x5t#S256={self.x5t_s256}{defect}>"

    def _repr_html_(self) -> str:
        return _certificate_html(
            self.certificate, title=f"Identity {self.name}", extra=self._html_rows()
        )

    def _html_rows(self) -> list[tuple[str, str]]:
        rows = [("auth method", self.auth_method), ("key type", self.key_type.value)]
        if self.match is not None:
            rows.append((self.match.metadata_name, self.match.value))
        if self.defect:
            rows.append(("defect (on purpose)", self.defect))
        return rows


def _san_of(cert: x509.Certificate) -> tuple[x509.GeneralName, ...]:
    try:
        return tuple(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return ()


def _eku_names(cert: x509.Certificate) -> str:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return "(none)"
    return ", ".join(getattr(oid, "_name", oid.dotted_string) for oid in eku)


def _certificate_html(
    cert: x509.Certificate, *, title: str, extra: Sequence[tuple[str, str]] = ()
) -> str:
    """An inline-styled, escaped HTML table describing a certificate."""
    sans = ", ".join(str(getattr(n, "value", n)) for n in _san_of(cert)) or "(none)"
    rows: list[tuple[str, str]] = [
        ("subject", cert.subject.rfc4514_string()),
        ("issuer", cert.issuer.rfc4514_string()),
        ("subjectAltName", sans),
        ("extendedKeyUsage", _eku_names(cert)),
        ("valid", f"{_not_before(cert):%Y-%m-%d} → {_not_after(cert):%Y-%m-%d}"),
        ("serial", f"{cert.serial_number:x}"),
        *extra,
        ("x5t#S256", x5t_s256(cert)),
    ]
    cells = "".join(
        f'<tr><th style="text-align:left;padding:2px 8px;color:#555;font-weight:normal">{html.escape(k)}</th>'
        f'<td style="padding:2px 8px;font-family:monospace">{html.escape(v)}</td></tr>'
        for k, v in rows
    )
    return (
        f'<div style="border:1px solid #ccc;border-radius:4px;padding:6px;margin:4px 0">'
        f'<div style="font-weight:bold;margin-bottom:4px">{html.escape(title)}</div>'
        f'<table style="border-collapse:collapse">{cells}</table></div>'
    )


# --------------------------------------------------------------------------------------------------
# Certificate authorities.


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mtlslab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class CertificateAuthority:
    """A lab CA (root or intermediate) that issues client and server certificates."""

    name: str
    certificate: x509.Certificate
    private_key: PrivateKey
    lab: Lab = field(repr=False)
    parent: CertificateAuthority | None = field(default=None, repr=False)

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """This CA and its parents below the root: what a leaf it issues sends along."""
        if self.parent is None:
            return ()
        return (self.certificate, *self.parent.chain)

    @property
    def root(self) -> CertificateAuthority:
        """The self-signed root above this CA."""
        return self if self.parent is None else self.parent.root

    @property
    def cert_pem(self) -> Artefact:
        """This CA's certificate as PEM (what a peer trusts)."""
        return Artefact(self.certificate.public_bytes(serialization.Encoding.PEM), "certificate")

    @property
    def x5t_s256(self) -> str:
        """RFC 8705 §3.1 thumbprint of this CA's certificate."""
        return x5t_s256(self.certificate)

    def configure_trust(self, ctx: ssl.SSLContext) -> None:
        """Make ``ctx`` trust this CA's root."""
        ctx.load_verify_locations(cadata=self.root.cert_pem.text())

    def intermediate(self, name: str = "intermediate") -> CertificateAuthority:
        """A CA issued by this one (path length 0)."""
        label = f"{self.name}/{name}"
        key = self.lab.key(label, KeyType.EC)
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        builder = (
            self._builder(label, _name(f"mtlslab {name}"), key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
            .add_extension(ski, critical=False)
        )
        return CertificateAuthority(
            name=name,
            certificate=sign_certificate(builder, self.private_key),
            private_key=key,
            lab=self.lab,
            parent=self,
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
        match: Literal["subject_dn", "san_dns", "san_uri", "san_ip", "san_email"] | None = None,
        key_type: KeyType = KeyType.EC,
    ) -> Identity:
        """A ``tls_client_auth`` client certificate (RFC 8705 §2.1) with EKU clientAuth.

        The client is recognised by its subject DN unless ``match`` names a SAN kind; with SANs given and
        no ``match``, the first SAN kind given is used.
        """
        subject = _parse_dn(subject_dn) if subject_dn else _name(name)
        san = _san_names(san_dns, san_uri, san_ip, san_email)
        chosen = match or _default_match(san_dns, san_uri, san_ip, san_email)
        identity_match = _identity_match(chosen, subject, san_dns, san_uri, san_ip, san_email)
        key = self.lab.key(f"client/{name}", key_type)
        cert = self._leaf(
            f"client/{name}",
            subject,
            key,
            san=san,
            eku=(ExtendedKeyUsageOID.CLIENT_AUTH,),
        )
        return Identity(
            name=name,
            certificate=cert,
            private_key=key,
            chain=self.chain,
            auth_method="tls_client_auth",
            match=identity_match,
            client_id=client_id or f"lab-{name}",
            issuer=self,
        )

    def issue_server(
        self, name: str = "server", hosts: Sequence[str] = ("localhost", "127.0.0.1", "::1")
    ) -> Identity:
        """A server certificate for ``hosts`` (DNS names and IP addresses), EKU serverAuth."""
        dns = [h for h in hosts if not _is_ip(h)]
        ips = [h for h in hosts if _is_ip(h)]
        key = self.lab.key(f"server/{name}", KeyType.EC)
        cert = self._leaf(
            f"server/{name}",
            _name(hosts[0] if hosts else name),
            key,
            san=_san_names(dns, (), ips, ()),
            eku=(ExtendedKeyUsageOID.SERVER_AUTH,),
        )
        return Identity(
            name=name,
            certificate=cert,
            private_key=key,
            chain=self.chain,
            auth_method="server",
            issuer=self,
        )

    # ---- internals -------------------------------------------------------------------------------
    def _authority_key_identifier(self) -> x509.AuthorityKeyIdentifier:
        """The AKI for certificates this CA issues: its own SKI (the SHA-1 of its key, RFC 5280 §4.2.1.2)."""
        try:
            ski = self.certificate.extensions.get_extension_for_class(
                x509.SubjectKeyIdentifier
            ).value
        except x509.ExtensionNotFound:
            return x509.AuthorityKeyIdentifier.from_issuer_public_key(self.private_key.public_key())
        return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)

    def _builder(
        self,
        label: str,
        subject: x509.Name,
        key: PrivateKey,
        *,
        not_before: dt.datetime = LAB_EPOCH,
        not_after: dt.datetime = LAB_NOT_AFTER,
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(self.lab.serial(f"{self.name}/{label}"))
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(self._authority_key_identifier(), critical=False)
        )

    def _leaf(
        self,
        label: str,
        subject: x509.Name,
        key: PrivateKey,
        *,
        san: Sequence[x509.GeneralName],
        eku: Sequence[x509.ObjectIdentifier],
        not_before: dt.datetime = LAB_EPOCH,
        not_after: dt.datetime = LAB_NOT_AFTER,
    ) -> x509.Certificate:
        builder = (
            self._builder(label, subject, key, not_before=not_before, not_after=not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_leaf_key_usage(key), critical=True)
            .add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(san)), critical=False)
        return sign_certificate(builder, self.private_key)

    def _issue_variant(
        self,
        original: Identity,
        *,
        defect: str,
        not_before: dt.datetime = LAB_EPOCH,
        not_after: dt.datetime = LAB_NOT_AFTER,
        eku: Sequence[x509.ObjectIdentifier] = (ExtendedKeyUsageOID.CLIENT_AUTH,),
    ) -> Identity:
        cert = self._leaf(
            f"variant/{original.name}/{defect}",
            original.certificate.subject,
            original.private_key,
            san=_san_of(original.certificate),
            eku=eku,
            not_before=not_before,
            not_after=not_after,
        )
        return Identity(
            name=f"{original.name}+{defect}",
            certificate=cert,
            private_key=original.private_key,
            chain=self.chain,
            auth_method=original.auth_method,
            match=original.match,
            client_id=original.client_id,
            defect=defect,
            issuer=self,
        )

    def __repr__(self) -> str:
        kind = "root" if self.parent is None else f"intermediate under {self.parent.name}"
        return f"<CertificateAuthority {self.name} ({kind}) x5t#S256={self.x5t_s256}>"

    def _repr_html_(self) -> str:
        return _certificate_html(self.certificate, title=f"Certificate authority {self.name}")


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf_key_usage(key: PrivateKey) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=isinstance(key, rsa.RSAPrivateKey),
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _parse_dn(text: str) -> x509.Name:
    try:
        return x509.Name.from_rfc4514_string(text)
    except ValueError as exc:
        raise CertificateError(
            "subject_dn", f"not an RFC 4514 distinguished name ({exc})"
        ) from None


def _san_names(
    dns: Sequence[str], uri: Sequence[str], ip: Sequence[str], email: Sequence[str]
) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.UniformResourceIdentifier(u) for u in uri]
    for address in ip:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(address)))
        except ValueError:
            raise CertificateError("san_ip", f"{address!r} is not an IP address") from None
    names += [x509.RFC822Name(e) for e in email]
    return names


def _default_match(
    dns: Sequence[str], uri: Sequence[str], ip: Sequence[str], email: Sequence[str]
) -> Literal["subject_dn", "san_dns", "san_uri", "san_ip", "san_email"]:
    if dns:
        return "san_dns"
    if uri:
        return "san_uri"
    if ip:
        return "san_ip"
    if email:
        return "san_email"
    return "subject_dn"


def _identity_match(
    kind: Literal["subject_dn", "san_dns", "san_uri", "san_ip", "san_email"],
    subject: x509.Name,
    dns: Sequence[str],
    uri: Sequence[str],
    ip: Sequence[str],
    email: Sequence[str],
) -> IdentityMatch:
    if kind == "subject_dn":
        return IdentityMatch(kind=kind, value=subject.rfc4514_string())
    values = {"san_dns": dns, "san_uri": uri, "san_ip": ip, "san_email": email}[kind]
    if not values:
        raise CertificateError("match", f"{kind} chosen but no such subjectAltName given")
    return IdentityMatch(kind=kind, value=values[0])


# --------------------------------------------------------------------------------------------------
# The lab.


def _seed_bytes(seed: str | int | builtins.bytes) -> builtins.bytes:
    if isinstance(seed, builtins.bytes):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (str, int)):
        raise CertificateError("seed", f"a seed is a str, int or bytes, not {type(seed).__name__}")
    return str(seed).encode("utf-8")


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
    """Everything a workshop needs, derived from one seed.

    ``Lab(seed)`` is reproducible to the byte; ``Lab()`` draws a random seed (shown as ``lab.seed``,
    so a surprising run can be repeated). Material is made on first use and kept.

    The named identities:

    ``ca`` (root), ``issuing_ca`` (the intermediate when ``intermediate=True``, else the root),
    ``client`` (``tls_client_auth`` by subject DN, the certificate tokens are bound to),
    ``other_client`` (another valid client), ``self_signed_client`` (``self_signed_tls_client_auth``),
    ``server`` (``localhost``, ``127.0.0.1`` and ``::1``), ``rogue_ca`` (a CA nobody trusts), and the defective
    variants of ``client``: ``expired_client``, ``not_yet_valid_client``, ``untrusted_ca_client``,
    ``server_auth_only_client``, ``pki_self_signed_client``.
    """

    def __init__(
        self,
        seed: str | int | builtins.bytes | None = None,
        *,
        intermediate: bool = False,
        client_key_type: KeyType = KeyType.EC,
    ) -> None:
        if seed is None:
            seed = os.urandom(16).hex()
            self.seeded = False
        else:
            self.seeded = True
        self.seed: str | int | builtins.bytes = seed
        # RFC 5869 §2.2 HKDF-Extract once per lab; derive() runs only HKDF-Expand per label. The output is
        # exactly HKDF(salt, seed, label), but a lab's many derivations no longer repeat the extract step.
        extract = hmac.HMAC(_DERIVATION_SALT, hashes.SHA256())
        extract.update(_seed_bytes(seed))
        self._prk = extract.finalize()
        self.with_intermediate = intermediate
        self.client_key_type = client_key_type

    # ---- derivation ------------------------------------------------------------------------------
    def derive(self, label: str, length: int = 32) -> builtins.bytes:
        """``length`` bytes derived from the seed for ``label`` (HKDF-SHA256)."""
        return HKDFExpand(algorithm=hashes.SHA256(), length=length, info=label.encode()).derive(
            self._prk
        )

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
        value = int.from_bytes(self.derive(f"serial/{label}", 16), "big") >> 1
        return value or 1

    # ---- the CAs ---------------------------------------------------------------------------------
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
        public = key.public_key()
        subject = _name(common_name)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(public)
            .serial_number(self.serial(f"ca/{name}"))
            .not_valid_before(LAB_EPOCH)
            .not_valid_after(LAB_NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        )
        return CertificateAuthority(
            name=name, certificate=sign_certificate(builder, key), private_key=key, lab=self
        )

    # ---- the identities ---------------------------------------------------------------------------
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
        key = self.key("self-signed/self-signed-client", self.client_key_type)
        return self._self_signed(
            "self-signed-client",
            key=key,
            subject=_name("self-signed-client"),
            san=(x509.UniformResourceIdentifier("https://client.mtlslab.test/self-signed"),),
            defect=None,
            auth_method="self_signed_tls_client_auth",
            match=None,
            client_id="lab-self-signed-client",
        )

    @cached_property
    def server(self) -> Identity:
        """The resource server's certificate, for ``localhost``, ``127.0.0.1`` and ``::1``."""
        return self.issuing_ca.issue_server("server")

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

    def _self_signed(
        self,
        name: str,
        *,
        key: PrivateKey,
        subject: x509.Name,
        san: Sequence[x509.GeneralName],
        defect: str | None,
        auth_method: AuthMethod,
        match: IdentityMatch | None,
        client_id: str | None,
    ) -> Identity:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(self.serial(f"self-signed/{name}"))
            .not_valid_before(LAB_EPOCH)
            .not_valid_after(LAB_NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_leaf_key_usage(key), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(san)), critical=False)
        return Identity(
            name=name,
            certificate=sign_certificate(builder, key),
            private_key=key,
            auth_method=auth_method,
            match=match,
            client_id=client_id,
            defect=defect,
            issuer=None,
        )

    def write(
        self,
        directory: str | os.PathLike[str],
        *,
        every_identity: bool = False,
        force: bool = False,
    ) -> LabFolder:
        """Write ``ca.pem``, ``client.pem``, ``client.key``, ``server.pem``, ``server.key`` (keys 0600) into
        ``directory`` (created if missing), with ``every_identity`` every named identity as ``NAME.pem`` /
        ``NAME.key``, and ``lab.json``, which names this lab (its seed and its certificates' ``x5t#S256``).

        A file already there with the same bytes is kept as it is. Any other file of the same name (another
        seed's, a link, a directory) raises :class:`LabFolderConflict` before anything is written, unless
        ``force``: then it is replaced, never written through."""
        folder = Path(directory)
        artefacts = {
            "ca.pem": self.ca.cert_pem,
            "client.pem": self.client.cert_chain_pem,
            "client.key": self.client.private_key_pem,
            "server.pem": self.server.cert_chain_pem,
            "server.key": self.server.private_key_pem,
        }
        if every_identity:
            for name, identity in self.identities().items():
                artefacts[f"{name}.pem"] = identity.cert_chain_pem
                artefacts[f"{name}.key"] = identity.private_key_pem
        files = {name: (a.data, a.secret) for name, a in artefacts.items()}
        files[LAB_MANIFEST] = (self._manifest(), False)
        found = {name: _same_file(folder / name, data) for name, (data, _) in files.items()}
        differ = tuple(name for name, same in found.items() if same is False)
        if differ and not force:
            raise LabFolderConflict(folder, differ, _recorded_seed(folder / LAB_MANIFEST))
        folder.mkdir(parents=True, exist_ok=True)
        written = tuple(name for name, same in found.items() if not same)
        for name in written:
            data, secret = files[name]
            _write_file(folder / name, data, secret=secret, force=found[name] is False)
        return LabFolder(
            path=folder, written=written, kept=tuple(n for n, same in found.items() if same)
        )

    def _manifest(self) -> builtins.bytes:
        """``lab.json``: the seed (when it is text) and the thumbprints that identify this lab's files."""
        try:
            seed: str | None = _seed_bytes(self.seed).decode("utf-8")
        except UnicodeDecodeError:
            seed = None
        doc = {
            "seed": seed,
            "x5t#S256": {
                "ca.pem": self.ca.x5t_s256,
                "client.pem": self.client.x5t_s256,
                "server.pem": self.server.x5t_s256,
            },
        }
        return (json.dumps(doc, indent=2) + "\n").encode("utf-8")

    def __repr__(self) -> str:
        seed = repr(self.seed) if self.seeded else f"random {self.seed!r}"
        extra = ", intermediate" if self.with_intermediate else ""
        return f"<Lab seed={seed}{extra}>"

    def _repr_html_(self) -> str:
        named: list[tuple[str, x509.Certificate]] = [("ca", self.ca.certificate)]
        named += [(name, ident.certificate) for name, ident in self.identities().items()]
        named.append(("server", self.server.certificate))
        rows = "".join(
            f"<tr><td style='padding:2px 8px'>{html.escape(name)}</td>"
            f"<td style='padding:2px 8px;font-family:monospace'>{html.escape(cert.subject.rfc4514_string())}</td>"
            f"<td style='padding:2px 8px;font-family:monospace'>{html.escape(x5t_s256(cert))}</td></tr>"
            for name, cert in named
        )
        return (
            f"<div><b>{html.escape(repr(self))}</b><table style='border-collapse:collapse'>"
            "<tr><th style='text-align:left;padding:2px 8px'>name</th>"
            "<th style='text-align:left;padding:2px 8px'>subject</th>"
            "<th style='text-align:left;padding:2px 8px'>x5t#S256</th></tr>"
            f"{rows}</table></div>"
        )
