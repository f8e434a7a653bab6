"""mtlslab.tokens: RFC 9068 access tokens bound by cnf (RFC 8705 §3.1, RFC 9449 §6.1), their broken variants,
RFC 7662 introspection, DPoP proofs (RFC 9449 §4.2) and RFC 7638 thumbprints — checked with plain pyjwt."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import subprocess
import sys
import time
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mtlslab.errors import KeyTypeError, TokenError
from mtlslab.findings import Finding
from mtlslab.pki import LAB_NOW, Lab, public_jwk
from mtlslab.rs import TokenInspection, inspect_token
from mtlslab.tokens import (
    ALGORITHMS,
    LAB_AUDIENCE,
    LAB_ISSUER,
    LAB_RESOURCE,
    TOKEN_VARIANTS,
    AccessToken,
    AuthorizationServer,
    DPoPKey,
    decode_unverified,
    dpop_proof,
    jwk_thumbprint,
)

SEED = "test-tokens"
RFC9068_CLAIMS = {"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"}


@pytest.fixture(scope="module")
def lab() -> Lab:
    """One seeded lab for this module."""
    return Lab(SEED)


@pytest.fixture(scope="module")
def asrv(lab: Lab) -> AuthorizationServer:
    """The lab authorization server (ES256)."""
    return AuthorizationServer(lab)


@pytest.fixture(scope="module")
def servers(lab: Lab) -> dict[str, AuthorizationServer]:
    """One lab authorization server per signature algorithm (RSA keys are slow to make: make them once)."""
    return {alg: AuthorizationServer(lab, alg=alg) for alg in ALGORITHMS}


def b64url_sha256(data: bytes) -> str:
    """base64url (no padding) of SHA-256, computed independently of the library."""
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")


def decode_at(
    token: str, jwks: dict[str, Any], *, at: dt.datetime = LAB_NOW, **kwargs: Any
) -> dict[str, Any]:
    """pyjwt's own `jwt.decode` as if the clock read `at`.

    pyjwt has no clock parameter, so its clock is shifted with `leeway`: exp is judged with
    leeway = wall − at (exp ≤ at fails), nbf and iat with leeway = at − wall (nbf > at fails).
    """
    keys = jwt.PyJWKSet.from_dict(jwks).keys
    kwargs.setdefault("algorithms", [keys[0].algorithm_name])
    kwargs.setdefault("audience", LAB_AUDIENCE)
    kwargs.setdefault("issuer", LAB_ISSUER)
    skew = time.time() - at.timestamp()
    options = {"require": ["exp", "iat", "iss", "aud"]}
    jwt.decode(
        token,
        keys[0],
        leeway=skew,
        options={**options, "verify_nbf": False, "verify_iat": False},
        **kwargs,
    )
    return jwt.decode(
        token, keys[0], leeway=-skew, options={**options, "verify_exp": False}, **kwargs
    )


# --------------------------------------------------------------------------------------------------
# Every variant mints, with its documented shape.


@pytest.mark.parametrize("name", sorted(TOKEN_VARIANTS))
def test_every_variant_mints_with_its_documented_shape(
    asrv: AuthorizationServer, name: str
) -> None:
    """Each TOKEN_VARIANTS entry mints a token of its declared kind, description and spec citation."""
    recipe = TOKEN_VARIANTS[name]
    token = asrv.mint(name)
    assert (token.variant, token.kind, token.description) == (name, recipe.kind, recipe.description)
    assert recipe.cite.startswith("RFC ")
    assert asrv.mint(name) is token  # cached per arguments
    if token.kind == "jwt":
        header, claims = decode_unverified(token.value)
        assert header["typ"] == "at+jwt"
        if name == "unknown-kid":  # the variant's point: a kid the issuer never published
            assert header["kid"] not in {key["kid"] for key in asrv.jwks()["keys"]}
        else:
            assert header["kid"] == asrv.kid
        assert set(claims) >= RFC9068_CLAIMS
        assert token.header() == header
        assert token.claims() == claims
    elif token.kind == "opaque":
        assert "." not in token.value
        assert len(token.value) >= 32
        assert token.header() == {}
        assert token.claims() == {}
    elif token.kind == "malformed":
        with pytest.raises(TokenError):
            decode_unverified(token.value)
    else:
        assert token.value == ""


def test_bindings_of_the_bound_dpop_and_unbound_variants(
    lab: Lab, asrv: AuthorizationServer
) -> None:
    """bound carries cnf.x5t#S256 of lab.client, dpop-bound cnf.jkt of the DPoP key, unbound no cnf."""
    bound = asrv.mint("bound")
    assert bound.claims()["cnf"] == {"x5t#S256": lab.client.x5t_s256}
    assert bound.bound_x5t == lab.client.x5t_s256
    self_signed = asrv.mint("bound-self-signed")
    assert self_signed.claims()["cnf"] == {"x5t#S256": lab.self_signed_client.x5t_s256}
    assert self_signed.claims()["client_id"] == lab.self_signed_client.client_id
    dpop = asrv.mint("dpop-bound")
    assert dpop.claims()["cnf"] == {"jkt": DPoPKey.for_lab(lab).jkt}
    assert dpop.bound_jkt == DPoPKey.for_lab(lab).jkt
    unbound = asrv.mint("unbound")
    assert "cnf" not in unbound.claims()
    assert unbound.bound_x5t is None
    assert unbound.bound_jkt is None


