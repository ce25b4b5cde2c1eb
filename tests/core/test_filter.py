"""Filters (RFC 7644 §3.4.2.2) and PATCH paths (RFC 7644 §3.5.2): parse, check, evaluate."""

from __future__ import annotations

import random
from typing import Any

import pytest

from scim_desktop.core.errors import InvalidFilter, InvalidPath
from scim_desktop.core.filter import (
    MAX_FILTER_CLAUSES,
    MAX_FILTER_DEPTH,
    MAX_FILTER_LENGTH,
    And,
    Compare,
    Not,
    Or,
    PatchPath,
    Present,
    ValuePath,
    check,
    compile_filter,
    evaluate,
    evaluate_element,
    evaluate_steps,
    filter_size,
    parse,
    parse_path,
)
from scim_desktop.core.listing import SORT_RUN, parse_search_request, run_steps, sort_key_fn
from scim_desktop.core.listing import _sorted_steps as sorted_steps
from scim_desktop.core.paths import AttrPath
from scim_desktop.core.schemas import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_TYPE,
    USER_SCHEMA,
    USER_TYPE,
)

ENT = ENTERPRISE_USER_SCHEMA


def p(name: str, sub: str | None = None, urn: str | None = None) -> AttrPath:
    return AttrPath(urn, name, sub)


# --- sample data: each user is built to trip a specific wrong implementation ----------------
BJENSEN = {
    "schemas": [USER_SCHEMA, ENT],
    "id": "2819c223-7f76-453a-919d-413861904646",
    "externalId": "bjensen-ext",
    "userName": "bjensen",
    "name": {"familyName": "Jensen", "givenName": "Barbara"},
    "displayName": "Babs Jensen",
    "title": "Tour Guide",
    "userType": "Employee",
    "active": True,
    "loginCount": 5,
    "emails": [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ],
    "ims": [{"value": "babs@foo.com", "type": "xmpp"}],
    "meta": {
        "resourceType": "User",
        "created": "2010-01-23T04:56:22Z",
        "lastModified": "2011-05-13T04:42:34Z",
    },
    ENT: {"employeeNumber": "701984", "manager": {"value": "26118915", "displayName": "J S"}},
}
POMALLEY = {
    "schemas": [USER_SCHEMA],
    "id": "c3a1",
    "userName": "pomalley",
    "name": {"familyName": "O'Malley"},
    "userType": "Intern",  # no title at all
    "active": False,
    "loginCount": 12,
    "emails": [{"value": "pat@example.org", "type": "work"}],
    # type and value of the ims filter match, but in different elements.
    "ims": [{"value": "pat@foo.com", "type": "aim"}, {"value": "pat@bar.com", "type": "xmpp"}],
    # The same instant as BJENSEN's, written with an offset (greater as a plain string).
    "meta": {"created": "2011-05-13T04:42:33.999Z", "lastModified": "2011-05-13T06:42:34+02:00"},
}
JSMITH = {
    "schemas": [USER_SCHEMA],
    "id": "9f01",
    "userName": "jsmith",
    "name": {"familyName": "Smith"},
    "title": "",  # empty is not present
    "userType": "Employee",
    "active": True,
    "loginCount": 1,
    # The work address is not at example.com; the home one is.
    "emails": [
        {"value": "jsmith@other.net", "type": "work"},
        {"value": "js@example.com", "type": "home"},
    ],
    "ims": [{"type": "xmpp", "value": "js@bar.com"}],
    "meta": {"lastModified": "2012-01-01T00:00:00.123456789Z"},  # 9 fraction digits
}
JANE = {
    "schemas": [USER_SCHEMA],
    "id": "00u1abcd",
    "userName": "Jane@Example.COM",  # Okta filters with "jane@example.com"
    "name": {"givenName": None, "familyName": ""},  # nothing present
    "title": "CTO",
    "userType": "Contractor",
    "active": True,
    "loginCount": True,  # a boolean must not equal 1
    "emails": [],
    "ims": [{"type": "XMPP", "value": "jane@FOO.com"}],
    "meta": {"lastModified": "2010-12-31T23:59:59-01:00"},  # 2011-01-01T00:59:59Z
}
USERS = {
    "bjensen": BJENSEN,
    "pomalley": POMALLEY,
    "jsmith": JSMITH,
    "jane": JANE,
}


def matching(text: str) -> set[str]:
    node = parse(text)
    check(node, USER_TYPE)
    return {key for key, user in USERS.items() if evaluate(node, user, USER_TYPE)}


