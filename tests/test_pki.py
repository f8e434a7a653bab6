"""mtlslab.pki: the reproducible lab PKI, x5t#S256 (RFC 8705 §3.1) and the client metadata of RFC 8705 §2."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import os
import re
import shutil
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from _files import mode, plant_victim, victim_state
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from mtlslab import pki
from mtlslab.errors import CertificateError, InputError, KeyTypeError
from mtlslab.pki import (
    LAB_NOW,
    Artefact,
    ChainProblem,
    Identity,
    KeyType,
    Lab,
    load_certificate,
    load_private_key,
    public_jwk,
    same_thumbprint,
    validate_client_chain,
    x5t_s256,
)

SEED = "test-pki"
LAB_FILES = ("ca.pem", "client.pem", "client.key", "server.pem", "server.key")
BASE64URL_SHA256 = re.compile(r"^[A-Za-z0-9_-]{43}$")


@pytest.fixture(scope="module")
def lab() -> Lab:
    """One seeded lab for the read-only tests of this module."""
    return Lab(SEED)


def _named(lab: Lab) -> dict[str, Identity]:
    return {**lab.identities(), "server": lab.server}


def _private_bytes(identity: Identity) -> bytes:
    return identity.private_key_pem.bytes()


def _require_tool(name: str) -> str:
    """The path of a command-line tool; skip without it locally, fail under CI (which installs it)."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required under CI (make system-deps installs it)")
        pytest.skip(
            f"{name} is not installed (sudo make system-deps); under CI this test fails instead"
        )
    return path


