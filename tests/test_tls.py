"""mtlslab.tls: the pure model of the TLS layer (RFC 8446 §4.4.2.4, RFC 5246 §7.4.6, RFC 8705 §6.2)."""

from __future__ import annotations

import datetime as dt

import pytest

from mtlslab.pki import LAB_NOW, Lab
from mtlslab.tls import (
    ALERTS,
    ClientAuth,
    TlsAlert,
    TlsResult,
    TlsVersion,
    alert_by_name,
    handshake,
)

#: What a validating TLS layer (optional / required) does with each lab identity: ``None`` means the
#: certificate is handed to the application, otherwise the alert OpenSSL sends.
VALIDATED = {
    "client": None,
    "other-client": None,
    "self-signed-client": ("unknown_ca", 48),
    "expired-client": ("certificate_expired", 45),
    "not-yet-valid-client": ("bad_certificate", 42),
    "untrusted-ca-client": ("unknown_ca", 48),
    "server-auth-only-client": ("unsupported_certificate", 43),
    "pki-self-signed-client": ("unknown_ca", 48),
}
IDENTITIES = sorted(VALIDATED)
MOMENT = {TlsVersion.TLS1_3: "first_read", TlsVersion.TLS1_2: "handshake"}
CLAUSE = {TlsVersion.TLS1_3: "RFC 8446 §4.4.2.4", TlsVersion.TLS1_2: "RFC 5246 §7.4.6"}


def shake(
    lab: Lab,
    mode: ClientAuth,
    version: TlsVersion,
    name: str | None,
    *,
    at: dt.datetime = LAB_NOW,
) -> TlsResult:
    """The model's handshake for the lab identity ``name`` (or no certificate)."""
    presented = lab.identities()[name] if name is not None else None
    return handshake(
        client_auth=mode, version=version, presented=presented, roots=[lab.ca.certificate], at=at
    )


# --------------------------------------------------------------------------------------------------
# The alert table.


def test_alert_numbers_are_the_registered_ones() -> None:
    """RFC 8446 §6: certificate_required is 116, handshake_failure 40, unknown_ca 48, and so on."""
    assert ALERTS["certificate_required"] == 116
    assert ALERTS["handshake_failure"] == 40
    assert ALERTS["bad_certificate"] == 42
    assert ALERTS["unsupported_certificate"] == 43
    assert ALERTS["certificate_expired"] == 45
    assert ALERTS["unknown_ca"] == 48


def test_alert_by_name_carries_name_number_and_moment() -> None:
    """An alert is its name, its number and when the client notices it; an unknown name is refused."""
    alert = alert_by_name("certificate_required", "first_read")
    assert alert == TlsAlert(name="certificate_required", code=116, when="first_read")
    assert alert.to_json() == {"name": "certificate_required", "code": 116, "when": "first_read"}
    assert "at the first read" in str(alert)
    assert "during the handshake" in str(alert_by_name("handshake_failure", "handshake"))
    with pytest.raises(KeyError):
        alert_by_name("no_such_alert", "handshake")


def test_client_auth_modes_say_whether_they_require_and_validate() -> None:
    """Only required modes refuse a missing certificate; the no-CA modes (RFC 8705 §6.2) and none validate
    nothing; only the post-handshake and renegotiation modes ask late."""
    assert {m for m in ClientAuth if m.requires} == {ClientAuth.REQUIRED, ClientAuth.REQUIRED_NO_CA}
    assert {m for m in ClientAuth if not m.validates} == {
        ClientAuth.NONE,
        ClientAuth.OPTIONAL_NO_CA,
        ClientAuth.REQUIRED_NO_CA,
    }
    assert {m for m in ClientAuth if m.late} == {
        ClientAuth.POST_HANDSHAKE,
        ClientAuth.RENEGOTIATION,
    }


# --------------------------------------------------------------------------------------------------
# none: the server never asks.