# --- every example filter of RFC 7644 §3.4.2.2 -------------------------------------------------
RFC_EXAMPLES = [
    ('userName Eq "john"', set()),
    ('userName eq "bjensen"', {"bjensen"}),
    ('name.familyName co "O\'Malley"', {"pomalley"}),
    ('userName sw "J"', {"jsmith", "jane"}),
    ('urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"', {"jsmith", "jane"}),
    ("title pr", {"bjensen", "jane"}),
    ('meta.lastModified gt "2011-05-13T04:42:34Z"', {"jsmith"}),
    ('meta.lastModified ge "2011-05-13T04:42:34Z"', {"bjensen", "pomalley", "jsmith"}),
    ('meta.lastModified lt "2011-05-13T04:42:34Z"', {"jane"}),
    ('meta.lastModified le "2011-05-13T04:42:34Z"', {"bjensen", "pomalley", "jane"}),
    ('title pr and userType eq "Employee"', {"bjensen"}),
    ('title pr or userType eq "Intern"', {"bjensen", "jane", "pomalley"}),
    ('schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"', {"bjensen"}),
    (
        'userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")',
        {"bjensen", "jsmith"},
    ),
    (
        'userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")',
        {"jane"},
    ),
    ('userType eq "Employee" and (emails.type eq "work")', {"bjensen", "jsmith"}),
    (
        'userType eq "Employee" and emails[type eq "work" and value co "@example.com"]',
        {"bjensen"},
    ),
    (
        'emails[type eq "work" and value co "@example.com"] or '
        'ims[type eq "xmpp" and value co "@foo.com"]',
        {"bjensen", "jane"},
    ),
]


@pytest.mark.parametrize(("text", "expected"), RFC_EXAMPLES, ids=[t for t, _ in RFC_EXAMPLES])
def test_rfc_7644_example_filters(text: str, expected: set[str]) -> None:
    assert matching(text) == expected


def test_rfc_examples_parse_to_the_expected_trees() -> None:
    assert parse('userName Eq "john"') == Compare(p("userName"), "eq", "john")
    assert parse('urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"') == Compare(
        p("userName", urn=USER_SCHEMA), "sw", "J"
    )
    assert parse("title pr") == Present(p("title"))
    assert parse('userType ne "Employee" and not (emails co "x" or emails.value co "y")') == And(
        Compare(p("userType"), "ne", "Employee"),
        Not(Or(Compare(p("emails"), "co", "x"), Compare(p("emails", "value"), "co", "y"))),
    )
    assert parse(
        'emails[type eq "work" and value co "@example.com"] or '
        'ims[type eq "xmpp" and value co "@foo.com"]'
    ) == Or(
        ValuePath(
            p("emails"),
            And(Compare(p("type"), "eq", "work"), Compare(p("value"), "co", "@example.com")),
        ),
        ValuePath(
            p("ims"), And(Compare(p("type"), "eq", "xmpp"), Compare(p("value"), "co", "@foo.com"))
        ),
    )