def test_mint_binds_to_another_identity_when_asked(lab: Lab, asrv: AuthorizationServer) -> None:
    """bound_to= binds the token to another certificate."""
    token = asrv.mint("bound", bound_to=lab.other_client)
    assert token.claims()["cnf"]["x5t#S256"] == lab.other_client.x5t_s256 != lab.client.x5t_s256


# --------------------------------------------------------------------------------------------------
# Verification with plain pyjwt, and reproducibility.


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_bound_tokens_verify_with_plain_pyjwt(
    lab: Lab, servers: dict[str, AuthorizationServer], alg: str
) -> None:
    """A bound token verifies with jwt.decode against the JWKS, audience and issuer; cnf is the client's."""
    server = servers[alg]
    token = server.mint("bound")
    claims = decode_at(token.value, server.jwks(), algorithms=[alg])
    assert claims["cnf"]["x5t#S256"] == lab.client.x5t_s256
    assert token.header()["alg"] == alg
    assert all("d" not in key for key in server.jwks()["keys"])


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_es256_and_eddsa_tokens_are_byte_identical_for_a_seed(alg: str) -> None:
    """Two servers over two labs from one seed mint the same token string (RFC 6979 / EdDSA)."""
    one = AuthorizationServer(Lab(SEED), alg=alg)
    two = AuthorizationServer(Lab(SEED), alg=alg)
    assert one.reproducible
    assert two.reproducible
    assert one.jwks() == two.jwks()
    for variant in ("bound", "dpop-bound", "unbound", "expired"):
        assert one.mint(variant).value == two.mint(variant).value, variant