@pytest.mark.parametrize("version", list(TlsVersion))
@pytest.mark.parametrize("name", [None, *IDENTITIES])
def test_client_auth_none_never_passes_a_certificate(
    lab: Lab, version: TlsVersion, name: str | None
) -> None:
    """Without a CertificateRequest the client sends nothing, whatever it holds; the handshake completes."""
    result = shake(lab, ClientAuth.NONE, version, name)
    assert result.completed
    assert result.alert is None
    assert result.client_cert is None
    (step,) = result.steps
    assert step.passed is None
    assert "no CertificateRequest" in step.detail
    assert step.clause.label == CLAUSE[version]


# --------------------------------------------------------------------------------------------------
# No certificate at all.


@pytest.mark.parametrize("version", list(TlsVersion))
@pytest.mark.parametrize("mode", [ClientAuth.OPTIONAL, ClientAuth.OPTIONAL_NO_CA])
def test_optional_modes_complete_without_a_certificate(
    lab: Lab, mode: ClientAuth, version: TlsVersion
) -> None:
    """Optional client auth: no certificate is fine, the application simply gets none."""
    result = shake(lab, mode, version, None)
    assert result.completed
    assert result.client_cert is None
    assert result.steps[0].passed is None


@pytest.mark.parametrize("mode", [ClientAuth.REQUIRED, ClientAuth.REQUIRED_NO_CA])
def test_required_modes_abort_tls13_with_certificate_required_at_first_read(
    lab: Lab, mode: ClientAuth
) -> None:
    """RFC 8446 §4.4.2.4: TLS 1.3 aborts with certificate_required (116), seen at the client's first read."""
    result = shake(lab, mode, TlsVersion.TLS1_3, None)
    assert not result.completed
    assert result.client_cert is None
    assert result.alert == TlsAlert(name="certificate_required", code=116, when="first_read")
    (step,) = result.steps
    assert step.passed is False
    assert step.clause.label == "RFC 8446 §4.4.2.4"
    assert step.clause.url == "https://www.rfc-editor.org/rfc/rfc8446#section-4.4.2.4"


@pytest.mark.parametrize("mode", [ClientAuth.REQUIRED, ClientAuth.REQUIRED_NO_CA])
def test_required_modes_abort_tls12_with_handshake_failure_during_the_handshake(
    lab: Lab, mode: ClientAuth
) -> None:
    """RFC 5246 §7.4.6: TLS 1.2 aborts with handshake_failure (40) while the handshake runs."""
    result = shake(lab, mode, TlsVersion.TLS1_2, None)
    assert result.alert == TlsAlert(name="handshake_failure", code=40, when="handshake")
    assert result.steps[0].clause.label == "RFC 5246 §7.4.6"


# --------------------------------------------------------------------------------------------------
# Validating modes: every lab identity.


@pytest.mark.parametrize("version", list(TlsVersion))
@pytest.mark.parametrize("mode", [ClientAuth.OPTIONAL, ClientAuth.REQUIRED])
@pytest.mark.parametrize("name", IDENTITIES)
def test_validating_modes_pass_good_certificates_and_alert_on_bad_ones(
    lab: Lab, mode: ClientAuth, version: TlsVersion, name: str
) -> None:
    """A CA-validating server hands a valid certificate's DER to the app and aborts on any other."""
    result = shake(lab, mode, version, name)
    expected = VALIDATED[name]
    if expected is None:
        assert result.completed
        assert result.client_cert == lab.identities()[name].der
        assert result.steps[0].passed is True
        assert "validated against the trusted CA" in result.steps[0].detail
    else:
        alert_name, code = expected
        assert not result.completed
        assert result.client_cert is None
        assert result.alert == TlsAlert(name=alert_name, code=code, when=MOMENT[version])
        assert result.steps[0].passed is False
        assert alert_name in result.steps[0].detail
    assert result.steps[0].clause.label == CLAUSE[version]


# --------------------------------------------------------------------------------------------------
# No-CA modes: any certificate, unverified (RFC 8705 §2.2, §6.2).


@pytest.mark.parametrize("version", list(TlsVersion))
@pytest.mark.parametrize("mode", [ClientAuth.OPTIONAL_NO_CA, ClientAuth.REQUIRED_NO_CA])
@pytest.mark.parametrize("name", IDENTITIES)
def test_no_ca_modes_accept_any_certificate_as_is(
    lab: Lab, mode: ClientAuth, version: TlsVersion, name: str
) -> None:
    """Self-signed, expired, untrusted: a no-CA server accepts it and the app gets the exact DER."""
    result = shake(lab, mode, version, name)
    assert result.completed
    assert result.alert is None
    assert result.client_cert == lab.identities()[name].der
    (step,) = result.steps
    assert step.passed is True
    assert step.clause.label == "RFC 8705 §6.2"
    assert "without chain validation" in step.detail