# --- evaluation semantics ----------------------------------------------------------------------
EVALUATION = [
    # Okta's existence check: userName is caseExact false (RFC 7643 §4.1.1).
    ('userName eq "jane@example.com"', {"jane"}),
    ('userName eq "JANE@EXAMPLE.COM"', {"jane"}),
    ('USERNAME eq "BJensen"', {"bjensen"}),
    ('Name.FamilyName eq "jensen"', {"bjensen"}),
    ('urn:ietf:params:scim:schemas:core:2.0:User:name.familyName eq "JENSEN"', {"bjensen"}),
    # id and externalId are caseExact.
    ('id eq "2819c223-7f76-453a-919d-413861904646"', {"bjensen"}),
    ('id eq "2819C223-7F76-453A-919D-413861904646"', set()),
    ('externalId eq "BJENSEN-EXT"', set()),
    ('meta.resourceType eq "user"', set()),
    ("active eq true", {"bjensen", "jsmith", "jane"}),
    ("active eq FALSE", {"pomalley"}),
    ("active ne true", {"pomalley"}),
    ("active eq 1", set()),
    ('active eq "true"', set()),
    # Numbers (unknown attribute: types come from the data); True is not 1.
    ("loginCount eq 1", {"jsmith"}),
    ("loginCount eq 5.0", {"bjensen"}),
    ("loginCount gt 4", {"bjensen", "pomalley"}),
    ("loginCount ge -1e1", {"bjensen", "pomalley", "jsmith"}),
    ('loginCount eq "5"', set()),
    ("loginCount eq true", {"jane"}),
    # null and pr: "", [] and all-null complex values are not present.
    ("title eq null", {"pomalley", "jsmith"}),
    ("title ne null", {"bjensen", "jane"}),
    ("name pr", {"bjensen", "pomalley", "jsmith"}),
    ("name.givenName pr", {"bjensen"}),
    ("emails pr", {"bjensen", "pomalley", "jsmith"}),
    ("emails.primary pr", {"bjensen"}),
    ("nonexistent pr", set()),
    # Multi-valued: any value; complex without a sub-attribute compares "value".
    ('emails eq "JS@example.com"', {"jsmith"}),
    ('emails.value ew ".ORG"', {"bjensen", "pomalley"}),
    ('emails.type eq "home"', {"bjensen", "jsmith"}),
    # ne on multi-valued: no value equals; a missing attribute is "not equal".
    ('emails.type ne "work"', {"jane"}),
    ('nickName ne "x"', {"bjensen", "pomalley", "jsmith", "jane"}),
    ('nickName eq "x"', set()),
    # Value filters hold for one element, not across elements.
    ('emails[type eq "home" and value co "example.com"]', {"jsmith"}),
    ('emails[type eq "work" and value co "example.com"]', {"bjensen"}),
    ('emails[not (type eq "work")]', {"bjensen", "jsmith"}),
    ('ims[type eq "xmpp" and (value ew "bar.com" or value ew "nowhere")]', {"pomalley", "jsmith"}),
    ("emails[primary eq true]", {"bjensen"}),
    # String ordering is lexicographic, case-insensitive for caseExact false.
    ('userName gt "m"', {"pomalley"}),
    ('userName lt "JB"', {"bjensen", "jane"}),
    ('name.familyName le "JENSEN"', {"bjensen"}),  # JANE's "" is unassigned
    ('title lt "zzz"', {"bjensen", "jane"}),  # JSMITH's "" too
    # dateTime compares instants: offsets, fractions, long fractions, date-only values.
    ('meta.lastModified eq "2011-05-13T04:42:34.000Z"', {"bjensen", "pomalley"}),
    ('meta.lastModified eq "2011-05-13T05:42:34+01:00"', {"bjensen", "pomalley"}),
    ('meta.created lt "2011-05-13T04:42:34Z"', {"bjensen", "pomalley"}),
    ('meta.created ge "2011-05-13T04:42:33.9990Z"', {"pomalley"}),
    ('meta.lastModified gt "2012-01-01T00:00:00.123456Z"', set()),
    ('meta.lastModified ge "2012-01-01"', {"jsmith"}),
    ('meta.lastModified gt "2011-01-01t00:59:58z"', {"bjensen", "pomalley", "jsmith", "jane"}),
    ('meta.lastModified sw "2011-05"', {"bjensen", "pomalley"}),
    # Extension attributes, qualified or (leniently) not.
    (f'{ENT}:employeeNumber eq "701984"', {"bjensen"}),
    (f"{ENT}:manager.value eq 26118915", set()),
    (f'{ENT}:manager.value eq "26118915"', {"bjensen"}),
    (f'{ENT}:manager eq "26118915"', {"bjensen"}),
    ('employeeNumber eq "701984"', {"bjensen"}),
    (f"{ENT}:employeeNumber pr", {"bjensen"}),
    ('urn:example:unknown:2.0:Thing:x eq "y"', set()),
    # not, precedence and grouping.
    ('not (userName eq "bjensen")', {"pomalley", "jsmith", "jane"}),
    ('not(userName eq "bjensen") and not (title pr)', {"pomalley", "jsmith"}),
    ('userType eq "Intern" or userType eq "Employee" and title pr', {"pomalley", "bjensen"}),
    ('(userType eq "Intern" or userType eq "Employee") and title pr', {"bjensen"}),
    ('title pr and userType eq "Employee" or active eq false', {"bjensen", "pomalley"}),
    ('not (not (userName eq "jsmith"))', {"jsmith"}),
    # Unknown attributes compare case-insensitively when present.
    ('schemas eq "URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER"', set(USERS)),
]


@pytest.mark.parametrize(("text", "expected"), EVALUATION, ids=[t for t, _ in EVALUATION])
def test_evaluation(text: str, expected: set[str]) -> None:
    assert matching(text) == expected