def _run_certs(seed: str, out: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mtlslab", "certs", "--seed", seed, "--out", str(out)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def _printed_thumbprints(stdout: str) -> dict[str, str]:
    return dict(re.findall(r"^\s+(\S+\.pem)\s+([A-Za-z0-9_-]{43})$", stdout, flags=re.MULTILINE))


# --------------------------------------------------------------------------------------------------
# Reproducibility (design.md "Determinism").


def test_same_seed_gives_byte_identical_material_in_process(lab: Lab) -> None:
    """Two labs from one seed hold the same certificates, keys and thumbprints, byte for byte."""
    twin = Lab(SEED)
    assert twin.ca.certificate == lab.ca.certificate
    assert twin.ca.cert_pem.bytes() == lab.ca.cert_pem.bytes()
    for name, identity in _named(lab).items():
        other = _named(twin)[name]
        assert other.der == identity.der, name
        assert _private_bytes(other) == _private_bytes(identity), name
        assert other.x5t_s256 == identity.x5t_s256, name
        assert other == identity, name


def test_same_seed_gives_identical_files_and_thumbprints_across_processes(tmp_path: Path) -> None:
    """`mtlslab certs --seed S` run in two processes writes identical files and prints identical thumbprints."""
    first, second = tmp_path / "first", tmp_path / "second"
    out1, out2 = _run_certs("cross-process", first), _run_certs("cross-process", second)
    for name in LAB_FILES:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    thumbs = _printed_thumbprints(out1)
    assert thumbs == _printed_thumbprints(out2)
    here = Lab("cross-process")
    assert thumbs == {
        "ca.pem": here.ca.x5t_s256,
        "client.pem": here.client.x5t_s256,
        "server.pem": here.server.x5t_s256,
    }


def test_different_seeds_give_different_material(lab: Lab) -> None:
    """Another seed gives other keys, serials and thumbprints."""
    other = Lab(SEED + "-other")
    assert other.ca.x5t_s256 != lab.ca.x5t_s256
    assert other.client.x5t_s256 != lab.client.x5t_s256
    assert _private_bytes(other.client) != _private_bytes(lab.client)
    assert other.client.certificate.serial_number != lab.client.certificate.serial_number


def test_unseeded_labs_differ_but_their_drawn_seed_repeats_them() -> None:
    """Lab() draws fresh material each time; its `seed` rebuilds exactly that lab."""
    first, second = Lab(), Lab()
    assert not first.seeded
    assert first.seed != second.seed
    assert first.client.x5t_s256 != second.client.x5t_s256
    again = Lab(first.seed)
    assert again.seeded
    assert again.client.x5t_s256 == first.client.x5t_s256


def test_seed_forms_and_unusable_seeds() -> None:
    """A seed is a str, int or bytes (7, "7" and b"7" are one seed); anything else names the field."""
    assert Lab(7).client.x5t_s256 == Lab("7").client.x5t_s256 == Lab(b"7").client.x5t_s256
    for bad in (1.5, True, [7]):
        with pytest.raises(CertificateError) as info:
            Lab(bad)  # type: ignore[arg-type]
        assert info.value.field == "seed"


@pytest.mark.parametrize("key_type", [KeyType.EC, KeyType.ED25519])
def test_ec_and_ed25519_keys_are_reproducible(key_type: KeyType) -> None:
    """EC P-256 and Ed25519 client keys are derived from the seed."""
    assert key_type.reproducible
    one = Lab(SEED, client_key_type=key_type).client
    two = Lab(SEED, client_key_type=key_type).client
    assert _private_bytes(one) == _private_bytes(two)
    assert one.x5t_s256 == two.x5t_s256


def test_rsa_keys_are_not_reproducible_and_the_docs_say_so() -> None:
    """RSA keys are fresh random keys even for a seed (no hand-rolled prime derivation), as documented."""
    assert not KeyType.RSA.reproducible
    one = Lab(SEED, client_key_type=KeyType.RSA).client
    two = Lab(SEED, client_key_type=KeyType.RSA).client
    assert one.x5t_s256 != two.x5t_s256
    assert pki.__doc__ is not None
    assert "What is not: RSA keys" in pki.__doc__


# --------------------------------------------------------------------------------------------------
# x5t#S256 (RFC 8705 §3.1).


def test_x5t_s256_accepts_object_pem_text_pem_bytes_and_der(lab: Lab) -> None:
    """The thumbprint is the same whether the certificate is given as object, PEM str, PEM bytes or DER."""
    cert = lab.client.certificate
    pem = cert.public_bytes(serialization.Encoding.PEM)
    der = cert.public_bytes(serialization.Encoding.DER)
    forms = [cert, pem, pem.decode("ascii"), der, bytearray(der), lab.client.cert_chain_pem.bytes()]
    assert {x5t_s256(form) for form in forms} == {lab.client.x5t_s256}


def test_x5t_s256_is_unpadded_base64url_of_sha256_over_der(lab: Lab) -> None:
    """RFC 8705 §3.1: base64url of SHA-256 of the DER, no '=' padding, no whitespace."""
    digest = hashlib.sha256(lab.client.der).digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    assert lab.client.x5t_s256 == expected
    assert BASE64URL_SHA256.match(expected)


def test_x5t_s256_is_not_the_hash_of_the_pem_text(lab: Lab) -> None:
    """Hashing the PEM text (the classic mistake) gives another value."""
    pem_hash = hashlib.sha256(lab.client.cert_pem.bytes()).digest()
    assert base64.urlsafe_b64encode(pem_hash).rstrip(b"=").decode() != lab.client.x5t_s256


@pytest.mark.parametrize("name", ["ca", "client", "self_signed_client", "server"])
def test_x5t_s256_agrees_with_the_openssl_command_line(lab: Lab, name: str) -> None:
    """`openssl x509 -outform DER | openssl dgst -sha256 -binary`, base64url'd, is the library's thumbprint."""
    openssl = _require_tool("openssl")
    holder = getattr(lab, name)
    pem = holder.cert_pem.bytes()
    der = subprocess.run(
        [openssl, "x509", "-outform", "DER"], input=pem, capture_output=True, check=True, timeout=30
    ).stdout
    digest = subprocess.run(
        [openssl, "dgst", "-sha256", "-binary"],
        input=der,
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    assert len(digest) == 32
    independent = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    assert x5t_s256(pem) == independent
    assert holder.x5t_s256 == independent


# --------------------------------------------------------------------------------------------------
# Chain validation for clientAuth.


@pytest.mark.parametrize("intermediate", [False, True], ids=["root-issued", "via-intermediate"])
def test_lab_client_chain_validates_for_client_auth(intermediate: bool) -> None:
    """The lab client validates for clientAuth against the lab root, with or without an intermediate."""
    lab = Lab(SEED, intermediate=intermediate)
    verdict = lab.validate(lab.client)
    assert verdict.valid
    assert verdict.problem is None
    assert verdict.chain[0] == lab.client.certificate
    assert verdict.chain[-1] == lab.ca.certificate
    assert len(verdict.chain) == (3 if intermediate else 2)
    assert lab.validate(lab.other_client).valid


DEFECTS = [
    ("expired_client", ChainProblem.EXPIRED, "expired"),
    ("not_yet_valid_client", ChainProblem.NOT_YET_VALID, "not yet valid"),
    ("untrusted_ca_client", ChainProblem.UNTRUSTED_ISSUER, "does not trust"),
    ("server_auth_only_client", ChainProblem.WRONG_EKU, "clientAuth"),
    ("pki_self_signed_client", ChainProblem.SELF_SIGNED, "self-signed"),
]


@pytest.mark.parametrize("intermediate", [False, True], ids=["root-issued", "via-intermediate"])
@pytest.mark.parametrize(("attribute", "problem", "words"), DEFECTS, ids=[d[0] for d in DEFECTS])
def test_each_defective_variant_fails_with_its_problem_and_reason(
    intermediate: bool, attribute: str, problem: ChainProblem, words: str
) -> None:
    """Each defective variant of the lab client is refused, with its ChainProblem and a reason that says why."""
    lab = Lab(SEED, intermediate=intermediate)
    variant = getattr(lab, attribute)
    verdict = lab.validate(variant)
    assert not verdict.valid
    assert verdict.problem is problem
    assert words in verdict.reason
    assert verdict.chain == ()
    assert variant.defect is not None
    assert variant.certificate.subject == lab.client.certificate.subject
    assert variant.certificate.public_key() == lab.client.certificate.public_key()


def test_expired_variant_is_valid_inside_its_own_dates(lab: Lab) -> None:
    """The expired variant differs only in its dates: at a time inside them it validates."""
    assert lab.validate(
        lab.expired_client, at=dt.datetime(2025, 3, 1, tzinfo=dt.timezone.utc)
    ).valid
    assert not lab.validate(lab.expired_client, at=LAB_NOW).valid


def test_self_signed_client_is_not_pki_valid(lab: Lab) -> None:
    """A self_signed_tls_client_auth certificate (RFC 8705 §2.2) does not chain to the lab CA."""
    assert lab.validate(lab.self_signed_client).problem is ChainProblem.SELF_SIGNED


def test_chain_validation_against_another_root_fails(lab: Lab) -> None:
    """A verifier that trusts only the rogue CA refuses the lab client as untrusted."""
    verdict = validate_client_chain(lab.client.certificate, roots=[lab.rogue_ca.certificate])
    assert verdict.problem is ChainProblem.UNTRUSTED_ISSUER


def test_chain_validation_needs_a_trust_anchor(lab: Lab) -> None:
    """Validation without any root is misuse, named as the `roots` field."""
    with pytest.raises(CertificateError) as info:
        validate_client_chain(lab.client.certificate, roots=[])
    assert info.value.field == "roots"


# --------------------------------------------------------------------------------------------------
# RFC 8705 §2 client registration metadata.

SAN_KINDS = [
    (
        {"san_dns": ("client.example.org",)},
        "tls_client_auth_san_dns",
        "client.example.org",
        x509.DNSName,
    ),
    (
        {"san_uri": ("https://client.example.org/app",)},
        "tls_client_auth_san_uri",
        "https://client.example.org/app",
        x509.UniformResourceIdentifier,
    ),
    ({"san_ip": ("192.0.2.7",)}, "tls_client_auth_san_ip", "192.0.2.7", x509.IPAddress),
    (
        {"san_email": ("client@example.org",)},
        "tls_client_auth_san_email",
        "client@example.org",
        x509.RFC822Name,
    ),
]


@pytest.mark.parametrize(
    ("san", "metadata_name", "value", "general_name"), SAN_KINDS, ids=[s[1] for s in SAN_KINDS]
)
def test_san_identity_registers_its_rfc8705_metadata(
    lab: Lab, san: dict[str, tuple[str, ...]], metadata_name: str, value: str, general_name: type
) -> None:
    """A client recognised by a SAN registers tls_client_auth_san_* with that value (RFC 8705 §2.1.2)."""
    client = lab.ca.issue_client("san-client", client_id="san-client", **san)  # type: ignore[arg-type]
    meta = client.registration()
    assert meta == {
        "client_id": "san-client",
        "token_endpoint_auth_method": "tls_client_auth",
        metadata_name: value,
        "tls_client_certificate_bound_access_tokens": True,
    }
    names = client.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    carried = [str(v) for v in names.get_values_for_type(general_name)]  # type: ignore[arg-type]
    if general_name is x509.IPAddress:
        value = str(ipaddress.ip_address(value))
    assert carried == [value]
    assert lab.validate(client).valid


def test_subject_dn_identity_registers_tls_client_auth_subject_dn(lab: Lab) -> None:
    """Without SANs the client is recognised by its subject DN, in RFC 4514 form (RFC 8705 §2.1.2)."""
    client = lab.ca.issue_client(
        "dn-client", subject_dn="CN=dn-client,OU=Payments,O=Example Corp,C=DE"
    )
    meta = client.registration()
    assert meta["tls_client_auth_subject_dn"] == "CN=dn-client,OU=Payments,O=Example Corp,C=DE"
    assert meta["tls_client_auth_subject_dn"] == client.certificate.subject.rfc4514_string()
    assert meta["token_endpoint_auth_method"] == "tls_client_auth"
    assert not any(k.startswith("tls_client_auth_san_") for k in meta)
    assert "jwks" not in meta
    assert lab.client.registration()["tls_client_auth_subject_dn"] == "CN=client,O=mtlslab"


def test_explicit_match_chooses_among_several_sans(lab: Lab) -> None:
    """With several SANs, `match` says which one the client registers; a missing kind is refused."""
    client = lab.ca.issue_client(
        "multi", san_dns=("multi.example",), san_email=("m@example.org",), match="san_email"
    )
    assert client.registration()["tls_client_auth_san_email"] == "m@example.org"
    assert "tls_client_auth_san_dns" not in client.registration()
    with pytest.raises(CertificateError) as info:
        lab.ca.issue_client("multi", san_dns=("multi.example",), match="san_uri")
    assert info.value.field == "match"


def test_self_signed_registration_carries_jwks_with_the_certificate(lab: Lab) -> None:
    """self_signed_tls_client_auth registers a JWKS whose x5c holds the certificate's DER (RFC 8705 §2.2)."""
    client = lab.self_signed_client
    meta = client.registration()
    assert meta["token_endpoint_auth_method"] == "self_signed_tls_client_auth"
    assert meta["tls_client_certificate_bound_access_tokens"] is True
    assert not any(k.startswith("tls_client_auth_") for k in meta)
    (jwk,) = meta["jwks"]["keys"]
    assert base64.b64decode(jwk["x5c"][0]) == client.der
    assert "d" not in jwk
    assert {k: v for k, v in jwk.items() if k != "x5c"} == public_jwk(
        client.certificate.public_key()
    )


def test_server_identity_does_not_register(lab: Lab) -> None:
    """Registration metadata is for clients; asking a server identity for it is misuse."""
    with pytest.raises(CertificateError) as info:
        lab.server.registration()
    assert info.value.field == "identity"


def test_server_certificate_names_localhost_and_loopback(lab: Lab) -> None:
    """The server certificate is for localhost, 127.0.0.1 and ::1 (serve --host ::1), EKU serverAuth."""
    san = lab.server.certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    eku = lab.server.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]


# --------------------------------------------------------------------------------------------------
# Key types.

KEY_CLASSES = {
    KeyType.EC: (ec.EllipticCurvePrivateKey, "EC"),
    KeyType.RSA: (rsa.RSAPrivateKey, "RSA"),
    KeyType.ED25519: (ed25519.Ed25519PrivateKey, "OKP"),
}


@pytest.mark.parametrize("key_type", list(KeyType), ids=[k.value for k in KeyType])
def test_client_key_types_work(key_type: KeyType) -> None:
    """EC P-256, RSA-2048 and Ed25519 clients validate, and their self-signed twins publish the right JWK."""
    lab = Lab(SEED, client_key_type=key_type)
    key_class, kty = KEY_CLASSES[key_type]
    assert lab.client.key_type is key_type
    assert isinstance(lab.client.private_key, key_class)
    assert lab.validate(lab.client).valid
    assert lab.self_signed_client.jwks()["keys"][0]["kty"] == kty
    if key_type is KeyType.RSA:
        assert lab.client.private_key.key_size == 2048  # type: ignore[union-attr]


# --------------------------------------------------------------------------------------------------
# Artefacts and ssl contexts.


def test_write_to_path_gives_keys_0600_and_certificates_0644(lab: Lab, tmp_path: Path) -> None:
    """A private key is written owner-only (0600), a certificate world-readable (0644)."""
    key = lab.client.private_key_pem.write_to_path(tmp_path / "client.key")
    cert = lab.client.cert_pem.write_to_path(tmp_path / "client.pem")
    assert (mode(key), mode(cert)) == (0o600, 0o644)
    assert key.read_bytes() == lab.client.private_key_pem.bytes()
    assert cert.read_bytes() == lab.client.cert_pem.bytes()


def test_write_to_path_refuses_an_existing_file_unless_forced(lab: Lab, tmp_path: Path) -> None:
    """An existing file is refused (FileExistsError, left as it was); force=True replaces it with a new
    file of the right mode (a key 0600 where the old file was 0666, a certificate 0644 where it was 0600)."""
    key_path, cert_path = tmp_path / "old.key", tmp_path / "old.pem"
    key_path.write_bytes(b"old contents, longer than nothing")
    cert_path.write_bytes(b"old")
    key_path.chmod(0o666)
    cert_path.chmod(0o600)
    with pytest.raises(FileExistsError, match="force=True"):
        lab.client.private_key_pem.write_to_path(key_path)
    with pytest.raises(FileExistsError):
        lab.client.cert_pem.write_to_path(cert_path)
    assert (key_path.read_bytes(), mode(key_path)) == (b"old contents, longer than nothing", 0o666)
    lab.client.private_key_pem.write_to_path(key_path, force=True)
    lab.client.cert_pem.write_to_path(cert_path, force=True)
    assert (mode(key_path), mode(cert_path)) == (0o600, 0o644)
    assert key_path.read_bytes() == lab.client.private_key_pem.bytes()
    assert cert_path.read_bytes() == lab.client.cert_pem.bytes()


@pytest.mark.parametrize("name", ["ca.pem", "client.key"])
def test_write_to_path_replaces_a_symlink_and_never_writes_through_it(
    lab: Lab, tmp_path: Path, name: str
) -> None:
    """A link planted where a certificate or a key goes: refused without force; with force the link itself
    is replaced by a new file, and the file it pointed at keeps its bytes, mode and owner."""
    victim = plant_victim(tmp_path)
    before = victim_state(victim)
    link = tmp_path / name
    link.symlink_to(victim)
    artefact = lab.client.private_key_pem if name.endswith(".key") else lab.ca.cert_pem
    with pytest.raises(FileExistsError):
        artefact.write_to_path(link)
    assert victim_state(victim) == before
    artefact.write_to_path(link, force=True)
    assert victim_state(victim) == before
    assert not link.is_symlink()
    assert link.read_bytes() == artefact.bytes()
    assert mode(link) == (0o600 if name.endswith(".key") else 0o644)


def test_a_dangling_symlink_is_replaced_not_followed(lab: Lab, tmp_path: Path) -> None:
    """A link to a file that does not exist yet (where an attacker would read a key from) counts as an
    existing file: refused, and with force replaced; the file it named is never created."""
    target = tmp_path / "attacker-reads-here.key"
    link = tmp_path / "client.key"
    link.symlink_to(target)
    with pytest.raises(FileExistsError):
        lab.client.private_key_pem.write_to_path(link)
    lab.client.private_key_pem.write_to_path(link, force=True)
    assert not target.exists()
    assert link.read_bytes() == lab.client.private_key_pem.bytes()


def test_a_key_file_is_born_0600_and_never_chmod_ed(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A private key's file is created owner-only and its mode never changed afterwards (so it is never
    readable by others, not even for a moment), under a permissive umask too; only a certificate's new
    file is opened up, to 0644, before anything is written in it."""
    changed: list[int] = []
    real_fchmod = os.fchmod

    def recording(fd: int, bits: int) -> None:
        changed.append(bits)
        real_fchmod(fd, bits)

    def refusing(*args: object, **kwargs: object) -> None:
        pytest.fail(f"chmod{args}")

    monkeypatch.setattr(os, "fchmod", recording)
    monkeypatch.setattr(os, "chmod", refusing)
    old_umask = os.umask(0)
    try:
        key = lab.client.private_key_pem.write_to_path(tmp_path / "client.key")
        assert changed == []
        cert = lab.client.cert_pem.write_to_path(tmp_path / "client.pem")
    finally:
        os.umask(old_umask)
    assert changed == [0o644]
    assert (mode(key), mode(cert)) == (0o600, 0o644)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "client.key",
        "client.pem",
    ]  # no leftovers


def test_tempfile_holds_the_bytes_and_is_deleted_afterwards(lab: Lab) -> None:
    """Artefact.tempfile() yields a 0600 file with the bytes, deleted when the block ends, even on error."""
    artefact = lab.client.private_key_pem
    with artefact.tempfile() as name:
        path = Path(name)
        assert path.read_bytes() == artefact.bytes()
        assert mode(path) == 0o600
    assert not path.exists()
    with pytest.raises(RuntimeError), artefact.tempfile() as name:
        raise RuntimeError(name)
    assert not Path(name).exists()


def test_artefact_kinds_and_text(lab: Lab) -> None:
    """Only private keys are secret; PEM text round-trips."""
    assert lab.client.private_key_pem.secret
    assert not lab.client.cert_pem.secret
    assert not lab.client.cert_chain_pem.secret
    assert lab.ca.cert_pem.text().startswith("-----BEGIN CERTIFICATE-----")


@pytest.mark.parametrize("key_type", [KeyType.EC, KeyType.ED25519], ids=["ec", "ed25519"])
def test_configure_cert_and_trust_load_into_a_client_context(key_type: KeyType) -> None:
    """configure_cert loads the client chain and key, configure_trust the lab root (client side, no sockets)."""
    lab = Lab(SEED, client_key_type=key_type, intermediate=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    lab.client.configure_cert(ctx)
    lab.issuing_ca.configure_trust(ctx)  # an intermediate makes the context trust its root
    (trusted,) = ctx.get_ca_certs()
    assert dict(item[0] for item in trusted["subject"])["commonName"] == "mtlslab Lab Root CA"


def test_configure_cert_refuses_a_key_that_does_not_match(lab: Lab) -> None:
    """ssl itself refuses a certificate with someone else's key: the helper hides nothing."""
    mismatched = Identity(
        name="mismatch",
        certificate=lab.client.certificate,
        private_key=lab.other_client.private_key,
    )
    with pytest.raises(ssl.SSLError):
        mismatched.configure_cert(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))