def test_tokens_are_byte_identical_across_processes() -> None:
    """`mtlslab token --seed S` prints the same token in two processes, and the same as this process."""
    printed = [
        subprocess.run(
            [sys.executable, "-m", "mtlslab", "token", "--seed", SEED],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
        for _ in range(2)
    ]
    assert printed[0] == printed[1] == AuthorizationServer(Lab(SEED)).mint("bound").value


def test_unseeded_lab_tokens_are_not_reproducible() -> None:
    """An unseeded lab's server does not promise reproducible tokens."""
    assert not AuthorizationServer(Lab()).reproducible


@pytest.mark.parametrize("alg", ["RS256", "PS256"])
def test_rsa_tokens_verify_but_are_not_reproducible(
    servers: dict[str, AuthorizationServer], alg: str
) -> None:
    """RS256/PS256 keys are random (not derivable from a seed): tokens verify but differ between servers."""
    one = servers[alg]
    two = AuthorizationServer(Lab(SEED), alg=alg)
    assert not one.reproducible
    first, second = one.mint("bound").value, two.mint("bound").value
    assert first != second
    decode_at(first, one.jwks(), algorithms=[alg])
    decode_at(second, two.jwks(), algorithms=[alg])
    with pytest.raises(jwt.InvalidSignatureError):
        decode_at(first, two.jwks(), algorithms=[alg])


# --------------------------------------------------------------------------------------------------
# The broken variants fail the way their names say.


def test_expired_fails_at_the_lab_clock_where_bound_passes(asrv: AuthorizationServer) -> None:
    """expired: pyjwt raises ExpiredSignatureError at LAB_NOW; the bound token is fine at the same instant."""
    decode_at(asrv.mint("bound").value, asrv.jwks())
    with pytest.raises(jwt.ExpiredSignatureError):
        decode_at(asrv.mint("expired").value, asrv.jwks())


def test_not_yet_valid_fails_at_the_lab_clock(asrv: AuthorizationServer) -> None:
    """not-yet-valid: pyjwt raises ImmatureSignatureError at LAB_NOW, and accepts it 2½ hours later."""
    token = asrv.mint("not-yet-valid").value
    with pytest.raises(jwt.ImmatureSignatureError):
        decode_at(token, asrv.jwks())
    decode_at(token, asrv.jwks(), at=LAB_NOW + dt.timedelta(hours=2, minutes=30))


@pytest.mark.parametrize(
    ("variant", "error"),
    [
        ("wrong-audience", jwt.InvalidAudienceError),
        ("wrong-issuer", jwt.InvalidIssuerError),
        ("bad-signature", jwt.InvalidSignatureError),
        ("alg-none", jwt.InvalidAlgorithmError),
        ("hs256-confusion", jwt.InvalidAlgorithmError),
    ],
)
def test_broken_variants_are_refused_by_pyjwt(
    asrv: AuthorizationServer, variant: str, error: type
) -> None:
    """pyjwt with algorithms=["ES256"], our audience and issuer refuses each broken variant for its reason."""
    with pytest.raises(error):
        decode_at(asrv.mint(variant).value, asrv.jwks(), algorithms=["ES256"])


def test_alg_none_has_no_signature(asrv: AuthorizationServer) -> None:
    """alg-none says alg none and carries an empty signature part."""
    token = asrv.mint("alg-none")
    assert token.header()["alg"] == "none"
    assert token.value.endswith(".")


def test_hs256_confusion_is_keyed_with_the_public_key(asrv: AuthorizationServer) -> None:
    """hs256-confusion is a valid HMAC over the token with the AS public key PEM as secret (the attack)."""
    token = asrv.mint("hs256-confusion").value
    signing_input, _, signature = token.rpartition(".")
    expected = hmac.new(
        asrv.public_key_pem(), signing_input.encode("ascii"), hashlib.sha256
    ).digest()
    assert jwt.utils.base64url_decode(signature) == expected
    assert asrv.public_key_pem().startswith(b"-----BEGIN PUBLIC KEY-----")


def test_insufficient_scope_lacks_the_read_scope(asrv: AuthorizationServer) -> None:
    """insufficient-scope has a scope without `read`, which the bound token has."""
    assert "read" in asrv.mint("bound").claims()["scope"].split()
    assert "read" not in asrv.mint("insufficient-scope").claims()["scope"].split()


@pytest.mark.parametrize(
    ("variant", "field"),
    [
        ("malformed-parts", "token"),
        ("malformed-base64", "token.claims"),
        ("malformed-json", "token.claims"),
    ],
)
def test_malformed_tokens_raise_token_error_naming_the_part(
    asrv: AuthorizationServer, variant: str, field: str
) -> None:
    """decode_unverified names the broken part of a malformed token."""
    with pytest.raises(TokenError) as info:
        decode_unverified(asrv.mint(variant).value)
    assert info.value.field == field


def test_a_broken_header_or_signature_is_named_too(asrv: AuthorizationServer) -> None:
    """A corrupt header or signature part is named as such; a non-string is refused as `token`."""
    header, payload, signature = asrv.mint("bound").value.split(".")
    with pytest.raises(TokenError) as info:
        decode_unverified(f"{header[:-3]}.{payload}.{signature}")
    assert info.value.field == "token.header"
    with pytest.raises(TokenError) as info:
        decode_unverified(f"{header}.{payload}.{signature[:5]}*{signature[5:]}")
    assert info.value.field == "token.signature"
    with pytest.raises(TokenError) as info:
        decode_unverified(None)  # type: ignore[arg-type]
    assert info.value.field == "token"


def _digest(lab: Lab, name: str) -> bytes:
    return hashlib.new(name, lab.client.der).digest()


CNF_LOOK_ALIKES = (
    "cnf-padded",
    "cnf-uppercase",
    "cnf-standard-base64",
    "cnf-sha1",
    "cnf-x5t-sha1",
    "cnf-pem-hash",
    "cnf-public-key-hash",
    "cnf-unknown-method",
)
CNF_STRUCTURAL = ("cnf-list", "cnf-string", "cnf-two-methods", "cnf-duplicate-member")


def test_cnf_look_alikes_differ_from_the_true_thumbprint(
    lab: Lab, asrv: AuthorizationServer
) -> None:
    """Each cnf look-alike is wrong in exactly the way its name says, and none equals the true x5t#S256."""
    true = lab.client.x5t_s256
    # every cnf- variant is a look-alike (here) or a structural oddity (the next test): none unclassified
    assert {n for n in TOKEN_VARIANTS if n.startswith("cnf-")} == set(CNF_LOOK_ALIKES) | set(
        CNF_STRUCTURAL
    )
    cnf = {name: asrv.mint(name).claims()["cnf"] for name in CNF_LOOK_ALIKES}
    assert cnf["cnf-padded"] == {"x5t#S256": true + "="}
    assert cnf["cnf-uppercase"] == {"x5t#S256": true.upper()}
    assert cnf["cnf-standard-base64"] == {
        "x5t#S256": base64.b64encode(_digest(lab, "sha256")).decode()
    }
    sha1 = base64.urlsafe_b64encode(_digest(lab, "sha1")).rstrip(b"=").decode()
    assert cnf["cnf-sha1"] == {"x5t#S256": sha1}
    assert cnf["cnf-x5t-sha1"] == {"x5t": sha1}
    assert cnf["cnf-pem-hash"] == {"x5t#S256": b64url_sha256(lab.client.cert_pem.bytes())}
    spki = lab.client.certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert cnf["cnf-public-key-hash"] == {"x5t#S256": b64url_sha256(spki)}
    assert "x5t#S256" not in cnf["cnf-unknown-method"]
    for name, value in cnf.items():
        assert value.get("x5t#S256") != true, name
        binding = inspect_token(
            asrv.mint(name).value, jwks=asrv.jwks(), certificate=lab.client
        ).binding
        assert binding.holds is False, name


def test_cnf_shapes_are_what_their_names_say(lab: Lab, asrv: AuthorizationServer) -> None:
    """cnf-list is an array, cnf-string a bare string, cnf-two-methods names the certificate and the DPoP key."""
    true = lab.client.x5t_s256
    assert asrv.mint("cnf-list").claims()["cnf"] == [{"x5t#S256": true}]
    assert asrv.mint("cnf-string").claims()["cnf"] == true
    two = asrv.mint("cnf-two-methods")
    assert two.claims()["cnf"] == {"x5t#S256": true, "jkt": asrv.dpop_key.jkt}
    assert (two.bound_x5t, two.bound_jkt) == (true, asrv.dpop_key.jkt)
    for name in ("cnf-list", "cnf-string"):
        binding = inspect_token(asrv.mint(name).value, jwks=asrv.jwks(), certificate=lab.client)
        assert (binding.binding.method, binding.binding.holds) == ("unsupported", False)


def test_a_thumbprint_that_is_not_valid_unicode_does_not_match(
    lab: Lab, asrv: AuthorizationServer
) -> None:
    """cnf members escaped as a lone surrogate ("\\ud800") are valid JSON: the inspector says they do not
    match, as the resource server does, instead of failing to encode them."""
    claims = {
        "iss": asrv.issuer,
        "aud": asrv.audience,
        "sub": "alice",
        "iat": 1767225600,
        "exp": 1767229200,
    }
    for cnf, certificate, jkt in (
        ({"x5t#S256": "\ud800"}, lab.client, None),
        ({"jkt": "\ud800"}, None, asrv.dpop_key.jkt),
    ):
        token = asrv.sign({**claims, "cnf": cnf})
        binding = inspect_token(token, jwks=asrv.jwks(), certificate=certificate, dpop_jkt=jkt)
        assert binding.binding.holds is False, cnf


def _segment(token: str, index: int) -> bytes:
    part = token.split(".")[index]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_duplicate_member_variants_repeat_a_name_in_the_signed_text(
    lab: Lab, asrv: AuthorizationServer
) -> None:
    """RFC 7519 §4 / RFC 7515 §4: the payload names cnf twice (attacker first, victim last), the header alg
    twice (none first); both verify with the issuer's key, and a last-member parser sees the victim's cnf."""
    dup_cnf = asrv.mint("cnf-duplicate-member").value
    payload = _segment(dup_cnf, 1).decode()
    attacker, victim = lab.other_client.x5t_s256, lab.client.x5t_s256
    assert payload.count('"cnf":') == 2
    assert payload.index(attacker) < payload.index(victim)
    assert decode_at(dup_cnf, asrv.jwks())["cnf"] == {"x5t#S256": victim}
    dup_alg = asrv.mint("duplicate-header-member").value
    header = _segment(dup_alg, 0).decode()
    assert header.startswith('{"alg":"none",')
    assert header.endswith(f'"alg":"{asrv.alg}"}}')
    assert jwt.get_unverified_header(dup_alg)["alg"] == asrv.alg
    assert decode_at(dup_alg, asrv.jwks())["cnf"] == {"x5t#S256": victim}


@pytest.mark.parametrize(
    ("name", "member"),
    [("jku-header", "jku"), ("x5u-header", "x5u"), ("jwk-header", "jwk"), ("x5c-header", "x5c")],
)
def test_key_pointing_headers_ride_on_attacker_signed_tokens(
    asrv: AuthorizationServer, name: str, member: str
) -> None:
    """jku/x5u point at an attacker host under .test; jwk/x5c carry the key that really signed (the
    attacker's, a self-signed certificate for x5c); the issuer's JWKS never verifies them."""
    token = asrv.mint(name).value
    value = jwt.get_unverified_header(token)[member]
    if member in ("jku", "x5u"):
        assert value.startswith("https://attacker.mtlslab.test/")
    else:
        if member == "jwk":
            carried = value
        else:
            cert = x509.load_der_x509_certificate(base64.b64decode(value[0]))
            assert cert.issuer == cert.subject  # self-signed
            carried = public_jwk(cert.public_key())
        attacker = jwt.PyJWK(carried, algorithm=asrv.alg)
        claims = jwt.decode(
            token,
            key=attacker,
            algorithms=[asrv.alg],
            options={"verify_exp": False},
            audience=LAB_AUDIENCE,
        )
        assert claims["iss"] == LAB_ISSUER  # claims the issuer, signed by someone else
        assert jwk_thumbprint(carried) != asrv.kid
    assert inspect_token(token, jwks=asrv.jwks()).signature.valid is False
    assert inspect_token(asrv.mint("jku-header-genuine").value, jwks=asrv.jwks()).signature.valid


def test_unknown_kid_names_the_attacker_key(asrv: AuthorizationServer) -> None:
    """unknown-kid is signed by a key outside the JWKS whose RFC 7638 thumbprint is its kid."""
    token = asrv.mint("unknown-kid").value
    kid = jwt.get_unverified_header(token)["kid"]
    assert (
        inspect_token(token, jwks=asrv.jwks()).signature.reason
        == f"no key with kid {kid!r} in the issuer's JWKS"
    )


def test_huge_and_non_ascii_subject_variants(asrv: AuthorizationServer) -> None:
    """huge-token is over a mebibyte and still a valid bound token; non-ascii-subject's sub holds U+2028 and CR LF."""
    huge = asrv.mint("huge-token")
    assert len(huge.value) > 1024 * 1024
    assert len(huge.claims()["padding"]) == 1024 * 1024
    assert inspect_token(huge.value, jwks=asrv.jwks()).signature.valid
    assert len(huge._repr_html_()) < 20_000  # shown by its shape, not as a megabyte of HTML
    sub = asrv.mint("non-ascii-subject").claims()["sub"]
    assert "\u2028" in sub
    assert "\r\n" in sub


# --------------------------------------------------------------------------------------------------
# RFC 7638 thumbprints and RFC 9449 DPoP proofs.

RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64"
    "tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91"
    "CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)


def test_jwk_thumbprint_matches_the_rfc7638_example() -> None:
    """RFC 7638 §3.1's RSA key has thumbprint NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs; extra members don't count."""
    jwk = {"kty": "RSA", "n": RFC7638_N, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    assert jwk_thumbprint({"e": "AQAB", "n": RFC7638_N, "kty": "RSA"}) == jwk_thumbprint(jwk)


@pytest.mark.parametrize(
    ("jwk", "field"),
    [
        ({}, "jwk.kty"),
        ({"kty": "XYZ"}, "jwk.kty"),
        ({"kty": "RSA", "n": RFC7638_N}, "jwk.e"),
        ({"kty": "RSA", "n": RFC7638_N, "e": 65537}, "jwk.e"),
        ({"kty": "EC", "crv": "P-256", "x": "AAAA"}, "jwk.y"),
        ({"kty": "OKP", "x": "AAAA"}, "jwk.crv"),
        ("not a jwk", "jwk"),
    ],
    ids=["empty", "unknown-kty", "rsa-no-e", "rsa-int-e", "ec-no-y", "okp-no-crv", "not-a-mapping"],
)
def test_jwk_thumbprint_refuses_incomplete_jwks(jwk: Any, field: str) -> None:
    """A JWK lacking a required member (or not a JSON object) is a TokenError naming the member."""
    with pytest.raises(TokenError) as info:
        jwk_thumbprint(jwk)
    assert info.value.field == field


def test_dpop_proof_has_the_rfc9449_shape_and_verifies_with_its_jwk(
    lab: Lab, asrv: AuthorizationServer
) -> None:
    """A proof has typ dpop+jwt, the public jwk, htm/htu/iat/jti and ath = base64url(SHA-256(token))."""
    key = DPoPKey.for_lab(lab)
    token = asrv.mint("dpop-bound").value
    proof = dpop_proof(key, htm="GET", htu=LAB_RESOURCE, access_token=token)
    header = jwt.get_unverified_header(proof)
    assert header["typ"] == "dpop+jwt"
    assert header["alg"] == "ES256"
    assert header["jwk"] == key.public_jwk
    assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(header["jwk"])
    claims = jwt.decode(proof, jwt.PyJWK(header["jwk"]), algorithms=["ES256"])
    assert claims["htm"] == "GET"
    assert claims["htu"] == LAB_RESOURCE
    assert claims["iat"] == int(LAB_NOW.timestamp())
    assert isinstance(claims["jti"], str)
    assert claims["jti"]
    assert claims["ath"] == b64url_sha256(token.encode("ascii"))
    assert jwk_thumbprint(header["jwk"]) == key.jkt == decode_unverified(token)[1]["cnf"]["jkt"]


def test_dpop_proof_without_token_has_no_ath_and_a_swapped_jwk_fails(lab: Lab) -> None:
    """Without an access token there is no ath; a proof whose jwk is another key does not verify."""
    key = DPoPKey.for_lab(lab)
    plain = dpop_proof(key, htm="POST", htu="https://as.mtlslab.test/token")
    assert "ath" not in jwt.decode(plain, options={"verify_signature": False})
    impostor = DPoPKey.for_lab(lab, "someone-else")
    forged = dpop_proof(
        key, htm="GET", htu=LAB_RESOURCE, header_overrides={"jwk": impostor.public_jwk}
    )
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            forged, jwt.PyJWK(jwt.get_unverified_header(forged)["jwk"]), algorithms=["ES256"]
        )


# --------------------------------------------------------------------------------------------------
# RFC 7662 introspection (RFC 8705 §3.2).


def test_introspection_of_an_opaque_bound_token_carries_cnf(
    lab: Lab, asrv: AuthorizationServer
) -> None:
    """opaque-bound introspects active with cnf.x5t#S256 of the client (RFC 8705 §3.2)."""
    response = asrv.introspect(asrv.mint("opaque-bound").value)
    assert response["active"] is True
    assert response["cnf"] == {"x5t#S256": lab.client.x5t_s256}
    assert response["token_type"] == "Bearer"
    assert response["client_id"] == "lab-client"
    unbound = asrv.introspect(asrv.mint("opaque-unbound").value)
    assert unbound["active"] is True
    assert "cnf" not in unbound


def test_introspection_of_inactive_unknown_and_expired_tokens(asrv: AuthorizationServer) -> None:
    """Revoked, unknown and (at a later `now`) expired tokens introspect as exactly {"active": false}."""
    assert asrv.introspect(asrv.mint("opaque-inactive").value) == {"active": False}
    assert asrv.introspect("never-issued") == {"active": False}
    bound = asrv.mint("opaque-bound").value
    exp = asrv.introspect(bound)["exp"]
    just_before = dt.datetime.fromtimestamp(exp - 1, tz=dt.timezone.utc)
    assert asrv.introspect(bound, now=just_before)["active"] is True
    assert asrv.introspect(bound, now=LAB_NOW + dt.timedelta(hours=2)) == {"active": False}


def test_introspection_of_a_jwt_carries_its_claims(lab: Lab, asrv: AuthorizationServer) -> None:
    """A bound JWT introspects with the same cnf it carries."""
    token = asrv.mint("bound")
    assert asrv.introspect(token.value)["cnf"] == token.claims()["cnf"]


# --------------------------------------------------------------------------------------------------
# Inspection as data.


def test_inspect_token_reports_signature_and_binding(lab: Lab, asrv: AuthorizationServer) -> None:
    """inspect_token: valid signature; binding holds for the client and differs for another certificate."""
    token = asrv.mint("bound").value
    held = inspect_token(token, jwks=asrv.jwks(), certificate=lab.client)
    assert isinstance(held, TokenInspection)
    assert held.signature.valid
    assert (held.binding.method, held.binding.holds) == ("x5t#S256", True)
    assert held.binding.presented == held.binding.expected == lab.client.x5t_s256
    for form in (lab.client.cert_pem.bytes(), lab.client.cert_pem.text(), lab.client.der):
        assert inspect_token(token, jwks=asrv.jwks(), certificate=form).binding.holds is True
    differs = inspect_token(token, jwks=asrv.jwks(), certificate=lab.other_client).binding
    assert differs.holds is False
    assert differs.finding is Finding.CERTIFICATE_MISMATCH
    assert differs.reason.startswith("certificate mismatch: expected x5t#S256")
    assert inspect_token(token, jwks=asrv.jwks()).binding.holds is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        held.signature = held.signature  # type: ignore[misc]


def test_inspect_token_reports_unbound_dpop_and_unsupported_bindings(
    lab: Lab, asrv: AuthorizationServer
) -> None:
    """No cnf is "none", cnf.jkt is compared with the DPoP key, an unknown cnf member is "unsupported"."""
    jwks = asrv.jwks()
    unbound = inspect_token(asrv.mint("unbound").value, jwks=jwks, certificate=lab.client).binding
    assert (unbound.method, unbound.holds) == ("none", None)
    dpop = asrv.mint("dpop-bound").value
    assert inspect_token(dpop, jwks=jwks, dpop_jkt=DPoPKey.for_lab(lab).jkt).binding.holds is True
    other_key = DPoPKey.for_lab(lab, "other").jkt
    assert inspect_token(dpop, jwks=jwks, dpop_jkt=other_key).binding.holds is False
    unknown = inspect_token(
        asrv.mint("cnf-unknown-method").value, jwks=jwks, certificate=lab.client
    ).binding
    assert (unknown.method, unknown.holds) == ("unsupported", False)


@pytest.mark.parametrize("variant", ["bad-signature", "alg-none", "hs256-confusion"])
def test_inspect_token_reports_signatures_that_do_not_verify(
    asrv: AuthorizationServer, variant: str
) -> None:
    """Forged or unsigned variants inspect as signature invalid, with a reason, without raising."""
    signature = inspect_token(asrv.mint(variant).value, jwks=asrv.jwks()).signature
    assert not signature.valid
    assert signature.reason


def test_inspect_token_refuses_an_unusable_jwks(asrv: AuthorizationServer) -> None:
    """A JWKS pyjwt cannot use is a TokenError naming `jwks`."""
    with pytest.raises(TokenError) as info:
        inspect_token(asrv.mint("bound").value, jwks={"keys": []})
    assert info.value.field == "jwks"


def test_unknown_variant_and_algorithm_are_named(lab: Lab, asrv: AuthorizationServer) -> None:
    """An unknown variant name is a TokenError; an unsupported signing algorithm a KeyTypeError."""
    with pytest.raises(TokenError) as info:
        asrv.mint("bound-typo")
    assert info.value.field == "variant"
    assert "bound" in info.value.reason
    with pytest.raises(KeyTypeError) as key_info:
        AuthorizationServer(lab, alg="HS256")
    assert key_info.value.field == "alg"


# --------------------------------------------------------------------------------------------------
# Display.


def test_access_token_html_and_repr_are_escaped() -> None:
    """AccessToken._repr_html_ escapes the value, variant and description; the repr shortens long values."""
    token = AccessToken(
        value="<script>alert(1)</script>" * 3,
        variant="<b>v</b>",
        kind="opaque",
        description="<i>d</i>",
    )
    page = token._repr_html_()
    assert "<script>" not in page
    assert "<b>v" not in page
    assert "<i>" not in page
    assert "&lt;script&gt;" in page
    assert "&lt;b&gt;v" in page
    assert "…" in repr(token)
    assert len(repr(token)) < 80


def test_claims_in_html_are_escaped(lab: Lab) -> None:
    """Claims rendered in a notebook escape hostile content (here a hostile issuer)."""
    server = AuthorizationServer(lab, issuer="https://as.example/<script>")
    token = server.mint("bound")
    assert "<script>" not in token._repr_html_()
    assert "&lt;script&gt;" in token._repr_html_()
    inspection = inspect_token(token.value, jwks=server.jwks(), certificate=lab.client)
    assert "<script>" not in inspection._repr_html_()
    assert json.loads(json.dumps(inspection.claims))["iss"] == "https://as.example/<script>"


def test_an_inspection_has_a_compact_repr(lab: Lab, asrv: AuthorizationServer) -> None:
    """repr() of an inspection is one line: algorithm, signature verdict, binding verdict."""
    text = repr(
        inspect_token(asrv.mint("bound").value, jwks=asrv.jwks(), certificate=lab.other_client)
    )
    assert text == (
        "<TokenInspection ES256 signature valid; binding x5t#S256 fails: certificate_mismatch>"
    )
    assert "\n" not in text


def test_an_introspection_response_is_a_json_object_that_renders(
    lab: Lab, asrv: AuthorizationServer
) -> None:
    """RFC 7662 §2.2: the response is a JSON object (a dict) and shows readably, escaped, in a notebook."""
    response = asrv.introspect(asrv.mint("opaque-bound").value)
    assert isinstance(response, dict)
    assert json.loads(json.dumps(response))["cnf"] == {"x5t#S256": lab.client.x5t_s256}
    assert repr(response).startswith("<IntrospectionResponse active cnf=")
    assert "active" in response._repr_html_()
    assert "inactive" in repr(asrv.introspect("unknown-token"))


# --------------------------------------------------------------------------------------------------
# Introspection (issue 14 item 3).


def test_introspection_says_a_not_yet_valid_token_is_not_active(
    lab: Lab, asrv: AuthorizationServer
) -> None:
    """RFC 7662 §2.2: active means within the token's window of validity, and §4: the server "MUST determine
    whether or not a token's valid period has started yet" — a token whose nbf lies ahead is inactive;
    the same token once its nbf has passed is active (the control)."""
    token = asrv.mint("not-yet-valid").value
    nbf = asrv.mint("not-yet-valid").claims()["nbf"]
    assert asrv.introspect(token)["active"] is False
    later = dt.datetime.fromtimestamp(nbf, tz=dt.timezone.utc)
    assert asrv.introspect(token, now=later)["active"] is True


def test_the_lab_authorization_server_knows_tokens_another_process_minted(lab: Lab) -> None:
    """The lab AS recognises its own tokens, not only those minted by this object: a JWT its key signed
    (with its cnf), and its seed-derived opaque tokens; a token it never issued, or one signed by another key,
    is inactive."""
    minting = AuthorizationServer(Lab(seed=lab.seed))
    fresh = AuthorizationServer(Lab(seed=lab.seed))
    bound = fresh.introspect(minting.mint("bound").value)
    assert bound["active"] is True
    assert bound["cnf"] == {"x5t#S256": lab.client.x5t_s256}
    assert fresh.introspect(minting.mint("opaque-bound").value)["active"] is True
    assert fresh.introspect(minting.mint("opaque-inactive").value)["active"] is False
    assert fresh.introspect(minting.mint("bad-signature").value)["active"] is False
    assert fresh.introspect("not-a-token")["active"] is False
    stranger = AuthorizationServer(Lab(seed="someone-else"))
    assert fresh.introspect(stranger.mint("bound").value)["active"] is False


def test_asking_about_unknown_tokens_mints_nothing(lab: Lab) -> None:
    """Introspecting tokens the server never issued, at a clock that moves (a live server), leaves its
    stores as they were: the seed-derived opaque values are compared, not minted again per question; its
    own opaque token is still known, and minted then."""
    server = AuthorizationServer(Lab(seed=lab.seed))
    for i in range(50):
        at = LAB_NOW + dt.timedelta(seconds=i)
        assert server.introspect(f"unknown-{i}", now=at)["active"] is False
    assert (len(server._cache), len(server._introspection)) == (0, 0)
    mine = AuthorizationServer(Lab(seed=lab.seed)).mint("opaque-unbound").value
    assert server.introspect(mine)["active"] is True
    assert len(server._cache) == 1


def test_a_server_minting_at_the_wall_clock_keeps_a_bounded_store(lab: Lab) -> None:
    """A live token endpoint mints one token per request at the wall clock: the server keeps at most
    tokens._KEPT minted tokens and introspection records, and a token whose record it let go is still
    known by its signature (RFC 7662 §2.2: active, and bound, RFC 8705 §3.2)."""
    from mtlslab import tokens

    server = AuthorizationServer(lab)
    minted = [
        server.mint("bound", now=LAB_NOW + dt.timedelta(seconds=i)).value
        for i in range(tokens._KEPT + 50)
    ]
    assert len(server._cache) == tokens._KEPT
    assert len(server._introspection) == tokens._KEPT
    assert minted[0] not in server._introspection  # let go, the oldest first
    first = server.introspect(minted[0], now=LAB_NOW)
    assert first["active"] is True
    assert first["cnf"] == {"x5t#S256": lab.client.x5t_s256}
