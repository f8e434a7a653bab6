"""WWW-Authenticate building and parsing: RFC 9110 §11.6.1 syntax, RFC 6750 §3 attribute rules."""

from __future__ import annotations

import contextlib
import pickle
import string
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mtlslab.challenge
from mtlslab.challenge import (
    Challenge,
    ChallengeError,
    bearer,
    challenge,
    check_rfc6750,
    format_challenges,
    parse_www_authenticate,
    sanitize_description,
)
from mtlslab.errors import InputError

AUTHLETE = (
    'Bearer error="invalid_token",error_description="[A065304] The client failed to present a '
    'certificate and the access token is MTLS bound.",error_uri="https://docs.authlete.com/#A065304"'
)
INJECTION = "x\r\nSet-Cookie: a=b"

# One refused character of each class, by RFC 6750 §3 attribute.
REFUSED = {
    "quote": '"',
    "backslash": "\\",
    "DEL": "\x7f",
    "non-ASCII": "é",
    "CR": "\r",
    "LF": "\n",
}
RFC6750_VALUED = ("error", "error_description", "error_uri", "scope")


# --- the module's surface ------------------------------------------------------------------------


def test_all_is_sorted_and_lists_every_public_name() -> None:
    """__all__ is sorted and names exactly the public callables, classes and constants of the module."""
    public = {
        name
        for name, obj in vars(mtlslab.challenge).items()
        if not name.startswith("_")
        and (
            name.isupper()
            or (getattr(obj, "__module__", None) == "mtlslab.challenge" and callable(obj))
        )
    }
    # Sorted as ruff's RUF022 sorts it: constants, then classes, then functions.
    kind = {name: (not name.isupper(), not name[0].isupper(), name) for name in public}
    assert mtlslab.challenge.__all__ == sorted(mtlslab.challenge.__all__, key=kind.__getitem__)
    assert set(mtlslab.challenge.__all__) == public


def test_challenge_error_names_field_and_reason() -> None:
    """ChallengeError is an InputError (a ValueError) whose text is 'field: reason'."""
    error = ChallengeError("scheme", "not a token")
    assert isinstance(error, InputError)
    assert isinstance(error, ValueError)
    assert (error.field, error.reason, str(error)) == (
        "scheme",
        "not a token",
        "scheme: not a token",
    )


def test_challenge_is_a_frozen_value_with_a_compact_repr() -> None:
    """Challenges compare and hash by value, refuse mutation, and show themselves in one line."""
    a = bearer(realm="example", error="invalid_token")
    b = Challenge(scheme="Bearer", params=(("realm", "example"), ("error", "invalid_token")))
    assert a == b
    assert hash(a) == hash(b)
    assert repr(a) == "Challenge('Bearer', realm='example', error='invalid_token')"
    assert repr(Challenge(scheme="Basic", token68="abc=")) == "Challenge('Basic', token68='abc=')"
    with pytest.raises(AttributeError):
        a.scheme = "DPoP"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(a)) == a  # noqa: S301 -- our own object


def test_params_are_stored_as_a_tuple_of_pairs() -> None:
    """A list of pairs is stored as a tuple: the challenge stays hashable and equal to a parse."""
    ch = Challenge(scheme="X", params=[("a", "1")])  # type: ignore[arg-type]
    assert ch.params == (("a", "1"),)
    with pytest.raises(ChallengeError, match="pairs"):
        Challenge(scheme="X", params=(("a",),))  # type: ignore[arg-type]


def test_token68_and_params_are_mutually_exclusive() -> None:
    """A challenge carries a token68 or auth-params; both at once is refused (RFC 9110 §11.6.1)."""
    assert Challenge(scheme="Basic", token68="dXNlcjpwYXNz").token68 == "dXNlcjpwYXNz"
    with pytest.raises(ChallengeError) as excinfo:
        Challenge(scheme="Basic", token68="abc", params=(("realm", "x"),))
    assert excinfo.value.field == "token68"