def test_attribute_names_in_the_data_are_case_insensitive() -> None:
    odd = {"USERNAME": "Mixed", "Emails": [{"Value": "m@x.io", "TYPE": "work"}]}
    assert evaluate(parse('userName eq "mixed"'), odd, USER_TYPE)
    assert evaluate(parse('emails[type eq "work" and value eq "M@X.IO"]'), odd, USER_TYPE)
    assert evaluate(parse('EMAILS.VALUE sw "m@"'), odd, USER_TYPE)


def test_extension_urn_key_is_case_insensitive_and_missing_extension_matches_nothing() -> None:
    user = {"userName": "x", ENT.upper(): {"employeeNumber": "7"}}
    assert evaluate(parse(f'{ENT}:employeeNumber eq "7"'), user, USER_TYPE)
    assert not evaluate(parse(f'{ENT}:employeeNumber eq "7"'), {"userName": "x"}, USER_TYPE)
    assert evaluate(parse(f'{ENT}:employeeNumber ne "7"'), {"userName": "x"}, USER_TYPE)


def test_groups() -> None:
    sales = {
        "displayName": "Sales",
        "members": [{"value": "u-1", "display": "jane"}, {"value": "u-2"}],
    }
    empty = {"displayName": "Empty", "members": []}

    def groups(text: str) -> set[str]:
        node = parse(text)
        check(node, GROUP_TYPE)
        return {g["displayName"] for g in (sales, empty) if evaluate(node, g, GROUP_TYPE)}

    assert groups('displayName eq "sales"') == {"Sales"}  # Okta's group lookup
    assert groups('members eq "u-2"') == {"Sales"}
    assert groups('members.value eq "u-1"') == {"Sales"}
    assert groups('members[value eq "u-1" and display eq "JANE"]') == {"Sales"}
    assert groups('members[value eq "u-2" and display pr]') == set()
    assert groups("members pr") == {"Sales"}
    assert groups("not (members pr)") == {"Empty"}


def test_same_filter_object_with_equal_but_different_values_is_not_confused() -> None:
    # In Python True == 1 and hash(True) == hash(1); caching must not mix them up.
    user = {"active": True, "loginCount": 1}
    assert evaluate(parse("active eq true"), user, USER_TYPE)
    assert not evaluate(parse("active eq 1"), user, USER_TYPE)
    assert not evaluate(parse("loginCount eq true"), user, USER_TYPE)
    assert evaluate(parse("loginCount eq 1"), user, USER_TYPE)


def test_compile_filter_matches_evaluate() -> None:
    node = parse('userType eq "Employee" and emails[type eq "work"]')
    matcher = compile_filter(node, USER_TYPE)
    assert {k for k, u in USERS.items() if matcher(u)} == {"bjensen", "jsmith"}


def test_datetime_compared_with_non_date_is_invalid_filter() -> None:
    for text in (
        'meta.lastModified gt "yesterday"',
        'meta.created eq "2011-13-45T00:00:00Z"',
        "meta.lastModified lt 5",
    ):
        node = parse(text)
        with pytest.raises(InvalidFilter):
            check(node, USER_TYPE)
    with pytest.raises(InvalidFilter, match="dateTime"):
        evaluate(parse('meta.lastModified gt "yesterday"'), BJENSEN, USER_TYPE)
    # An unparseable stored value simply does not match.
    odd = {"meta": {"lastModified": "not a date"}}
    assert not evaluate(parse('meta.lastModified gt "2011-05-13T04:42:34Z"'), odd, USER_TYPE)


# --- parsing -----------------------------------------------------------------------------------
def test_precedence_and_binds_tighter_than_or() -> None:
    a, b, c = Present(p("a")), Present(p("b")), Present(p("c"))
    assert parse("a pr or b pr and c pr") == Or(a, And(b, c))
    assert parse("a pr and b pr or c pr") == Or(And(a, b), c)
    assert parse("(a pr or b pr) and c pr") == And(Or(a, b), c)
    assert parse("a pr and b pr and c pr") == And(And(a, b), c)
    assert parse("a pr OR b pr AnD c pr") == Or(a, And(b, c))


def test_not_binds_tighter_than_and() -> None:
    a, b = Present(p("a")), Present(p("b"))
    assert parse("not (a pr) and b pr") == And(Not(a), b)
    assert parse("NOT(a pr) or b pr") == Or(Not(a), b)
    assert parse("not (a pr and b pr)") == Not(And(a, b))
    # "not" as an attribute name is still possible.
    assert parse("not pr") == Present(p("not"))


