"""PATCH (RFC 7644 §3.5.2): Okta's request bodies verbatim (OKTA.md), the RFC's examples,
Azure's quirks, and the rules that peers get wrong."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from scim_desktop.core import errors
from scim_desktop.core.patch import apply
from scim_desktop.core.schemas import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    GROUP_TYPE,
    USER_SCHEMA,
    USER_TYPE,
)

ENT = ENTERPRISE_USER_SCHEMA
META = {
    "resourceType": "User",
    "created": "2024-01-01T00:00:00Z",
    "lastModified": "2024-01-01T00:00:00Z",
    "location": "https://example.test/scim/v2/Users/u1",
    "version": 'W/"1"',
}


@pytest.fixture
def user() -> dict[str, Any]:
    return {
        "schemas": [USER_SCHEMA],
        "id": "u1",
        "externalId": "00u1abcd",
        "userName": "jane@example.com",
        "name": {"givenName": "Jane", "familyName": "Doe"},
        "emails": [{"primary": True, "value": "jane@example.com", "type": "work"}],
        "displayName": "Jane Doe",
        "locale": "en-US",
        "active": True,
        "meta": dict(META),
    }


@pytest.fixture
def group() -> dict[str, Any]:
    return {
        "schemas": [GROUP_SCHEMA],
        "id": "g1",
        "displayName": "Sales",
        "members": [
            {"value": "u1", "display": "jane@example.com"},
            {"value": "u2", "display": "john@example.com"},
            {"value": "u3", "display": "jill@example.com"},
        ],
        "meta": {**META, "resourceType": "Group"},
    }


def member_ids(resource: dict[str, Any]) -> list[str]:
    return [m["value"] for m in resource.get("members", [])]


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": list(operations),
    }


# --- Okta, verbatim (OKTA.md) ------------------------------------------------------------------
def test_okta_deactivate_user(user: dict[str, Any]) -> None:
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": False}}],
    }
    out = apply(user, body["Operations"], USER_TYPE)
    assert out["active"] is False  # false is a value, never "missing"
    assert {k: v for k, v in out.items() if k != "active"} == {
        k: v for k, v in user.items() if k != "active"
    }


def test_okta_reactivate_user(user: dict[str, Any]) -> None:
    user["active"] = False
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": True}}],
    }
    assert apply(user, body["Operations"], USER_TYPE)["active"] is True


def test_okta_password_sync_with_path(user: dict[str, Any]) -> None:
    ops = [{"op": "replace", "path": "password", "value": "n3w-Secret!"}]
    assert apply(user, ops, USER_TYPE)["password"] == "n3w-Secret!"


def test_okta_password_sync_without_path(user: dict[str, Any]) -> None:
    ops = [{"op": "replace", "value": {"password": "n3w-Secret!"}}]
    assert apply(user, ops, USER_TYPE)["password"] == "n3w-Secret!"


def test_okta_group_rename_with_id_in_value(group: dict[str, Any]) -> None:
    ops = [{"op": "replace", "value": {"id": "g1", "displayName": "Sales EMEA"}}]
    out = apply(group, ops, GROUP_TYPE)
    assert out["displayName"] == "Sales EMEA"
    assert out["id"] == "g1"
    assert member_ids(out) == ["u1", "u2", "u3"]


def test_okta_group_rename_with_a_different_id_is_ignored(group: dict[str, Any]) -> None:
    # id is readOnly: inside a path-less value it is ignored (RFC 7643 §2.2), never applied.
    ops = [{"op": "replace", "value": {"id": "other", "displayName": "Sales"}}]
    assert apply(group, ops, GROUP_TYPE)["id"] == "g1"


def test_okta_add_members(group: dict[str, Any]) -> None:
    group["members"] = []
    ops = [
        {
            "op": "add",
            "path": "members",
            "value": [{"value": "u9", "display": "jane@example.com"}],
        }
    ]
    out = apply(group, ops, GROUP_TYPE)
    assert out["members"] == [{"value": "u9", "display": "jane@example.com"}]


def test_okta_add_members_to_group_without_members_key(group: dict[str, Any]) -> None:
    del group["members"]
    ops = [{"op": "add", "path": "members", "value": [{"value": "u9", "display": "x"}]}]
    assert member_ids(apply(group, ops, GROUP_TYPE)) == ["u9"]


def test_okta_add_existing_member_is_not_duplicated(group: dict[str, Any]) -> None:
    ops = [{"op": "add", "path": "members", "value": [{"value": "u2", "display": "other"}]}]
    assert member_ids(apply(group, ops, GROUP_TYPE)) == ["u1", "u2", "u3"]


def test_okta_remove_one_member_among_three(group: dict[str, Any]) -> None:
    ops = [{"op": "remove", "path": 'members[value eq "u2"]'}]
    out = apply(group, ops, GROUP_TYPE)
    assert member_ids(out) == ["u1", "u3"]  # only that member, never all of them


def test_okta_remove_last_member(group: dict[str, Any]) -> None:
    group["members"] = [{"value": "u1"}]
    out = apply(group, [{"op": "remove", "path": 'members[value eq "u1"]'}], GROUP_TYPE)
    assert out.get("members", []) == []


def test_okta_remove_unknown_member_is_a_no_op(group: dict[str, Any]) -> None:
    out = apply(group, [{"op": "remove", "path": 'members[value eq "nobody"]'}], GROUP_TYPE)
    assert member_ids(out) == ["u1", "u2", "u3"]


def test_okta_push_now_replaces_members(group: dict[str, Any]) -> None:
    ops = [
        {
            "op": "replace",
            "path": "members",
            "value": [
                {"value": "u3", "display": "jill@example.com"},
                {"value": "u7", "display": "x"},
            ],
        }
    ]
    assert member_ids(apply(group, ops, GROUP_TYPE)) == ["u3", "u7"]


def test_okta_push_now_with_empty_list_empties_the_group(group: dict[str, Any]) -> None:
    ops = [{"op": "replace", "path": "members", "value": []}]
    out = apply(group, ops, GROUP_TYPE)
    assert out["members"] == []


def test_okta_push_group_sequence(group: dict[str, Any]) -> None:
    """Rename follows every membership change in one request (OKTA.md)."""
    ops = [
        {"op": "remove", "path": 'members[value eq "u1"]'},
        {"op": "add", "path": "members", "value": [{"value": "u4", "display": "x@example.com"}]},
        {"op": "replace", "value": {"id": "g1", "displayName": "Sales"}},
    ]
    out = apply(group, ops, GROUP_TYPE)
    assert member_ids(out) == ["u2", "u3", "u4"]
    assert out["displayName"] == "Sales"


# --- RFC 7644 §3.5.2.1 add ---------------------------------------------------------------------
def test_rfc_add_members(group: dict[str, Any]) -> None:
    ops = [
        {
            "op": "add",
            "path": "members",
            "value": [
                {
                    "display": "Babs Jensen",
                    "$ref": "https://example.com/v2/Users/2819c223",
                    "value": "2819c223",
                }
            ],
        }
    ]
    out = apply(group, ops, GROUP_TYPE)
    assert member_ids(out) == ["u1", "u2", "u3", "2819c223"]
    assert out["members"][-1]["$ref"] == "https://example.com/v2/Users/2819c223"


def test_rfc_add_without_path_merges_attributes(user: dict[str, Any]) -> None:
    ops = [
        {
            "op": "add",
            "value": {
                "emails": [{"value": "babs@jensen.org", "type": "home"}],
                "nickname": "Babs",
            },
        }
    ]
    out = apply(user, ops, USER_TYPE)
    assert [e["value"] for e in out["emails"]] == ["jane@example.com", "babs@jensen.org"]
    assert out["nickName"] == "Babs"  # canonical spelling from the schema
    assert "nickname" not in out


def test_add_complex_merges_sub_attributes(user: dict[str, Any]) -> None:
    out = apply(user, [{"op": "add", "value": {"name": {"middleName": "Q"}}}], USER_TYPE)
    assert out["name"] == {"givenName": "Jane", "familyName": "Doe", "middleName": "Q"}


def test_add_single_valued_replaces(user: dict[str, Any]) -> None:
    out = apply(user, [{"op": "add", "path": "displayName", "value": "J. Doe"}], USER_TYPE)
    assert out["displayName"] == "J. Doe"


def test_add_exact_duplicate_email_is_skipped(user: dict[str, Any]) -> None:
    ops = [
        {
            "op": "add",
            "path": "emails",
            "value": [{"primary": True, "value": "jane@example.com", "type": "work"}],
        }
    ]
    assert apply(user, ops, USER_TYPE)["emails"] == user["emails"]


def test_add_sub_attribute_path_creates_parent(user: dict[str, Any]) -> None:
    del user["name"]
    out = apply(user, [{"op": "add", "path": "name.familyName", "value": "Doe"}], USER_TYPE)
    assert out["name"] == {"familyName": "Doe"}


def test_add_with_value_path_sets_matching_element(user: dict[str, Any]) -> None:
    ops = [{"op": "add", "path": 'emails[type eq "work"].value', "value": "j@example.com"}]
    out = apply(user, ops, USER_TYPE)
    assert out["emails"] == [{"primary": True, "value": "j@example.com", "type": "work"}]


def test_azure_add_with_value_path_creates_missing_element(user: dict[str, Any]) -> None:
    del user["emails"]
    ops = [{"op": "Add", "path": 'emails[type eq "work"].value', "value": "jane@work.example"}]
    out = apply(user, ops, USER_TYPE)
    assert out["emails"] == [{"type": "work", "value": "jane@work.example"}]


def test_add_with_value_path_creates_from_and_filter(user: dict[str, Any]) -> None:
    ops = [
        {
            "op": "add",
            "path": 'phoneNumbers[type eq "mobile" and primary eq true].value',
            "value": "+1 555 0100",
        }
    ]
    out = apply(user, ops, USER_TYPE)
    assert out["phoneNumbers"] == [{"type": "mobile", "primary": True, "value": "+1 555 0100"}]


def test_add_with_value_path_that_cannot_describe_an_element(user: dict[str, Any]) -> None:
    ops = [{"op": "add", "path": 'emails[type ne "work"].value', "value": "x@example.com"}]
    with pytest.raises(errors.NoTarget):
        apply(user, ops, USER_TYPE)


def test_add_primary_email_clears_other_primary(user: dict[str, Any]) -> None:
    ops = [
        {
            "op": "add",
            "path": "emails",
            "value": [{"value": "babs@jensen.org", "type": "home", "primary": True}],
        }
    ]
    out = apply(user, ops, USER_TYPE)
    assert [e["primary"] for e in out["emails"]] == [False, True]


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "add", "path": "title", "value": None},
        {"op": "add", "value": None},
        {"op": "Add", "Path": "emails", "Value": None},
    ],
)
def test_add_null_value_is_invalid_value(user: dict[str, Any], operation: dict[str, Any]) -> None:
    # RFC 7644 §3.5.2.1: add MUST carry the value to add; null adds nothing (RFC 7643 §2.5).
    before = copy.deepcopy(user)
    with pytest.raises(errors.InvalidValue) as caught:
        apply(user, [{"op": "replace", "path": "title", "value": "x"}, operation], USER_TYPE)
    assert caught.value.scim_type == "invalidValue"
    assert "Operations[1] (add)" in caught.value.detail and "null" in caught.value.detail
    assert user == before


# --- RFC 7644 §3.5.2.2 remove --------------------------------------------------------------
def test_rfc_remove_all_members(group: dict[str, Any]) -> None:
    out = apply(group, [{"op": "remove", "path": "members"}], GROUP_TYPE)
    assert "members" not in out


def test_rfc_remove_one_member(group: dict[str, Any]) -> None:
    ops = [{"op": "remove", "path": 'members[value eq "u1"]'}]
    assert member_ids(apply(group, ops, GROUP_TYPE)) == ["u2", "u3"]


def test_rfc_remove_members_then_add(group: dict[str, Any]) -> None:
    ops = [
        {"op": "remove", "path": "members"},
        {"op": "add", "path": "members", "value": [{"display": "James Smith", "value": "08e1"}]},
    ]
    assert member_ids(apply(group, ops, GROUP_TYPE)) == ["08e1"]


def test_azure_remove_members_with_value_list(group: dict[str, Any]) -> None:
    ops = [{"op": "Remove", "path": "members", "value": [{"value": "u1"}, {"value": "u3"}]}]
    assert member_ids(apply(group, ops, GROUP_TYPE)) == ["u2"]


def test_rfc_remove_sub_attribute_of_filtered_values(user: dict[str, Any]) -> None:
    user["emails"].append({"value": "jane@home.example", "type": "home"})
    ops = [{"op": "remove", "path": 'emails[type eq "work"].value'}]
    out = apply(user, ops, USER_TYPE)
    assert out["emails"] == [
        {"primary": True, "type": "work"},
        {"value": "jane@home.example", "type": "home"},
    ]


def test_remove_filtered_emails(user: dict[str, Any]) -> None:
    user["emails"].append({"value": "jane@home.example", "type": "home"})
    out = apply(user, [{"op": "remove", "path": 'emails[type eq "work"]'}], USER_TYPE)
    assert out["emails"] == [{"value": "jane@home.example", "type": "home"}]


def test_remove_sub_attribute(user: dict[str, Any]) -> None:
    out = apply(user, [{"op": "remove", "path": "name.givenName"}], USER_TYPE)
    assert out["name"] == {"familyName": "Doe"}


def test_remove_without_path_is_no_target(user: dict[str, Any]) -> None:
    with pytest.raises(errors.NoTarget) as exc:
        apply(user, [{"op": "remove"}], USER_TYPE)
    assert exc.value.status == 400
    assert exc.value.to_body()["scimType"] == "noTarget"


def test_remove_absent_attribute_is_a_no_op(user: dict[str, Any]) -> None:
    assert apply(user, [{"op": "remove", "path": "title"}], USER_TYPE) == user
    assert apply(user, [{"op": "remove", "path": f"{ENT}:department"}], USER_TYPE) == user


@pytest.mark.parametrize(
    ("rtype", "path"),
    [(USER_TYPE, "userName"), (GROUP_TYPE, "displayName"), (USER_TYPE, "USERNAME")],
)
def test_remove_required_attribute_is_mutability(
    user: dict[str, Any], group: dict[str, Any], rtype: Any, path: str
) -> None:
    resource = user if rtype is USER_TYPE else group
    with pytest.raises(errors.Mutability):
        apply(resource, [{"op": "remove", "path": path}], rtype)


def test_replace_required_attribute_with_null_is_mutability(user: dict[str, Any]) -> None:
    with pytest.raises(errors.Mutability):
        apply(user, [{"op": "replace", "path": "userName", "value": None}], USER_TYPE)
    with pytest.raises(errors.Mutability):
        apply(user, [{"op": "replace", "value": {"userName": None}}], USER_TYPE)


# --- RFC 7644 §3.5.2.3 replace -------------------------------------------------------------
def test_rfc_replace_members(group: dict[str, Any]) -> None:
    ops = [
        {
            "op": "replace",
            "path": "members",
            "value": [
                {
                    "display": "Babs Jensen",
                    "$ref": "https://example.com/v2/Users/2819c223",
                    "value": "2819c223",
                },
                {
                    "display": "James Smith",
                    "$ref": "https://example.com/v2/Users/08e1d05d",
                    "value": "08e1d05d",
                },
            ],
        }
    ]
    assert member_ids(apply(group, ops, GROUP_TYPE)) == ["2819c223", "08e1d05d"]


def test_rfc_replace_filtered_element(user: dict[str, Any]) -> None:
    user["emails"].append({"value": "jane@home.example", "type": "home"})
    ops = [
        {
            "op": "replace",
            "path": 'emails[type eq "work"]',
            "value": {"type": "work", "value": "jd@example.com", "primary": True},
        }
    ]
    out = apply(user, ops, USER_TYPE)
    assert out["emails"] == [
        {"type": "work", "value": "jd@example.com", "primary": True},
        {"value": "jane@home.example", "type": "home"},
    ]


def test_replace_filtered_sub_attribute(user: dict[str, Any]) -> None:
    ops = [{"op": "replace", "path": 'emails[type eq "work"].value', "value": "jd@example.com"}]
    out = apply(user, ops, USER_TYPE)
    assert out["emails"] == [{"primary": True, "value": "jd@example.com", "type": "work"}]


def test_replace_filter_without_match_is_no_target(user: dict[str, Any]) -> None:
    ops = [{"op": "replace", "path": 'emails[type eq "home"].value', "value": "x@example.com"}]
    with pytest.raises(errors.NoTarget):
        apply(user, ops, USER_TYPE)


def test_replace_filter_on_absent_attribute_is_no_target(user: dict[str, Any]) -> None:
    ops = [{"op": "replace", "path": 'addresses[type eq "work"]', "value": {"type": "work"}}]
    with pytest.raises(errors.NoTarget):
        apply(user, ops, USER_TYPE)


def test_replace_missing_attribute_adds_it(user: dict[str, Any]) -> None:
    out = apply(user, [{"op": "replace", "path": "title", "value": "CTO"}], USER_TYPE)
    assert out["title"] == "CTO"


def test_replace_complex_keeps_unmentioned_sub_attributes(user: dict[str, Any]) -> None:
    ops = [{"op": "replace", "path": "name", "value": {"givenName": "Janet"}}]
    assert apply(user, ops, USER_TYPE)["name"] == {"givenName": "Janet", "familyName": "Doe"}


def test_replace_sub_attribute_path(user: dict[str, Any]) -> None:
    ops = [{"op": "replace", "path": "name.familyName", "value": "Smith"}]
    assert apply(user, ops, USER_TYPE)["name"] == {"givenName": "Jane", "familyName": "Smith"}


def test_replace_core_urn_prefixed_path(user: dict[str, Any]) -> None:
    ops = [{"op": "replace", "path": f"{USER_SCHEMA}:name.givenName", "value": "Janet"}]
    assert apply(user, ops, USER_TYPE)["name"]["givenName"] == "Janet"


def test_replace_emails_wholesale(user: dict[str, Any]) -> None:
    ops = [{"op": "replace", "path": "emails", "value": [{"value": "new@example.com"}]}]
    assert apply(user, ops, USER_TYPE)["emails"] == [{"value": "new@example.com"}]


# --- extensions (RFC 7643 §3.3, §4.3) ----------------------------------------------------------
def test_add_extension_attribute_by_urn_path(user: dict[str, Any]) -> None:
    ops = [{"op": "add", "path": f"{ENT}:employeeNumber", "value": "701984"}]
    out = apply(user, ops, USER_TYPE)
    assert out[ENT] == {"employeeNumber": "701984"}
    assert out["schemas"] == [USER_SCHEMA, ENT]


def test_replace_extension_sub_attribute_by_urn_path(user: dict[str, Any]) -> None:
    ops = [{"op": "replace", "path": f"{ENT}:manager.value", "value": "u42"}]
    out = apply(user, ops, USER_TYPE)
    assert out[ENT] == {"manager": {"value": "u42"}}


def test_add_extension_by_urn_keyed_value_object(user: dict[str, Any]) -> None:
    ops = [{"op": "add", "value": {ENT: {"department": "Sales", "costCenter": "4130"}}}]
    out = apply(user, ops, USER_TYPE)
    assert out[ENT] == {"department": "Sales", "costCenter": "4130"}
    assert ENT in out["schemas"]


def test_azure_full_urn_attribute_key_in_value_object(user: dict[str, Any]) -> None:
    ops = [{"op": "Replace", "value": {f"{ENT}:department": "Engineering"}}]
    out = apply(user, ops, USER_TYPE)
    assert out[ENT] == {"department": "Engineering"}
    assert out["schemas"] == [USER_SCHEMA, ENT]


def test_extension_urn_is_not_duplicated_in_schemas(user: dict[str, Any]) -> None:
    user["schemas"] = [USER_SCHEMA, ENT]
    user[ENT] = {"department": "Sales"}
    out = apply(user, [{"op": "add", "path": f"{ENT}:division", "value": "EMEA"}], USER_TYPE)
    assert out["schemas"] == [USER_SCHEMA, ENT]
    assert out[ENT] == {"department": "Sales", "division": "EMEA"}


def test_removing_last_extension_attribute_drops_extension(user: dict[str, Any]) -> None:
    user["schemas"] = [USER_SCHEMA, ENT]
    user[ENT] = {"department": "Sales"}
    out = apply(user, [{"op": "remove", "path": f"{ENT}:department"}], USER_TYPE)
    assert ENT not in out
    assert out["schemas"] == [USER_SCHEMA]


def test_remove_whole_extension_by_urn_path(user: dict[str, Any]) -> None:
    user["schemas"] = [USER_SCHEMA, ENT]
    user[ENT] = {"department": "Sales", "division": "EMEA"}
    out = apply(user, [{"op": "remove", "path": ENT}], USER_TYPE)
    assert ENT not in out
    assert out["schemas"] == [USER_SCHEMA]


def test_extension_urn_is_case_insensitive(user: dict[str, Any]) -> None:
    user["schemas"] = [USER_SCHEMA, ENT]
    user[ENT] = {"department": "Sales"}
    ops = [{"op": "replace", "path": f"{ENT.upper()}:DEPARTMENT", "value": "Ops"}]
    out = apply(user, ops, USER_TYPE)
    assert out[ENT] == {"department": "Ops"}


# --- mutability --------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["id", "meta", "meta.lastModified", "groups", "ID"])
def test_path_to_read_only_attribute_is_mutability(user: dict[str, Any], path: str) -> None:
    for op in ("add", "replace", "remove"):
        with pytest.raises(errors.Mutability):
            apply(user, [{"op": op, "path": path, "value": "x"}], USER_TYPE)


def test_read_only_keys_in_pathless_value_are_ignored(user: dict[str, Any]) -> None:
    ops = [
        {
            "op": "replace",
            "value": {
                "id": "hacked",
                "meta": {"created": "1999-01-01T00:00:00Z"},
                "groups": [{"value": "g1"}],
                "schemas": [USER_SCHEMA],
                "displayName": "JD",
            },
        }
    ]
    out = apply(user, ops, USER_TYPE)
    assert out["id"] == "u1"
    assert out["meta"] == META
    assert "groups" not in out
    assert out["displayName"] == "JD"


# --- names, booleans, Azure --------------------------------------------------------------------
def test_attribute_names_are_case_insensitive(user: dict[str, Any]) -> None:
    ops = [
        {"op": "replace", "path": "DISPLAYNAME", "value": "JD"},
        {"op": "replace", "value": {"Name": {"GivenName": "Janet"}}},
    ]
    out = apply(user, ops, USER_TYPE)
    assert out["displayName"] == "JD"
    assert "DISPLAYNAME" not in out
    assert out["name"] == {"givenName": "Janet", "familyName": "Doe"}


def test_existing_key_spelling_is_kept(user: dict[str, Any]) -> None:
    user["DisplayName"] = user.pop("displayName")
    out = apply(user, [{"op": "replace", "path": "displayname", "value": "JD"}], USER_TYPE)
    assert out["DisplayName"] == "JD"
    assert "displayName" not in out


def test_unknown_attribute_is_stored_as_sent(user: dict[str, Any]) -> None:
    out = apply(user, [{"op": "add", "path": "favouriteColour", "value": "teal"}], USER_TYPE)
    assert out["favouriteColour"] == "teal"


def test_azure_capitalised_ops_and_boolean_strings(user: dict[str, Any]) -> None:
    ops = [
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "Add", "path": "title", "value": "Engineer"},
    ]
    out = apply(user, ops, USER_TYPE)
    assert out["active"] is False
    assert out["title"] == "Engineer"
    out = apply(out, [{"op": "REPLACE", "value": {"active": "TRUE"}}], USER_TYPE)
    assert out["active"] is True


def test_boolean_strings_in_sub_attributes(user: dict[str, Any]) -> None:
    ops = [{"op": "replace", "path": 'emails[type eq "work"].primary', "value": "false"}]
    assert apply(user, ops, USER_TYPE)["emails"][0]["primary"] is False


def test_boolean_string_for_non_boolean_attribute_is_left_alone(user: dict[str, Any]) -> None:
    out = apply(user, [{"op": "replace", "path": "title", "value": "True"}], USER_TYPE)
    assert out["title"] == "True"


# --- request structure and atomicity -----------------------------------------------------------
@pytest.mark.parametrize(
    "operations",
    [None, {}, [], "replace", [42], [{"path": "title", "value": "x"}], [{"op": 1}]],
)
def test_malformed_operations_are_invalid_syntax(user: dict[str, Any], operations: Any) -> None:
    with pytest.raises(errors.InvalidSyntax):
        apply(user, operations, USER_TYPE)


def test_unknown_op_is_invalid_syntax_and_named(user: dict[str, Any]) -> None:
    ops = [{"op": "replace", "value": {"title": "x"}}, {"op": "merge", "value": {"title": "y"}}]
    with pytest.raises(errors.InvalidSyntax) as exc:
        apply(user, ops, USER_TYPE)
    assert "merge" in exc.value.detail
    assert "Operations[1]" in exc.value.detail


@pytest.mark.parametrize("op", ["add", "replace"])
def test_missing_value_is_invalid_value(user: dict[str, Any], op: str) -> None:
    with pytest.raises(errors.InvalidValue):
        apply(user, [{"op": op, "path": "title"}], USER_TYPE)


def test_pathless_value_must_be_an_object(user: dict[str, Any]) -> None:
    with pytest.raises(errors.InvalidValue):
        apply(user, [{"op": "replace", "value": "x"}], USER_TYPE)


@pytest.mark.parametrize("path", ['emails[type eq "work"', "emails..value", "name.given.x", "1abc"])
def test_invalid_path(user: dict[str, Any], path: str) -> None:
    with pytest.raises((errors.InvalidPath, errors.InvalidFilter)):
        apply(user, [{"op": "replace", "path": path, "value": "x"}], USER_TYPE)


def test_operations_apply_in_order(user: dict[str, Any]) -> None:
    ops = [
        {"op": "replace", "path": "title", "value": "one"},
        {"op": "replace", "path": "title", "value": "two"},
        {"op": "remove", "path": "locale"},
    ]
    out = apply(user, ops, USER_TYPE)
    assert out["title"] == "two"
    assert "locale" not in out


def test_failure_in_third_operation_applies_nothing(user: dict[str, Any]) -> None:
    before = copy.deepcopy(user)
    ops = [
        {"op": "replace", "path": "title", "value": "CTO"},
        {"op": "add", "path": "members", "value": [{"value": "u2"}]},
        {"op": "replace", "path": 'emails[type eq "home"].value', "value": "x@example.com"},
    ]
    with pytest.raises(errors.NoTarget) as exc:
        apply(user, ops, USER_TYPE)
    assert "Operations[2]" in exc.value.detail
    assert user == before


def test_input_is_never_mutated(user: dict[str, Any], group: dict[str, Any]) -> None:
    ops = [
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "x@example.com"},
        {"op": "replace", "path": "name.givenName", "value": "X"},
        {"op": "add", "value": {ENT: {"department": "X"}}},
    ]
    before = copy.deepcopy(user)
    out = apply(user, ops, USER_TYPE)
    assert user == before
    assert out["emails"] is not user["emails"]
    gops = [{"op": "remove", "path": 'members[value eq "u1"]'}]
    gbefore = copy.deepcopy(group)
    apply(group, gops, GROUP_TYPE)
    assert group == gbefore


def test_result_does_not_share_values_with_the_request(group: dict[str, Any]) -> None:
    value = [{"value": "u9"}]
    out = apply(group, [{"op": "add", "path": "members", "value": value}], GROUP_TYPE)
    value[0]["value"] = "changed"
    assert member_ids(out)[-1] == "u9"


def test_full_patch_body_shape() -> None:
    body = patch_body({"op": "replace", "value": {"active": False}})
    resource = {"schemas": [USER_SCHEMA], "id": "u1", "userName": "a", "active": True}
    assert apply(resource, body["Operations"], USER_TYPE)["active"] is False


def test_azure_dotted_key_in_pathless_value(user: dict[str, Any]) -> None:
    ops = [{"op": "Replace", "value": {"name.givenName": "Janet", "displayName": "Janet Doe"}}]
    out = apply(user, ops, USER_TYPE)
    assert out["name"] == {"givenName": "Janet", "familyName": "Doe"}
    assert out["displayName"] == "Janet Doe"


def test_replace_filtered_values_with_null_removes_them(user: dict[str, Any]) -> None:
    user["emails"].append({"value": "jane@home.example", "type": "home"})
    ops = [{"op": "replace", "path": 'emails[type eq "home"]', "value": None}]
    assert apply(user, ops, USER_TYPE)["emails"] == user["emails"][:1]


def test_filter_forbidden_by_the_rfc_is_invalid_path(user: dict[str, Any]) -> None:
    ops = [{"op": "remove", "path": "emails[primary gt true]"}]
    with pytest.raises(errors.InvalidPath):
        apply(user, ops, USER_TYPE)


def test_value_filter_on_single_valued_attribute_is_invalid_path(user: dict[str, Any]) -> None:
    with pytest.raises(errors.InvalidPath):
        apply(user, [{"op": "remove", "path": 'name[givenName eq "Jane"]'}], USER_TYPE)


def test_member_filter_is_exact_about_the_id(group: dict[str, Any]) -> None:
    group["members"].append({"value": "u22"})
    out = apply(group, [{"op": "remove", "path": 'members[value eq "u2"]'}], GROUP_TYPE)
    assert member_ids(out) == ["u1", "u3", "u22"]


def test_error_is_a_scim_error_body(group: dict[str, Any]) -> None:
    with pytest.raises(errors.ScimError) as exc:
        apply(group, [{"op": "remove", "path": "displayName"}], GROUP_TYPE)
    body = exc.value.to_body()
    assert body["status"] == "400"
    assert body["scimType"] == "mutability"
    assert "displayName" in body["detail"]


def test_setting_primary_through_a_filter_demotes_the_others(user: dict[str, Any]) -> None:
    """RFC 7644 §3.5.2: setting "primary" true sets it false on the other values."""
    user["emails"].append({"value": "jane@home.example", "type": "home"})
    ops = [{"op": "replace", "path": 'emails[type eq "home"].primary', "value": "True"}]
    out = apply(user, ops, USER_TYPE)
    assert [e.get("primary") for e in out["emails"]] == [False, True]


def test_operations_over_the_limit_are_413_and_change_nothing(group: dict[str, Any]) -> None:
    from scim_desktop.core.patch import MAX_OPERATIONS

    before = copy.deepcopy(group)
    rename = {"op": "replace", "path": "displayName", "value": "Renamed"}
    assert apply(group, [rename] * MAX_OPERATIONS, GROUP_TYPE)["displayName"] == "Renamed"
    with pytest.raises(errors.PayloadTooLarge) as exc:
        apply(group, [rename] * (MAX_OPERATIONS + 1), GROUP_TYPE)
    assert exc.value.status == 413
    assert f"the limit is {MAX_OPERATIONS:,}" in exc.value.detail
    assert group == before


def test_operations_applied_alone_have_a_work_limit(user: dict[str, Any]) -> None:
    """Each add that makes a value primary is applied alone and passes over every value: past
    MAX_PATCH_WORK values visited the PATCH is a 413 (split it), and nothing changes."""
    from scim_desktop.core.patch import MAX_PATCH_WORK

    user["emails"] = [{"value": f"e{i}@example.com"} for i in range(MAX_PATCH_WORK // 100)]
    before = copy.deepcopy(user)

    def primary_adds(n: int) -> list[dict[str, Any]]:
        return [
            {"op": "add", "path": "emails", "value": [{"value": f"n{i}@x", "primary": True}]}
            for i in range(n)
        ]

    out = apply(user, primary_adds(50), USER_TYPE)  # 50 x ~3,000 values: within the limit
    assert [e["value"] for e in out["emails"] if e.get("primary")] == ["n49@x"]
    with pytest.raises(errors.PayloadTooLarge) as exc:
        apply(user, primary_adds(150), USER_TYPE)  # ~150 x 3,000 > 300,000
    assert f"the limit is {MAX_PATCH_WORK:,}" in exc.value.detail
    assert user == before