def test_get_and_attribute_properties_ignore_case() -> None:
    """Parameter lookup ignores case (RFC 9110 §11.2); the RFC 6750 attributes are properties."""
    (ch,) = parse_www_authenticate(
        'Bearer Realm="r", SCOPE="a b", Error="invalid_token", '
        'error_Description="d", ERROR_URI="https://e.example/"'
    )
    assert (ch.realm, ch.scope, ch.error, ch.error_description, ch.error_uri) == (
        "r",
        "a b",
        "invalid_token",
        "d",
        "https://e.example/",
    )
    assert ch.get("rEaLm") == "r"
    assert ch.get("missing") is None
    assert bearer(realm="r").error is None


# --- RFC 6750 §3 examples ------------------------------------------------------------------------


def test_rfc6750_example_realm_only() -> None:
    """RFC 6750 §3: `Bearer realm="example"` is built and parsed back."""
    assert bearer(realm="example").to_header() == 'Bearer realm="example"'
    assert parse_www_authenticate('Bearer realm="example"') == (bearer(realm="example"),)


def test_rfc6750_example_expired_token() -> None:
    """RFC 6750 §3: realm, error and error_description, in that order, separated by ', '."""
    header = (
        'Bearer realm="example", error="invalid_token", '
        'error_description="The access token expired"'
    )
    built = bearer(
        realm="example", error="invalid_token", error_description="The access token expired"
    )
    assert built.to_header() == header
    assert parse_www_authenticate(header) == (built,)
    assert check_rfc6750(built) == []


def test_bearer_builder_orders_attributes_as_rfc6750_lists_them() -> None:
    """bearer() emits realm, scope, error, error_description, error_uri, then the extra params."""
    ch = bearer(
        error_uri="https://e.example/e",
        error_description="d",
        error="insufficient_scope",
        scope="read write",
        realm="r",
        extra=(("resource_metadata", "https://rs.example/.well-known/oauth-protected-resource"),),
    )
    assert [name for name, _ in ch.params] == [
        "realm",
        "scope",
        "error",
        "error_description",
        "error_uri",
        "resource_metadata",
    ]


def test_another_scheme_takes_the_same_attributes_in_the_same_order() -> None:
    """DPoP's challenge (RFC 9449 §7.1) uses RFC 6750's attributes: bearer(scheme="DPoP") orders them alike."""
    ch = bearer(scheme="DPoP", error="invalid_dpop_proof", realm="r", extra=(("algs", "ES256"),))
    assert ch.to_header() == 'DPoP realm="r", error="invalid_dpop_proof", algs="ES256"'


def test_bare_bearer_is_emitted_but_reported() -> None:
    """A bare `Bearer` (sent by real servers) is emitted, and check_rfc6750 reports the §3 MUST."""
    assert bearer().to_header() == "Bearer"
    assert check_rfc6750(bearer()) == [
        "params: a Bearer challenge MUST have one or more auth-param values (RFC 6750 §3)"
    ]
    assert check_rfc6750(bearer(realm="example")) == []


def test_bearer_and_dpop_take_no_token68() -> None:
    """Bearer and DPoP carry auth-params: a token68 is refused on emit and reported on parse."""
    assert Challenge(scheme="Negotiate", token68="abc==").to_header() == "Negotiate abc=="
    for scheme in ("Bearer", "dpop"):
        with pytest.raises(ChallengeError, match="not a token68"):
            Challenge(scheme=scheme, token68="abc").to_header()
    (parsed,) = parse_www_authenticate("Bearer abc")
    assert parsed.token68 == "abc"
    assert check_rfc6750(parsed) == [
        "token68: Bearer carries auth-params, not a token68 (RFC 6750 §3; RFC 9449 §7.1)"
    ]


# --- several challenges, separators, token68 -----------------------------------------------------