# --------------------------------------------------------------------------------------------------
# Inputs.


def test_a_bare_certificate_is_modelled_like_an_identity(lab: Lab) -> None:
    """An x509.Certificate (what `mtlslab evaluate --cert` loads) passes or fails like its identity."""
    good = handshake(
        client_auth=ClientAuth.REQUIRED,
        version=TlsVersion.TLS1_3,
        presented=lab.client.certificate,
        roots=[lab.ca.certificate],
    )
    assert good.client_cert == lab.client.der
    bad = handshake(
        client_auth=ClientAuth.REQUIRED,
        version=TlsVersion.TLS1_3,
        presented=lab.untrusted_ca_client.certificate,
        roots=[lab.ca.certificate],
    )
    assert bad.alert is not None
    assert bad.alert.name == "unknown_ca"


def test_validation_time_is_injected(lab: Lab) -> None:
    """The same expired certificate validates at a moment inside its validity and fails after it."""
    inside = shake(
        lab,
        ClientAuth.REQUIRED,
        TlsVersion.TLS1_3,
        "expired-client",
        at=dt.datetime(2025, 3, 1, tzinfo=dt.timezone.utc),
    )
    assert inside.completed
    assert inside.client_cert == lab.expired_client.der
    after = shake(lab, ClientAuth.REQUIRED, TlsVersion.TLS1_3, "expired-client")
    assert after.alert is not None
    assert after.alert.name == "certificate_expired"


def test_a_server_trusting_another_root_refuses_the_lab_client(lab: Lab) -> None:
    """Trust is the roots given: the lab client fails against the rogue CA as its only root."""
    result = handshake(
        client_auth=ClientAuth.OPTIONAL,
        version=TlsVersion.TLS1_2,
        presented=lab.client,
        roots=[lab.rogue_ca.certificate],
    )
    assert result.alert == TlsAlert(name="unknown_ca", code=48, when="handshake")


# --------------------------------------------------------------------------------------------------
# Certificates asked for late, and resumption (issue 14).


def late(
    lab: Lab,
    mode: ClientAuth,
    version: TlsVersion,
    *,
    name: str | None = "client",
    offered: bool = True,
    http2: bool = False,
) -> TlsResult:
    """The model's handshake for a certificate asked for once the request has come."""
    return handshake(
        client_auth=mode,
        version=version,
        presented=lab.identities()[name] if name else None,
        roots=[lab.ca.certificate],
        post_handshake_auth=offered,
        http2=http2,
    )


def test_post_handshake_authentication_gets_the_certificate_in_tls_1_3(lab: Lab) -> None:
    """RFC 8446 §4.6.2: a TLS 1.3 server may ask after the handshake when the client offered it; a bad
    certificate then meets its alert at the client's next read."""
    got = late(lab, ClientAuth.POST_HANDSHAKE, TlsVersion.TLS1_3)
    assert got.client_cert == lab.client.der
    assert got.steps[-1].clause.label == "RFC 8446 §4.6.2"
    assert "RFC 8705 §3 makes no provision" in got.steps[0].detail
    bad = late(lab, ClientAuth.POST_HANDSHAKE, TlsVersion.TLS1_3, name="untrusted-ca-client")
    assert bad.alert == alert_by_name("unknown_ca", "first_read")