def test_comparison_values() -> None:
    def value(text: str) -> object:
        node = parse(f"x eq {text}")
        assert isinstance(node, Compare)
        return node.value

    assert value('"plain"') == "plain"
    assert value(r'"\u00e9l\u00e8ve"') == "élève"
    assert value(r'"tab\tnew\nline"') == "tab\tnew\nline"
    assert value(r'"back\\slash \/ quote\""') == 'back\\slash / quote"'
    assert value(r'"\ud83d\ude00"') == "\U0001f600"
    assert value('"with ) and ] and [ and ( inside"') == "with ) and ] and [ and ( inside"
    assert value('""') == ""
    assert value("true") is True
    assert value("False") is False
    assert value("NULL") is None
    for text, expected, kind in (
        ("0", 0, int),
        ("42", 42, int),
        ("-7", -7, int),
        ("1.5", 1.5, float),
        ("-2.5E-3", -0.0025, float),
        ("1e3", 1000.0, float),
    ):
        got = value(text)
        assert got == expected
        assert type(got) is kind


def test_injection_attempt_is_one_string_value() -> None:
    node = parse(r'userName eq "a\" or \"1\" eq \"1"')
    assert node == Compare(p("userName"), "eq", 'a" or "1" eq "1')
    assert matching(r'userName eq "a\" or \"1\" eq \"1"') == set()
    assert matching('userName eq "bjensen\\" or userName pr"') == set()


def test_operators_are_case_insensitive_and_normalised() -> None:
    for op in ("eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"):
        node = parse(f'userName {op.upper()} "x"')
        assert node == Compare(p("userName"), op, "x")


def test_whitespace_is_flexible() -> None:
    expected = And(Compare(p("userName"), "eq", "x"), Present(p("title")))
    assert parse('  userName   eq\t"x"  and\n title pr ') == expected
    assert parse('(userName eq "x")and(title pr)') == expected


def test_attribute_paths() -> None:
    assert parse('members.$ref eq "x"') == Compare(p("members", "$ref"), "eq", "x")
    assert parse(f'{ENT}:employeeNumber eq "1"') == Compare(p("employeeNumber", urn=ENT), "eq", "1")
    assert parse(f'{ENT}:manager.value eq "1"') == Compare(
        p("manager", "value", urn=ENT), "eq", "1"
    )
    assert parse("meta.lastModified pr") == Present(p("meta", "lastModified"))
    assert parse(f'{ENT}:manager[value eq "1"]') == ValuePath(
        p("manager", urn=ENT), Compare(p("value"), "eq", "1")
    )


def test_long_chains_do_not_recurse_deeply() -> None:
    last = MAX_FILTER_CLAUSES - 1
    text = " or ".join(f'id eq "{i}"' for i in range(MAX_FILTER_CLAUSES))
    node = parse(text)
    assert evaluate(node, {"id": str(last)}, USER_TYPE)
    assert not evaluate(node, {"id": str(last + 1)}, USER_TYPE)
    assert repr(node)
    assert node == parse(text)


def test_nodes_are_frozen_and_hashable() -> None:
    node = parse('emails[type eq "work"] and not (title pr)')
    assert hash(node) == hash(parse('emails[type eq "work"] and not (title pr)'))
    with pytest.raises(AttributeError):
        node.left = None  # type: ignore[misc]


# --- errors ------------------------------------------------------------------------------------
BAD_FILTERS = [
    ("", "empty"),
    ("   ", "empty"),
    ('userName equals "x"', "unknown operator 'equals'"),
    ('userName == "x"', "unknown operator '=='"),
    ('userName="x"', "not a valid attribute"),
    ("userName eq", "missing value"),
    ("userName eq )", "expected a value"),
    ("userName eq john", "expected a value"),
    ("userName eq 'john'", "expected a value"),
    ("userName", "expected an operator"),
    ('userName eq "abc', "unterminated string"),
    (r'userName eq "bad \x escape"', "bad string"),
    ('(userName eq "x"', "close the '('"),
    ('((userName eq "x")', "close the '('"),
    ('userName eq "x")', "unbalanced ')'"),
    ('emails[type eq "work"', "close the '['"),
    ('emails[type eq "work"]]', "unbalanced ']'"),
    ("emails[]", "empty value filter"),
    ('emails[type[x eq "y"]]', "cannot be nested"),
    ('emails[emails.type eq "work"]', "sub-attribute"),
    ('name.familyName[value eq "x"]', "multi-valued"),
    ('userName eq "x" and', "after 'and'"),
    ('userName eq "x" or or title pr', "after 'or'"),
    ('and userName eq "x"', "expected an attribute name"),
    ('userName eq "x" title pr', "expected 'and', 'or' or the end"),
    ('userName eq "x" "y"', "expected 'and', 'or' or the end"),
    ("not title pr", "parentheses"),
    ("not", "parentheses"),
    ("()", "expected an attribute name"),
    ("title pr pr", "expected 'and', 'or' or the end"),
    ("x eq 12abc", "expected a value"),
    ("x eq 1.", "expected a value"),
    ('emails[type eq "w"].value eq "x"', "expected 'and', 'or' or the end"),
    ("(" * 40 + "title pr" + ")" * 40, "nested"),
]