def test_rfc9449_bearer_and_dpop_in_one_field_value() -> None:
    """RFC 9110 §11.6.1 / RFC 9449 §7.2: two challenges in one value are told apart and rebuilt."""
    header = 'Bearer realm="api", error="invalid_token", DPoP algs="ES256 PS256"'
    expected = (
        bearer(realm="api", error="invalid_token"),
        challenge("DPoP", ("algs", "ES256 PS256")),
    )
    assert parse_www_authenticate(header) == expected
    assert format_challenges(expected) == header


def test_format_challenges_needs_at_least_one() -> None:
    """A WWW-Authenticate value holds at least one challenge; an empty list is refused."""
    assert format_challenges([bearer(realm="a")]) == 'Bearer realm="a"'
    with pytest.raises(ChallengeError) as excinfo:
        format_challenges([])
    assert excinfo.value.field == "challenges"


def test_authlete_no_space_form_parses_to_three_params() -> None:
    """Authlete's `,`-only separator parses to error, error_description and error_uri."""
    (ch,) = parse_www_authenticate(AUTHLETE)
    assert [name for name, _ in ch.params] == ["error", "error_description", "error_uri"]
    assert ch.error_uri == "https://docs.authlete.com/#A065304"
    assert check_rfc6750(ch) == []


def test_separator_comma_reproduces_authlete_byte_for_byte() -> None:
    """separator=',' emits exactly the Authlete form; any other separator is refused."""
    (ch,) = parse_www_authenticate(AUTHLETE)
    assert ch.to_header(separator=",") == AUTHLETE
    assert format_challenges([ch, ch], separator=",") == f"{AUTHLETE}, {AUTHLETE}"
    for separator in (";", " ", ",\r\n", ",  "):
        with pytest.raises(ChallengeError) as excinfo:
            ch.to_header(separator=separator)
        assert excinfo.value.field == "separator"


@pytest.mark.parametrize(
    ("header", "scheme", "token68"),
    [
        ("Basic dXNlcjpwYXNz", "Basic", "dXNlcjpwYXNz"),
        ("Negotiate abc==", "Negotiate", "abc=="),
        ("Negotiate abc==  ", "Negotiate", "abc=="),
        ("Newauth a-._~+/9=", "Newauth", "a-._~+/9="),
        ("Newauth realm=", "Newauth", "realm="),
    ],
)
def test_token68_challenges(header: str, scheme: str, token68: str) -> None:
    """A scheme followed by a token68 (RFC 9110 §11.2) parses to that token68 and no params."""
    (ch,) = parse_www_authenticate(header)
    assert (ch.scheme, ch.token68, ch.params) == (scheme, token68, ())
    assert ch.to_header() == header.rstrip()


def test_token68_next_to_param_challenges() -> None:
    """A token68 challenge ends at the comma; what follows is the next challenge."""
    assert parse_www_authenticate('Negotiate abc==, Bearer realm="x", Basic dXNl') == (
        Challenge(scheme="Negotiate", token68="abc=="),
        bearer(realm="x"),
        Challenge(scheme="Basic", token68="dXNl"),
    )


def test_malformed_token68_is_refused_on_emit() -> None:
    """A token68 holds base64-ish characters and trailing '=' only."""
    for bad in ("", "a=b", "a b", "a\r\n"):
        with pytest.raises(ChallengeError) as excinfo:
            Challenge(scheme="Basic", token68=bad).to_header()
        assert excinfo.value.field == "token68"


# --- quoted-strings, BWS, list elements ----------------------------------------------------------


def test_escaped_quotes_and_backslashes_in_values() -> None:
    """quoted-pair escapes are undone on parse and applied on emit (RFC 9110 §5.6.4)."""
    header = r'Bearer realm="say \"hi\" to C:\\dir", x="\a\b"'
    (ch,) = parse_www_authenticate(header)
    assert ch.realm == 'say "hi" to C:\\dir'
    assert ch.get("x") == "ab"
    assert ch.to_header() == r'Bearer realm="say \"hi\" to C:\\dir", x="ab"'