# --------------------------------------------------------------------------------------------------
# Bad input: a typed error naming the field, never a dependency's traceback.

GARBAGE_CERTIFICATES = [
    (b"garbage", "not a valid DER certificate"),
    (b"", "empty input"),
    ("   \n", "empty input"),
    (
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "not a valid PEM certificate",
    ),
    (42, "got int"),
    (None, "got NoneType"),
    (["not", "a", "certificate"], "got list"),
]


@pytest.mark.parametrize(("data", "reason"), GARBAGE_CERTIFICATES, ids=lambda v: repr(v)[:20])
def test_unusable_certificates_raise_certificate_error_naming_the_field(
    data: object, reason: str
) -> None:
    """Garbage, empty input and wrong types are CertificateError (a ValueError) naming the field."""
    with pytest.raises(CertificateError) as info:
        x5t_s256(data)  # type: ignore[arg-type]
    assert info.value.field == "certificate"
    assert reason in info.value.reason
    assert isinstance(info.value, (InputError, ValueError))
    with pytest.raises(CertificateError) as named:
        load_certificate(data, field="leaf")  # type: ignore[arg-type]
    assert named.value.field == "leaf"


def test_a_private_key_given_as_certificate_is_named_as_such(lab: Lab) -> None:
    """A PEM private key where a certificate belongs says which PEM block it got."""
    with pytest.raises(CertificateError) as info:
        x5t_s256(lab.client.private_key_pem.bytes())
    assert "PRIVATE KEY" in info.value.reason
    assert "not a CERTIFICATE" in info.value.reason