@pytest.mark.parametrize(("text", "fragment"), BAD_FILTERS, ids=[t for t, _ in BAD_FILTERS])
def test_bad_filters_raise_invalid_filter(text: str, fragment: str) -> None:
    with pytest.raises(InvalidFilter) as info:
        parse(text)
    err = info.value
    assert err.status == 400
    assert err.scim_type == "invalidFilter"
    assert fragment in err.detail
    body = err.to_body()
    assert body["scimType"] == "invalidFilter"
    assert body["status"] == "400"


def test_error_detail_names_the_position() -> None:
    with pytest.raises(InvalidFilter, match="position 10"):
        parse('userName equals "x"')


CHECK_REJECTS = [
    ("active gt true", "boolean"),
    ('active lt "x"', "boolean"),
    ('x509Certificates.value ge "abc"', "binary"),
    ('emails[primary gt "x"]', "boolean"),
    ('active co "t"', "boolean"),
    ("active sw true", "boolean"),
    ("userName co 5", "needs a string"),
    ("userName sw null", "needs a string"),
    ("unknownAttr co 5", "needs a string"),
    ("userName gt null", "needs a string, number or date"),
    ("loginCount gt true", "needs a string, number or date"),
    ('userName[value eq "x"]', "not a complex attribute"),
    ('meta.lastModified eq "soon"', "dateTime"),
]


@pytest.mark.parametrize(("text", "fragment"), CHECK_REJECTS, ids=[t for t, _ in CHECK_REJECTS])
def test_check_rejects_what_the_rfc_forbids(text: str, fragment: str) -> None:
    node = parse(text)
    with pytest.raises(InvalidFilter, match=fragment) as info:
        check(node, USER_TYPE)
    assert info.value.scim_type == "invalidFilter"


@pytest.mark.parametrize(
    "text",
    [
        'unknownAttr gt "x"',
        'emails[unknown eq "x"]',
        'urn:example:ext:1.0:Thing:color eq "red"',
        "meta.lastModified eq null",
        'meta.lastModified co "2011"',
        'userName gt "m"',
        "active eq true",
        "active ne false",
        "title pr",
    ],
)
def test_check_accepts_valid_and_unknown(text: str) -> None:
    check(parse(text), USER_TYPE)


# --- PATCH paths (RFC 7644 §3.5.2) -------------------------------------------------------------
MEMBER = "2819c223-7f76-453a-919d-413861904646"
PATCH_PATHS = [
    ("members", PatchPath(p("members"), None, None)),
    ("name.familyName", PatchPath(p("name", "familyName"), None, None)),
    (
        f'members[value eq "{MEMBER}"]',
        PatchPath(p("members"), Compare(p("value"), "eq", MEMBER), None),
    ),
    (
        f'members[value eq "{MEMBER}"].displayName',
        PatchPath(p("members"), Compare(p("value"), "eq", MEMBER), "displayName"),
    ),
    (
        'emails[type eq "work"].value',
        PatchPath(p("emails"), Compare(p("type"), "eq", "work"), "value"),
    ),
    (
        'addresses[type eq "work"]',
        PatchPath(p("addresses"), Compare(p("type"), "eq", "work"), None),
    ),
    (
        'emails[type eq "work" and not (primary eq false)]',
        PatchPath(
            p("emails"),
            And(Compare(p("type"), "eq", "work"), Not(Compare(p("primary"), "eq", False))),
            None,
        ),
    ),
    (f"{ENT}:employeeNumber", PatchPath(p("employeeNumber", urn=ENT), None, None)),
    (f"{ENT}:manager.value", PatchPath(p("manager", "value", urn=ENT), None, None)),
    (
        f"{USER_SCHEMA}:name.givenName",
        PatchPath(p("name", "givenName", urn=USER_SCHEMA), None, None),
    ),
    ("  members  ", PatchPath(p("members"), None, None)),
    (
        'members[value eq "a]b"].$ref',
        PatchPath(p("members"), Compare(p("value"), "eq", "a]b"), "$ref"),
    ),
]