def test_bad_whitespace_around_equals_and_token_values() -> None:
    """BWS around '=' and token (unquoted) values are read (RFC 9110 §11.2)."""
    (ch,) = parse_www_authenticate('Bearer realm = "x" , error= invalid_token,scope ="a b"')
    assert ch.params == (("realm", "x"), ("error", "invalid_token"), ("scope", "a b"))
    (tab,) = parse_www_authenticate('Bearer\trealm\t=\t"x"')
    assert tab.params == (("realm", "x"),)


def test_empty_list_elements_are_tolerated() -> None:
    """Empty list elements are skipped (RFC 9110 §5.6.1); an empty value holds no challenge."""
    assert parse_www_authenticate(' , Bearer , realm="x",, error="y" , ,DPoP,') == (
        bearer(realm="x", error="y"),
        Challenge(scheme="DPoP"),
    )
    assert parse_www_authenticate("") == ()
    assert parse_www_authenticate(" ,\t, ") == ()


def test_scheme_and_names_keep_their_case() -> None:
    """Parsing keeps the scheme's and the names' spelling; comparison is the caller's business."""
    (ch,) = parse_www_authenticate('bEARER ReAlM="x"')
    assert (ch.scheme, ch.params) == ("bEARER", (("ReAlM", "x"),))


def test_parse_is_lenient_about_rfc6750_but_reports_it() -> None:
    """Duplicates, quotes and non-ASCII from real servers are read; check_rfc6750 lists them."""
    (ch,) = parse_www_authenticate(
        'Bearer error="invalid_token", error_description="bad \\"quote\\" in café", Error="x"'
    )
    assert ch.error_description == 'bad "quote" in café'
    assert check_rfc6750(ch) == [
        "error_description: character U+0022 '\"' is not allowed by RFC 6750 §3 "
        "(error_description is %x20-21 / %x23-5B / %x5D-7E)",
        "Error: repeats 'error'; each may occur once (RFC 9110 §11.2; RFC 6750 §3)",
    ]


@pytest.mark.parametrize(
    ("header", "position", "words"),
    [
        ('Bearer realm="example', 13, "unterminated quoted-string"),
        ('Bearer realm="ends in \\', 13, "unterminated quoted-string"),
        ('realm="example"', 0, "before any auth-scheme"),
        ('="x"', 0, "expected auth-scheme"),
        ('Bea@rer realm="x"', 3, "U+0040"),
        ('Bearer realm="x" error="y"', 17, "expected ','"),
        ('Bearer realm "x"', 13, "expected '='"),
        ('Bearer a="1", realm=', 20, "needs a token or quoted-string"),
        ('Bearer realm=@"x"', 13, "needs a token or quoted-string"),
        ("Basic dXNl, realm=x", 12, "after a token68"),
        ('Bearer "x"', 7, "expected token68 or auth-param"),
        ('Bearer x="a\x01b"', 11, "U+0001"),
        ('Bearer x="a\\\x01b"', 12, "quoted-pair"),
        ('Bearer x="a\x7fb"', 11, "U+007F"),
        ('Bearer x="\r\n"', 10, "U+000D"),
        ("Bearer x=y\x00", 10, "U+0000"),
        ("Bearer x=y\nSet-Cookie: a=b", 10, "U+000A"),
        ("Bearer x=é", 9, "U+00E9"),
    ],
)
def test_malformed_values_raise_with_position_and_reason(
    header: str, position: int, words: str
) -> None:
    """Malformed input raises ChallengeError(field='header') saying where and what went wrong."""
    with pytest.raises(ChallengeError) as excinfo:
        parse_www_authenticate(header)
    assert excinfo.value.field == "header"
    assert excinfo.value.reason.startswith(f"position {position}: ")
    assert words in excinfo.value.reason