@pytest.mark.parametrize("data", [b"garbage", b"", None, 3.5], ids=repr)
def test_unusable_private_keys_raise_key_type_error(data: object) -> None:
    """Garbage or a wrong type where a private key belongs is KeyTypeError naming the field."""
    with pytest.raises(KeyTypeError) as info:
        load_private_key(data, field="client.key")  # type: ignore[arg-type]
    assert info.value.field == "client.key"


def test_a_certificate_given_as_private_key_is_refused(lab: Lab) -> None:
    """A certificate PEM is not a private key; the same PEM loads as a certificate."""
    with pytest.raises(KeyTypeError):
        load_private_key(lab.client.cert_pem.bytes())
    key = load_private_key(lab.client.private_key_pem.text())
    assert public_jwk(key) == public_jwk(lab.client.private_key)


def test_wrong_key_types_and_bad_names_are_named() -> None:
    """A key type that is not a KeyType, a non-key, a bad IP SAN or DN each name their field."""
    lab = Lab(SEED)
    with pytest.raises(KeyTypeError) as info:
        lab.key("x", "ec")  # type: ignore[arg-type]
    assert info.value.field == "key_type"
    with pytest.raises(KeyTypeError) as info:
        public_jwk("not a key")  # type: ignore[arg-type]
    assert info.value.field == "key"
    with pytest.raises(CertificateError) as cert_info:
        lab.ca.issue_client("x", san_ip=("not-an-ip",))
    assert cert_info.value.field == "san_ip"
    with pytest.raises(CertificateError) as cert_info:
        lab.ca.issue_client("x", subject_dn="no equals sign")
    assert cert_info.value.field == "subject_dn"


