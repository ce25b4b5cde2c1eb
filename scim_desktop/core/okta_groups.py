"""Okta insight for /Groups: import pages, the test-credentials page and group push (lookup,
create, rename, add / remove / replace members, AIW PUT, delete; OKTA.md, "Group push").
"""

from __future__ import annotations

from typing import Any

from scim_desktop.core.errors import ScimError
from scim_desktop.core.filter import And, Compare, Filter, Or, parse
from scim_desktop.core.okta_common import (
    _GROUP_SCHEMA,
    _eq_value,
    _int,
    _operations,
    _patch_attr,
    _plural,
    _q,
    _State,
    _Target,
)
from scim_desktop.core.okta_steps import (
    TEST_CREDENTIALS_MAX_COUNT,
    TEST_CREDENTIALS_WINDOW_S,
    OktaRequest,
    Step,
    _make,
    _not_okta,
)
from scim_desktop.core.paths import ci_get


class _GroupSteps(_State):
    """The /Groups part of :class:`~scim_desktop.core.okta.OktaClassifier`."""

    # /Groups
    def _groups_collection(self, req: OktaRequest, method: str, target: _Target) -> Step:
        now = req.time
        if method == "POST":
            name = ci_get(req.body, "displayName")
            return _make(
                "push_group_create",
                group=name if isinstance(name, str) else "(no displayName)",
                members=_members_text(ci_get(req.body, "members")),
            )
        if method != "GET":
            return _not_okta(
                f"{method} /Groups", f"{method} on /Groups without an id is not a SCIM operation."
            )
        text = _q(req.query, "filter")
        start = _int(_q(req.query, "startIndex"))
        count = _int(_q(req.query, "count"))
        if text is not None:
            try:
                node = parse(text)
            except ScimError as exc:
                return _not_okta(
                    "GET /Groups?filter=…",
                    f"the filter does not parse ({exc.detail}); it only sends "
                    'displayName eq "...".',
                )
            name = _eq_value(node, "displayname", _GROUP_SCHEMA)
            if name is not None:
                return _make("push_group_lookup", group=name)
            return _not_okta(
                "GET /Groups?filter=…",
                'it filters groups only with displayName eq "..." (the push group lookup).',
            )
        first_page = start is None or start <= 1
        if first_page and count is not None and count <= TEST_CREDENTIALS_MAX_COUNT:
            return _make("test_credentials", request=f"GET /Groups?startIndex=1&count={count}")
        if (
            first_page
            and _q(req.query, "excludedAttributes") is None
            and self._last_test_credentials is not None
            and 0 <= now - self._last_test_credentials <= TEST_CREDENTIALS_WINDOW_S
        ):
            # OKTA.md, "Test API credentials": GET /Users?startIndex=1&count=2 and
            # GET /Groups?startIndex=1&count=100 come together.
            return _make(
                "test_credentials", request=f"GET /Groups?startIndex=1&count={count or 100}"
            )
        return self._import_page(req, "groups", start, count)

    # /Groups/{id}
    def _group_resource(self, req: OktaRequest, method: str, group_id: str) -> Step:
        now = req.time
        group = self._group(group_id, now)
        if method == "GET":
            return _make("read_group", group=group)
        if method == "DELETE":
            return _make("push_group_delete", group=group)
        if method == "PUT":
            name = ci_get(req.body, "displayName")
            return _make(
                "push_group_put",
                group=name if isinstance(name, str) else group,
                members=_members_text(ci_get(req.body, "members")),
            )
        if method == "PATCH":
            return self._group_patch(req, group)
        return _not_okta(
            f"{method} /Groups/{{id}}", f"{method} is not a SCIM operation on a group."
        )

    def _group_patch(self, req: OktaRequest, group: str) -> Step:
        """OKTA.md, "Group push": rename, add, remove, Push Now replace. Several operations in
        one request are labelled by the most significant: replace > remove > add > rename."""
        ops = _operations(req.body)
        if not ops:
            return _not_okta(
                "PATCH /Groups/{id}", "the body carries no PatchOp Operations (RFC 7644 §3.5.2)."
            )
        rename: str | None = None
        replaced: list[Any] | None = None
        added: list[Any] = []
        removed: list[str] = []
        remove_all = False
        others: list[str] = []
        for op, path, value in ops:
            if path is None:
                if not isinstance(value, dict):
                    others.append(f"{op} without path")
                    continue
                for key, val in value.items():
                    low = key.lower()
                    if low == "displayname" and isinstance(val, str) and op != "remove":
                        rename = val
                    elif low == "members" and op == "replace":
                        replaced = val if isinstance(val, list) else []
                    elif low == "members" and op == "add" and isinstance(val, list):
                        added += val
                    elif low not in ("id", "schemas"):
                        others.append(key)
                continue
            attr, flt = _patch_attr(path)
            if attr == "members":
                if op == "add":
                    added += value if isinstance(value, list) else [value]
                elif op == "replace":
                    replaced = value if isinstance(value, list) else []
                elif op == "remove":
                    if flt is not None:
                        removed += _member_ids(flt) or ["(filtered members)"]
                    elif isinstance(value, list) and value:
                        removed += [str(ci_get(m, "value") or "?") for m in value]
                    else:
                        remove_all = True
                else:
                    others.append(path)
            elif attr == "displayname" and op in ("replace", "add") and isinstance(value, str):
                rename = value
            else:
                others.append(path)
        extra: list[str] = []
        if rename is not None and (replaced is not None or added or removed or remove_all):
            extra.append(f'It also renames the group to "{rename}".')
        if others:
            extra.append(
                f"Okta's group push only renames and changes members; it never sends "
                f"{', '.join(others[:5])}."
            )
        if replaced is not None:
            if not replaced:
                extra.insert(0, "The list is empty: the group must be emptied, not refused.")
            if added or removed:
                extra.append("It also adds or removes members.")
            return _make(
                "push_group_replace_members",
                " ".join(extra),
                target=group,
                members=_members_text(replaced),
            )
        if removed or remove_all:
            if remove_all:
                extra.insert(
                    0,
                    "This remove has no member filter, so it would remove every member; Okta "
                    "always names the member it removes.",
                )
            if added:
                extra.append(f"It also adds {_member_names(added)}.")
            n = len(removed)
            return _make(
                "push_group_remove_members",
                " ".join(extra),
                count=n if not remove_all else "all",
                members_word="member" if n == 1 and not remove_all else "members",
                removed=", ".join(self._who(m, req.time) for m in removed[:3])
                + (f" and {len(removed) - 3} more" if len(removed) > 3 else "")
                if removed
                else "every member",
                target=group,
            )
        if added:
            n = len(added)
            return _make(
                "push_group_add_members",
                " ".join(extra),
                count=n,
                members_word="member" if n == 1 else "members",
                added=_member_names(added),
                target=group,
            )
        if rename is not None:
            return _make("push_group_rename", " ".join(extra), group=rename, target=group)
        return _not_okta(
            "PATCH /Groups/{id}",
            "its group push only renames and changes members"
            + (f", never {', '.join(others[:5])}." if others else "."),
        )


def _member_ids(node: Filter | None) -> list[str]:
    """The user ids named by a ``members[value eq "..."]`` filter (or a chain of them)."""
    if isinstance(node, Compare) and node.op == "eq" and node.path.attr.lower() == "value":
        return [str(node.value)]
    if isinstance(node, (And, Or)):
        return _member_ids(node.left) + _member_ids(node.right)
    return []


def _members_text(value: Any) -> str:
    if not isinstance(value, list):
        return "no members"
    if not value:
        return "no members"
    return _plural(len(value), "member")


def _member_names(value: Any, limit: int = 3) -> str:
    """``jane@example.com, 00u2...`` for member objects ``{"value", "display"}``."""
    if not isinstance(value, list):
        return "no members"
    names: list[str] = []
    for member in value:
        shown = ci_get(member, "display") or ci_get(member, "value")
        names.append(str(shown) if shown is not None else "?")
    text = ", ".join(names[:limit])
    if len(names) > limit:
        text += f" and {len(names) - limit} more"
    return text or "no members"