def test_obs_text_is_read_inside_quoted_strings_only() -> None:
    """Non-ASCII is accepted as obs-text in a quoted-string (RFC 9110 §5.6.4), never in a token."""
    (ch,) = parse_www_authenticate('Bearer realm="Zürich"')
    assert ch.realm == "Zürich"
    with pytest.raises(ChallengeError, match="non-ASCII"):
        ch.to_header()


# --- RFC 6750 §3 character rules on emit ---------------------------------------------------------


@pytest.mark.parametrize("attribute", RFC6750_VALUED)
@pytest.mark.parametrize("kind", REFUSED)
def test_refused_characters_in_rfc6750_attributes(attribute: str, kind: str) -> None:
    """Quote, backslash, DEL, non-ASCII, CR and LF are refused in each valued RFC 6750 attribute."""
    value = f"a{REFUSED[kind]}b"
    with pytest.raises(ChallengeError) as excinfo:
        bearer(**{attribute: value})  # type: ignore[arg-type]
    assert excinfo.value.field == attribute
    assert f"U+{ord(REFUSED[kind]):04X}" in excinfo.value.reason


@pytest.mark.parametrize("attribute", RFC6750_VALUED)
def test_the_rules_apply_to_any_scheme_and_any_name_case(attribute: str) -> None:
    """The §3 character rules follow the attribute name, whatever the scheme and the name's case."""
    for scheme in ("Bearer", "DPoP", "MTLS"):
        with pytest.raises(ChallengeError):
            challenge(scheme, (attribute.upper(), 'a"b'))
        with pytest.raises(ChallengeError):
            Challenge(scheme=scheme, params=((attribute, 'a"b'),)).to_header()


def test_space_is_allowed_in_error_and_description_but_not_in_error_uri() -> None:
    """error and error_description allow %x20; error_uri does not."""
    ch = bearer(error="invalid token", error_description="The access token expired")
    assert check_rfc6750(ch) == []
    with pytest.raises(ChallengeError, match="U\\+0020"):
        bearer(error_uri="https://e.example/a b")


def test_printable_ascii_other_than_quote_and_backslash_is_allowed_in_description() -> None:
    """Every character of %x20-21 / %x23-5B / %x5D-7E is accepted in error_description."""
    allowed = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in '"\\')
    assert bearer(error_description=allowed).error_description == allowed


def test_error_code_cannot_be_empty() -> None:
    """An error attribute names an error code; the empty string is refused."""
    assert bearer(error="invalid_request").error == "invalid_request"
    with pytest.raises(ChallengeError, match="empty"):
        bearer(error="")


@pytest.mark.parametrize("good", ["openid", "read write", "urn:x:y profile!"])
def test_scope_accepts_tokens_joined_by_single_spaces(good: str) -> None:
    """scope is scope-tokens of %x21 / %x23-5B / %x5D-7E separated by single spaces."""
    assert bearer(scope=good).scope == good


@pytest.mark.parametrize("bad", ["", " read", "read ", "read  write", "read\twrite"])
def test_scope_refuses_empty_tokens_and_other_whitespace(bad: str) -> None:
    """An empty scope, leading, trailing or doubled spaces and tabs are refused."""
    with pytest.raises(ChallengeError) as excinfo:
        bearer(scope=bad)
    assert excinfo.value.field == "scope"


@pytest.mark.parametrize(
    "good",
    [
        "https://docs.authlete.com/#A065304",
        "/errors/x?y=1",
        "urn:ietf:rfc:6750",
        "https://e.example/%7E",
    ],
)
def test_error_uri_accepts_uri_references(good: str) -> None:
    """error_uri takes a URI-reference (RFC 6750 §3, RFC 3986)."""
    assert bearer(error_uri=good).error_uri == good