@pytest.mark.parametrize(
    ("mode", "version", "offered", "http2", "clause", "why"),
    [
        (
            ClientAuth.POST_HANDSHAKE,
            TlsVersion.TLS1_3,
            False,
            False,
            "RFC 8446 §4.6.2",
            "did not offer",
        ),
        (
            ClientAuth.POST_HANDSHAKE,
            TlsVersion.TLS1_2,
            True,
            False,
            "RFC 8446 §4.6.2",
            "needs TLS 1.3",
        ),
        (
            ClientAuth.POST_HANDSHAKE,
            TlsVersion.TLS1_3,
            True,
            True,
            "RFC 9113 §9.2.3",
            "HTTP/2 forbids",
        ),
        (
            ClientAuth.RENEGOTIATION,
            TlsVersion.TLS1_2,
            True,
            True,
            "RFC 9113 §9.2.1",
            "HTTP/2 forbids",
        ),
        (
            ClientAuth.RENEGOTIATION,
            TlsVersion.TLS1_3,
            True,
            False,
            "RFC 5246 §7.4.1.1",
            "needs TLS 1.2",
        ),
    ],
)
def test_a_certificate_asked_for_late_cannot_always_be_had(
    lab: Lab,
    mode: ClientAuth,
    version: TlsVersion,
    offered: bool,
    http2: bool,
    clause: str,
    why: str,
) -> None:
    """Late asking needs the right TLS version, a client that offered post-handshake auth, and HTTP/1.1:
    HTTP/2 forbids renegotiation (RFC 9113 §9.2.1) and post-handshake auth (§9.2.3). Without them the
    application gets no certificate, and no alert."""
    got = late(lab, mode, version, offered=offered, http2=http2)
    assert (got.alert, got.client_cert) == (None, None)
    assert got.steps[-1].clause.label == clause
    assert why in got.steps[-1].detail


def test_renegotiation_gets_the_certificate_in_tls_1_2(lab: Lab) -> None:
    """RFC 5246 §7.4.1.1: a TLS 1.2 server asks by renegotiating; the certificate is validated as usual."""
    got = late(lab, ClientAuth.RENEGOTIATION, TlsVersion.TLS1_2)
    assert got.client_cert == lab.client.der
    assert late(lab, ClientAuth.RENEGOTIATION, TlsVersion.TLS1_2, name=None).client_cert is None


@pytest.mark.parametrize("version", list(TlsVersion))
def test_a_session_resumed_without_a_certificate_hands_none_over(
    lab: Lab, version: TlsVersion
) -> None:
    """RFC 8446 §2.2: resumption carries the authentication of the session it resumes: a session set up
    without a certificate gives the application none, though the client holds one; a server that requires
    one never made such a session, so the client's handshake there is a full one with its certificate; a new
    handshake presents it (the control)."""
    resumed = handshake(
        client_auth=ClientAuth.OPTIONAL,
        version=version,
        presented=lab.client,
        roots=[lab.ca.certificate],
        resumed_without_certificate=True,
    )
    assert (resumed.alert, resumed.client_cert) == (None, None)
    assert resumed.steps[0].clause.label == "RFC 8446 §2.2"
    required = handshake(
        client_auth=ClientAuth.REQUIRED,
        version=version,
        presented=lab.client,
        roots=[lab.ca.certificate],
        resumed_without_certificate=True,
    )
    assert (required.alert, required.client_cert) == (None, lab.client.der)
    assert "none to resume" in required.steps[0].detail
    fresh = handshake(
        client_auth=ClientAuth.OPTIONAL,
        version=version,
        presented=lab.client,
        roots=[lab.ca.certificate],
    )
    assert fresh.client_cert == lab.client.der


def test_an_alert_at_the_first_read_may_be_lost_and_says_so(lab: Lab) -> None:
    """TLS 1.3 refusals reach the client after it began its request (RFC 8446 §4.4.4): a server that does not
    drain could make it see the connection close instead. The model says so in the trace; TLS 1.2's alert
    during the handshake cannot be lost that way. The alert is OpenSSL's choice, its meaning RFC 8446 §6.2's."""
    tls13 = shake(lab, ClientAuth.REQUIRED, TlsVersion.TLS1_3, None)
    assert tls13.alert is not None
    assert tls13.alert.may_be_lost
    assert "mtlslab's server drains first" in tls13.steps[-1].detail
    assert "RFC 8446 §6.2" in tls13.steps[-1].detail
    assert "OpenSSL chooses it" in tls13.steps[-1].detail
    tls12 = shake(lab, ClientAuth.REQUIRED, TlsVersion.TLS1_2, None)
    assert tls12.alert is not None
    assert not tls12.alert.may_be_lost
    assert "drains" not in tls12.steps[-1].detail