# --------------------------------------------------------------------------------------------------
# Display.

SCRIPT_DN = r"CN=\<script\>alert(1)\</script\>,O=mtlslab"


def test_html_of_a_hostile_subject_is_escaped(lab: Lab) -> None:
    """A subject containing <script> is shown escaped in _repr_html_, and quoted in the repr."""
    hostile = lab.ca.issue_client(
        "hostile", subject_dn=SCRIPT_DN, san_uri=("https://x.example/<b>",)
    )
    page = hostile._repr_html_()
    assert "<script>" not in page
    assert "<b>" not in page
    assert "&lt;script" in page
    assert "&lt;b&gt;" in page
    assert "x5t#S256" in page
    assert hostile.x5t_s256 in page
    assert repr(hostile).startswith("<Identity hostile tls_client_auth subject='")
    assert hostile.x5t_s256 in repr(hostile)


def test_reprs_are_compact_and_leak_no_key_material(lab: Lab) -> None:
    """Reprs name the thing and its thumbprint; an artefact's repr never shows its bytes."""
    assert repr(lab) == f"<Lab seed={SEED!r}>"
    assert repr(Lab()).startswith("<Lab seed=random ")
    assert repr(lab.ca) == f"<CertificateAuthority ca (root) x5t#S256={lab.ca.x5t_s256}>"
    key = lab.client.private_key_pem
    assert repr(key) == f"<Artefact private key {len(key.bytes())} bytes>"
    assert "PRIVATE" not in repr(key)
    assert repr(lab.validate(lab.client)) == "<ChainVerdict valid, 2 certificates>"
    assert repr(lab.validate(lab.expired_client)).startswith("<ChainVerdict invalid: expired (")
    assert isinstance(lab.client.private_key_pem, Artefact)