@pytest.mark.parametrize(
    "bad", ["https://e.example/{x}", "https://e.example/a|b", "https://e.example/%zz", "%4"]
)
def test_error_uri_refuses_what_rfc3986_refuses(bad: str) -> None:
    """Characters RFC 3986 excludes and broken percent-encoding are refused in error_uri."""
    with pytest.raises(ChallengeError) as excinfo:
        bearer(error_uri=bad)
    assert excinfo.value.field == "error_uri"
    assert "RFC 3986" in excinfo.value.reason


def test_realm_and_other_params_allow_quote_and_backslash() -> None:
    """Outside the RFC 6750 valued attributes, quote and backslash are escaped, not refused."""
    assert bearer(realm='a"b\\c').to_header() == 'Bearer realm="a\\"b\\\\c"'
    assert challenge("MTLS", ("hint", '"x"')).to_header() == 'MTLS hint="\\"x\\""'


# --- repetition ----------------------------------------------------------------------------------


def test_duplicate_attribute_refused_on_emit_and_reported_on_parse() -> None:
    """An attribute given twice is refused by to_header and listed by check_rfc6750."""
    with pytest.raises(ChallengeError, match="repeats 'error'"):
        bearer(error="invalid_token", extra=(("error", "invalid_request"),))
    (parsed,) = parse_www_authenticate('Bearer error="invalid_token", error="invalid_request"')
    assert check_rfc6750(parsed) == [
        "error: repeats 'error'; each may occur once (RFC 9110 §11.2; RFC 6750 §3)"
    ]


def test_case_insensitive_duplicate_is_a_duplicate() -> None:
    """`Error` and `error` are the same parameter name (RFC 9110 §11.2)."""
    with pytest.raises(ChallengeError) as excinfo:
        challenge("Bearer", ("Error", "invalid_token"), ("error", "invalid_request"))
    assert excinfo.value.field == "error"
    (parsed,) = parse_www_authenticate('Bearer Error="invalid_token", error="invalid_request"')
    assert len(check_rfc6750(parsed)) == 1


def test_any_repeated_parameter_name_is_refused_on_emit() -> None:
    """Each parameter name occurs once per challenge, any scheme, any name (RFC 9110 §11.2)."""
    assert challenge("DPoP", ("algs", "ES256"), ("realm", "x")).get("algs") == "ES256"
    with pytest.raises(ChallengeError):
        challenge("DPoP", ("algs", "ES256"), ("ALGS", "PS256"))


# --- header injection and syntax on emit ---------------------------------------------------------


@pytest.mark.parametrize("scheme", ["Bearer", "DPoP", "MTLS", "Basic"])
def test_header_injection_in_a_value_is_refused_for_any_scheme(scheme: str) -> None:
    """CR, LF, NUL and other controls never reach the output, whatever the scheme or name."""
    for value in (INJECTION, "a\x00b", "a\tb", "a\x1bb"):
        with pytest.raises(ChallengeError, match="control"):
            challenge(scheme, ("realm", value))
        with pytest.raises(ChallengeError, match="control"):
            Challenge(scheme=scheme, params=(("x", value),)).to_header()


def test_header_injection_in_scheme_or_name_is_refused() -> None:
    """A scheme or a parameter name must be a token, so CR/LF there is refused too."""
    with pytest.raises(ChallengeError) as excinfo:
        challenge("Bearer\r\nSet-Cookie: a=b", ("realm", "x"))
    assert excinfo.value.field == "scheme"
    with pytest.raises(ChallengeError) as excinfo:
        challenge("Bearer", ("realm\r\nSet-Cookie: a", "b"))
    assert excinfo.value.field == "params"


def test_header_injection_attempt_is_refused_by_the_parser() -> None:
    """A field value carrying CR or LF is refused, not split (RFC 9110 §5.5)."""
    with pytest.raises(ChallengeError, match="U\\+000D"):
        parse_www_authenticate(f'Bearer realm="{INJECTION}"')