@pytest.mark.parametrize(("text", "expected"), PATCH_PATHS, ids=[t for t, _ in PATCH_PATHS])
def test_parse_path(text: str, expected: PatchPath) -> None:
    assert parse_path(text) == expected


BAD_PATHS = [
    "",
    "   ",
    "members[",
    'members[value eq "x"',
    'members[value eq "x"].',
    'members[value eq "x"].value.display',
    'members[value eq "x"]x',
    'members[value eq "x"] and title pr',
    'name.familyName[value eq "x"]',
    "emails..value",
    "members]",
    'members[value equals "x"]',
    'members[value eq "x]',
    "[value eq 1]",
    "members value",
    '"members"',
]


@pytest.mark.parametrize("text", BAD_PATHS)
def test_bad_paths_raise_invalid_path(text: str) -> None:
    with pytest.raises(InvalidPath) as info:
        parse_path(text)
    assert info.value.status == 400
    assert info.value.scim_type == "invalidPath"


def test_evaluate_element_for_patch_value_filters() -> None:
    path = parse_path('members[value eq "U-1" or display sw "ja"]')
    assert path.filter is not None
    members_def = GROUP_TYPE.resolve(path.attr)
    members = [{"value": "u-1"}, {"value": "u-2", "display": "Jane"}, {"value": "u-3"}]
    assert [evaluate_element(path.filter, m, members_def) for m in members] == [
        True,
        True,
        False,
    ]
    # Without a definition (unknown attribute), strings compare case-insensitively too.
    assert evaluate_element(path.filter, {"value": "u-1"}, None)


def test_hand_built_nodes_are_evaluated_too() -> None:
    node = And(Compare(p("userName"), "eq", "BJENSEN"), Not(Present(p("nickName"))))
    assert evaluate(node, BJENSEN, USER_TYPE)
    with pytest.raises(InvalidFilter):
        evaluate(Compare(p("userName"), "like", "x"), BJENSEN, USER_TYPE)


@pytest.mark.parametrize(
    "text",
    [
        'userName eq "jane@example.com"',
        '  userName   EQ   "Jane@Example.com"  ',
        'displayName eq "Sales & Marketing (EMEA)"',
        'externalId eq "00u1abcd"',
        'userName eq ""',
        'userName eq "日本語"',
        'x-y_1 eq "v"',
    ],
)
def test_simple_eq_fast_path_builds_what_the_parser_builds(text: str) -> None:
    from scim_desktop.core.filter_parse import _parse, _parse_simple_eq

    fast = _parse_simple_eq(text)
    assert fast is not None and fast == _parse(text)


@pytest.mark.parametrize(
    "text",
    [
        'userName eq "a\\"b"',  # an escape: the parser decodes it
        'name.givenName eq "x"',
        'urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x"',
        'userName eq "x" and active eq true',
        'userName\teq "x"',
        'not eq "x"',
        'and eq "x"',
        "userName eq 5",
    ],
)
def test_anything_else_takes_the_parser(text: str) -> None:
    from scim_desktop.core.filter_parse import _parse_simple_eq

    assert _parse_simple_eq(text) is None


# --- limits (issue 12) ---------------------------------------------------------------------------
def test_a_filter_at_every_limit_is_accepted() -> None:
    clauses = " or ".join(f'id eq "{i}"' for i in range(MAX_FILTER_CLAUSES))
    assert filter_size(parse(clauses)) == MAX_FILTER_CLAUSES
    nested = "(" * MAX_FILTER_DEPTH + "title pr" + ")" * MAX_FILTER_DEPTH
    assert parse(nested) == Present(p("title"))
    long_value = 'title eq "' + "x" * (MAX_FILTER_LENGTH - 11) + '"'
    assert len(long_value) == MAX_FILTER_LENGTH
    assert parse(long_value) == Compare(p("title"), "eq", "x" * (MAX_FILTER_LENGTH - 11))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            " or ".join(["displayName pr"] * (MAX_FILTER_CLAUSES + 1)),
            f"more than {MAX_FILTER_CLAUSES} clauses",
        ),
        # A value filter counts as a clause, and so does every test inside it.
        (
            " or ".join(['emails[type eq "work" and value pr]'] * (MAX_FILTER_CLAUSES // 3 + 1)),
            f"the limit is {MAX_FILTER_CLAUSES}",
        ),
        (
            "(" * (MAX_FILTER_DEPTH + 1) + "title pr" + ")" * (MAX_FILTER_DEPTH + 1),
            f"the limit is {MAX_FILTER_DEPTH} levels",
        ),
        (
            "not (" * (MAX_FILTER_DEPTH + 1) + "title pr" + ")" * (MAX_FILTER_DEPTH + 1),
            f"nested more than {MAX_FILTER_DEPTH} levels",
        ),
        (
            'title eq "' + "x" * MAX_FILTER_LENGTH + '"',
            f"characters long; the limit is {MAX_FILTER_LENGTH} characters",
        ),
        # The filter: refused on its length before any tokenizing.
        (" or ".join(["displayName pr"] * 40_000), "the limit is 16384 characters"),
    ],
    ids=["clauses", "value-filter-clauses", "depth", "not-depth", "length", "issue-40000"],
)
def test_filters_over_a_limit_are_invalid_filter_naming_it(text: str, fragment: str) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse(text)
    assert caught.value.scim_type == "invalidFilter"
    assert fragment in caught.value.detail
    assert len(caught.value.detail) < 400  # the filter is quoted shortened, not whole