def test_lab_and_ca_html_lists_every_identity(lab: Lab) -> None:
    """The lab's HTML table has a row per named identity with its thumbprint; the CA renders too."""
    page = lab._repr_html_()
    for name, identity in lab.identities().items():
        assert f">{name}<" in page
        assert identity.x5t_s256 in page
    assert "Certificate authority ca" in lab.ca._repr_html_()


def test_pem_after_explanatory_text_is_read_and_plain_text_is_not_called_der(lab: Lab) -> None:
    """openssl's "Bag Attributes" before the block is fine; text with no PEM block is refused as not PEM."""
    pem = lab.client.cert_pem.text()
    assert (
        x5t_s256("Bag Attributes\n    localKeyID: 01\nsubject=CN = client\n" + pem)
        == lab.client.x5t_s256
    )
    with pytest.raises(CertificateError) as info:
        load_certificate("this is not a certificate")
    assert "not PEM" in info.value.reason


def test_one_named_identity_is_made_without_the_others() -> None:
    """Lab.identity("other-client") is the other_client attribute and makes no other identity; an unknown
    name is a KeyError; identities() lists the same objects by name."""
    lab = Lab(seed="one-identity")
    assert lab.identity("other-client") is lab.other_client
    made = {name for name in vars(lab) if name.endswith("client")}
    assert made == {"other_client"}
    with pytest.raises(KeyError):
        lab.identity("server")
    assert all(lab.identity(name) is identity for name, identity in lab.identities().items())