@pytest.mark.parametrize("scheme", ["", "Bearer realm", "Bé", "a,b", 'x"'])
def test_scheme_must_be_a_token(scheme: str) -> None:
    """The auth-scheme is a token (RFC 9110 §11.1); anything else is refused."""
    with pytest.raises(ChallengeError) as excinfo:
        challenge(scheme)
    assert excinfo.value.field == "scheme"
    assert challenge("Newauth").to_header() == "Newauth"


@pytest.mark.parametrize("name", ["", "a b", "a=b", "é", 'x"'])
def test_param_names_must_be_tokens(name: str) -> None:
    """Parameter names are tokens (RFC 9110 §11.2)."""
    with pytest.raises(ChallengeError):
        challenge("Bearer", (name, "v"))


def test_non_ascii_is_never_emitted() -> None:
    """A non-ASCII character is refused in any value, realm included."""
    with pytest.raises(ChallengeError, match="non-ASCII") as excinfo:
        bearer(realm="Zürich")
    assert excinfo.value.field == "realm"


# --- sanitize_description ------------------------------------------------------------------------


def test_sanitize_description_replaces_non_ascii_and_quotes() -> None:
    """Non-ASCII, quote and backslash become '?', and the result is a valid error_description."""
    text = 'Zertifikat für "client" fehlt \\ ✓'
    clean = sanitize_description(text)
    assert clean == "Zertifikat f?r ?client? fehlt ? ?"
    assert check_rfc6750(bearer(error="invalid_token", error_description=clean)) == []


def test_sanitize_description_collapses_whitespace() -> None:
    """Runs of whitespace, newlines and tabs included, become one space; the ends are stripped."""
    assert sanitize_description("  a\r\n\tb   c \u00a0 ") == "a b c"
    assert sanitize_description(" \n ") == ""


def test_sanitize_description_truncates_within_the_limit() -> None:
    """A cut text ends in '...' and is no longer than max_length; a short one is left alone."""
    assert sanitize_description("x" * 200) == "x" * 200
    cut = sanitize_description("word " * 100, max_length=20)
    assert cut == "word word word wo..."
    assert len(cut) <= 20
    assert sanitize_description("abcdef", max_length=3) == "..."
    with pytest.raises(ChallengeError):
        sanitize_description("abc", max_length=2)


# --- properties ----------------------------------------------------------------------------------

TCHARS = "!#$%&'*+-.^_`|~" + string.digits + string.ascii_letters
NQCHARS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"\\')
URI_CHARS = string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+,;="
RFC6750_NAMES = {"realm", "scope", "error", "error_description", "error_uri"}

tokens = st.text(alphabet=TCHARS, min_size=1, max_size=10)
printable = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=25)
token68s = st.from_regex(r"[A-Za-z0-9\-._~+/]{1,12}={0,2}", fullmatch=True)
attribute_values = {
    "realm": printable,
    "scope": st.lists(st.text(NQCHARS, min_size=1, max_size=8), min_size=1, max_size=3).map(
        " ".join
    ),
    "error": st.text(NQCHARS + " ", min_size=1, max_size=20),
    "error_description": st.text(NQCHARS + " ", max_size=40),
    "error_uri": st.text(URI_CHARS, max_size=30),
}


@st.composite
def valid_challenges(draw: st.DrawFn) -> Challenge:
    """Challenges to_header accepts: valid RFC 6750 attribute values, printable other params."""
    scheme = draw(st.one_of(st.sampled_from(["Bearer", "DPoP", "MTLS", "bearer"]), tokens))
    if scheme.lower() not in {"bearer", "dpop"} and draw(st.booleans()):
        return Challenge(scheme=scheme, token68=draw(token68s))
    chosen = draw(st.lists(st.sampled_from(sorted(RFC6750_NAMES)), unique=True, max_size=5))
    params = [(name, draw(attribute_values[name])) for name in chosen]
    others = draw(
        st.lists(
            tokens.filter(lambda n: n.lower() not in RFC6750_NAMES),
            unique_by=str.lower,
            max_size=3,
        )
    )
    params += [(name, draw(printable)) for name in others]
    return Challenge(scheme=scheme, params=tuple(draw(st.permutations(params))))