def test_patch_paths_have_the_same_limits() -> None:
    with pytest.raises(InvalidPath, match="the limit is 16384 characters"):
        parse_path('members[value eq "' + "x" * MAX_FILTER_LENGTH + '"]')
    inner = " or ".join(['value eq "x"'] * (MAX_FILTER_CLAUSES + 1))
    with pytest.raises(InvalidPath, match=f"more than {MAX_FILTER_CLAUSES} clauses"):
        parse_path(f"members[{inner}]")


# --- evaluation in steps --------------------------------------------------------------------------
STEP_FILTERS = [
    'emails[type eq "work" and value co "example"]',
    'not (emails[type eq "home"]) and userName sw "b"',
    'title pr or emails[value ew ".com" or primary eq true] or userName eq "nobody"',
    'members[value eq "u-7" or value eq "u-99"] and displayName pr',
    'not (members[value eq "u-3"]) or not (displayName co "a")',
    " or ".join(f'members[value eq "u-{i}"]' for i in range(40)),
    'userName eq "bjensen" and not (title pr)',
]
STEP_RECORDS: list[dict[str, Any]] = [
    *USERS.values(),
    {"displayName": "Big", "members": [{"value": f"u-{i}"} for i in range(5000)]},
    {"displayName": "Small", "members": [{"value": "u-3"}, {"value": "u-99"}]},
    {"displayName": "None"},
]


@pytest.mark.parametrize("text", STEP_FILTERS)
def test_evaluate_steps_answers_as_evaluate_does(text: str) -> None:
    node = parse(text)
    for record in STEP_RECORDS:
        rtype = GROUP_TYPE if "members" in record or "userName" not in record else USER_TYPE
        steps = evaluate_steps(node, record, rtype)
        assert run_steps(steps) is evaluate(node, record, rtype), record.get("displayName")


def test_evaluate_steps_pauses_inside_a_large_value_filter() -> None:
    node = parse('members[value eq "u-4999"]')
    big = STEP_RECORDS[-3]
    steps = evaluate_steps(node, big, GROUP_TYPE)
    pauses = 0
    while True:
        try:
            next(steps)
        except StopIteration as done:
            assert done.value is True
            break
        pauses += 1
    assert pauses >= 4  # 5000 elements, one pause every 1024 element-clauses


@pytest.mark.parametrize("sort_by", ["userName", "emails", "title", "meta.created"])
@pytest.mark.parametrize("descending", [False, True])
def test_the_sliced_sort_gives_the_order_of_one_sort(sort_by: str, descending: bool) -> None:
    rng = random.Random(12)
    records = []
    for seq in range(SORT_RUN * 2 + 123):  # several runs to merge
        record: dict[str, Any] = {"_seq": seq, "meta": {"created": f"2024-01-{rng.randint(1, 9)}"}}
        if rng.random() < 0.9:
            record["userName"] = rng.choice(["Ann", "bob", "ann", "Cid", "dee"]) + str(seq % 7)
        if rng.random() < 0.5:
            record["emails"] = [{"value": rng.choice(["a@x", "B@x", "c@x"]), "primary": True}]
        if rng.random() < 0.3:
            record["title"] = rng.choice([3, 1.5, True, "Boss", None])
        records.append(record)
    rng.shuffle(records)
    order = "descending" if descending else "ascending"
    query = parse_search_request({"sortBy": sort_by, "sortOrder": order}, USER_TYPE)
    key = sort_key_fn(query, USER_TYPE)
    expected = sorted(records, key=key, reverse=descending)
    assert run_steps(sorted_steps(list(records), key, descending)) == expected