def test_thumbprints_match_exactly_or_not_at_all(lab: Lab) -> None:
    """The same string matches; another, a prefix, a non-string or a lone surrogate does not, and nothing
    raises (RFC 8705 §3.1: the thumbprints are compared as they are)."""
    true = lab.client.x5t_s256
    assert same_thumbprint(true, true)
    assert not same_thumbprint(lab.other_client.x5t_s256, true)
    assert not same_thumbprint(true[:-1], true)
    assert not same_thumbprint(None, true)
    assert not same_thumbprint([true], true)
    assert not same_thumbprint("\ud800", true)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ec.generate_private_key(ec.SECP256R1()),
        lambda: ed25519.Ed25519PrivateKey.generate(),
        lambda: rsa.generate_private_key(65537, 2048),
    ],
)
def test_sign_certificate_signs_with_any_lab_key_type_and_ecdsa_deterministically(
    make: Callable[[], pki.PrivateKey],
) -> None:
    """`pki.sign_certificate` is how every lab certificate is signed (the tokens' impostor certificate too):
    the signature verifies with the signer's public key, and ECDSA is deterministic (RFC 6979), so one
    builder signed twice gives the same bytes and a seed gives the same certificates."""
    key = make()
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "signer")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(pki.LAB_EPOCH)
        .not_valid_after(pki.LAB_NOT_AFTER)
    )
    first = pki.sign_certificate(builder, key)
    first.verify_directly_issued_by(first)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        assert pki.sign_certificate(builder, key).signature == first.signature