header_like = st.text(alphabet=' \t,="\\=aBz09/+~é\x01\x7f\r\n\x00;', max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=60), header_like))
def test_parse_raises_only_challenge_error(value: str) -> None:
    """Any text parses to challenges with token schemes and names, or raises ChallengeError."""
    try:
        parsed = parse_www_authenticate(value)
    except ChallengeError as error:
        field = error.field
        parsed = ()
    else:
        field = "header"
    assert field == "header"
    for ch in parsed:
        assert ch.scheme
        assert all(name for name, _ in ch.params)
        assert not any(c in value for c in "\r\n\x00")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=60), header_like))
def test_whatever_parses_is_refused_or_reemitted_unchanged(value: str) -> None:
    """A parsed challenge is refused by to_header or survives another emit and parse unchanged."""
    try:
        parsed = parse_www_authenticate(value)
    except ChallengeError:
        return
    for ch in parsed:
        try:
            header = ch.to_header()
        except ChallengeError:
            continue
        assert parse_www_authenticate(header) == (ch,)


@settings(max_examples=300, deadline=None)
@given(valid_challenges(), st.sampled_from([", ", ","]))
def test_valid_challenges_round_trip(ch: Challenge, separator: str) -> None:
    """parse(c.to_header()) == (c,) for every challenge that to_header accepts."""
    header = ch.to_header(separator=separator)
    assert parse_www_authenticate(header) == (ch,)
    if ch.scheme.lower() != "bearer" or ch.params:
        assert check_rfc6750(ch) == []


@settings(max_examples=300, deadline=None)
@given(st.lists(valid_challenges(), min_size=1, max_size=4), st.sampled_from([", ", ","]))
def test_several_challenges_round_trip(challenges: list[Challenge], separator: str) -> None:
    """format_challenges then parse gives back the same challenges in the same order."""
    header = format_challenges(challenges, separator=separator)
    assert parse_www_authenticate(header) == tuple(challenges)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.text(), st.text(alphabet=st.characters(max_codepoint=0x7F))),
    st.integers(min_value=3, max_value=300),
)
def test_sanitized_description_always_obeys_rfc6750(text: str, max_length: int) -> None:
    """sanitize_description always yields a valid error_description within max_length."""
    clean = sanitize_description(text, max_length=max_length)
    assert len(clean) <= max_length
    ch = bearer(error="invalid_token", error_description=clean)
    assert check_rfc6750(ch) == []
    assert parse_www_authenticate(ch.to_header()) == (ch,)


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=10), st.lists(st.tuples(st.text(max_size=8), st.text(max_size=12)), max_size=3)
)
def test_arbitrary_challenge_is_refused_or_round_trips(
    scheme: str, params: list[tuple[str, str]]
) -> None:
    """For any Challenge, to_header either raises ChallengeError or emits what parses back to it."""
    ch = Challenge(scheme=scheme, params=tuple(params))
    try:
        header = ch.to_header()
    except ChallengeError:
        return
    assert parse_www_authenticate(header) == (ch,)


@pytest.mark.parametrize(
    "value",
    [
        "a" * 200_000,
        "Bearer " + 'x="y", ' * 30_000,
        ", " * 100_000,
        'Bearer x="' + '\\"' * 100_000,
        "Bearer " + "a" * 100_000 + "=" * 100_000 + "b",
        "A, " * 50_000,
        "Bearer " + "x =" * 50_000,
    ],
)
def test_parse_takes_linear_time(value: str) -> None:
    """Long hostile inputs are parsed or refused quickly (no backtracking, no rescans)."""
    start = time.perf_counter()
    with contextlib.suppress(ChallengeError):
        parse_www_authenticate(value)
    assert time.perf_counter() - start < 5.0
