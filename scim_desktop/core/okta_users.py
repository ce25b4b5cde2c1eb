"""Okta insight for /Users: the test-credentials call, existence check, create, link, read,
profile update, (de|re)activation, password sync and import pages (OKTA.md, "User
lifecycle", "Two kinds of Okta app", "Import users"), and a PUT that empties attributes (the OIN
test plan's "push empty values").
"""

from __future__ import annotations

from typing import Any

from scim_desktop.core.errors import ScimError
from scim_desktop.core.filter import parse
from scim_desktop.core.okta_common import (
    _USER_SCHEMA,
    _bool,
    _eq_value,
    _filter_attrs,
    _int,
    _operations,
    _patch_attr,
    _q,
    _Target,
)
from scim_desktop.core.okta_entitlements import _EntitlementSteps
from scim_desktop.core.okta_expect_answers import emptied_attrs
from scim_desktop.core.okta_steps import (
    TEST_CREDENTIALS_MAX_COUNT,
    OktaRequest,
    Step,
    _make,
    _not_okta,
)
from scim_desktop.core.paths import ci_get


class _UserSteps(_EntitlementSteps):
    """The /Users part of :class:`~scim_desktop.core.okta.OktaClassifier`."""

    # /Users
    def _users_collection(self, req: OktaRequest, method: str, target: _Target) -> Step:
        now = req.time
        if method == "POST":
            user = ci_get(req.body, "userName")
            user_text = user if isinstance(user, str) and user else "(no userName)"
            note = ""
            if isinstance(user, str) and user and not self._checked.get(user.lower(), now):
                note = "No existence check for it was seen first, which Okta always sends."
            return _make("create_user", note, user=user_text)
        if method != "GET":
            return _not_okta(
                f"{method} /Users", f"{method} on /Users without an id is not a SCIM operation."
            )
        text = _q(req.query, "filter")
        start = _int(_q(req.query, "startIndex"))
        count = _int(_q(req.query, "count"))
        if text is not None:
            try:
                node = parse(text)
            except ScimError as exc:
                return _not_okta(
                    "GET /Users?filter=…",
                    f'the filter does not parse ({exc.detail}); it only sends userName eq "...".',
                )
            user = _eq_value(node, "username", _USER_SCHEMA)
            if user is not None:
                return _make("create_user_existence_check", user=user)
            if any(a.startswith("meta.") for a in _filter_attrs(node)):
                why = "it never filters on meta.lastModified (or any meta attribute)."
            else:
                why = 'it filters users only with userName eq "..." (the existence check).'
            return _not_okta("GET /Users?filter=…", why)
        if (
            (start is None or start <= 1)
            and count is not None
            and count <= TEST_CREDENTIALS_MAX_COUNT
        ):
            return _make("test_credentials", request=f"GET /Users?startIndex=1&count={count}")
        return self._import_page(req, "users", start, count)

    # /Users/{id}
    def _user_resource(self, req: OktaRequest, method: str, user_id: str) -> Step:
        now = req.time
        who = self._who(user_id, now)
        linking = self._links.get(user_id, now) is not None or self._links.get("*", now) is not None
        if method == "GET":
            if linking:
                return _make("link_user_read", who=who)
            return _make("read_user", who=who)
        if method == "PUT":
            return self._user_put(req, user_id, who, linking)
        if method == "PATCH":
            return self._user_patch(req, who)
        if method == "DELETE":
            return _not_okta(
                "DELETE /Users/{id}",
                "it never deletes users: it deactivates them (PATCH or PUT with active "
                "false), and suspending a user in Okta sends nothing.",
            )
        return _not_okta(f"{method} /Users/{{id}}", f"{method} is not a SCIM operation on a user.")

    def _user_put(self, req: OktaRequest, user_id: str, who: str, linking: bool) -> Step:
        now = req.time
        body = req.body if isinstance(req.body, dict) else {}
        active = _bool(ci_get(body, "active"))
        password = ci_get(body, "password") is not None
        before = self._users.get(user_id, now)
        was = _bool(ci_get(before, "active"))
        if linking or self._link_read.get(user_id, now):
            notes = []
            if active is True and was is False:
                notes.append("It also reactivates the user (active was false).")
            if password:
                notes.append("It also sets the password.")
            return _make("link_user_put", " ".join(notes), who=who)
        if active is False and was is not False:
            note = (
                ""
                if was is True
                else "No earlier read of this user was seen; a PUT with active false is how "
                "AIW apps deactivate."
            )
            return _make("deactivate_user_put", note, who=who)
        if active is True and was is False:
            return _make("reactivate_user_put", who=who)
        grant, note = self._put_grant_step(req, who, body, before)
        if grant is not None:
            return grant
        if password:
            return _make("password_sync_put", note, who=who)
        emptied = emptied_attrs(before, body)
        if emptied:
            # The OIN test plan's "push empty values": what the user held, the PUT leaves out.
            also = [c for c in _changed_attrs(before, body) if c not in emptied]
            notes = [note] if note else []
            if also:
                notes.append(f"It also changes {_listed(also)}.")
            return _make(
                "push_empty_values_put",
                " ".join(notes),
                who=who,
                emptied=_listed(emptied),
                it="it" if len(emptied) == 1 else "them",
            )
        changed = _changed_attrs(before, body)
        if changed:
            note = f"Changed: {_listed(changed)}."
        elif before is None and not note:
            note = "No earlier read of this user was seen (Okta reads before it PUTs)."
        return _make("update_user_put", note, who=who)

    def _user_patch(self, req: OktaRequest, who: str) -> Step:
        ops = _operations(req.body)
        if not ops:
            return _not_okta(
                "PATCH /Users/{id}", "the body carries no PatchOp Operations (RFC 7644 §3.5.2)."
            )
        active: bool | None = None
        active_path = False
        password = False
        others: list[str] = []
        for op, path, value in ops:
            if path is None:
                # OKTA.md, "Deactivate": path-less replace with value {"active": false}.
                for key, val in value.items() if isinstance(value, dict) else ():
                    low = key.lower().rsplit(":", 1)[-1]
                    if low == "active" and _bool(val) is not None and op != "remove":
                        active = _bool(val)
                    elif low == "password" and op != "remove":
                        password = True
                    else:
                        others.append(key)
                continue
            attr, _flt = _patch_attr(path)
            if attr == "active" and op != "remove" and _bool(value) is not None:
                active, active_path = _bool(value), True
            elif attr == "password" and op != "remove":
                password = True
            else:
                others.append(path)
        notes: list[str] = []
        if active_path:
            notes.append('Here with path "active"; Okta itself sends the value with no path.')
        if others and (active is not None or password):
            notes.append(f"It also changes {', '.join(others[:5])}.")
        if active is False:
            return _make("deactivate_user_patch", " ".join(notes), who=who)
        if active is True:
            return _make("reactivate_user_patch", " ".join(notes), who=who)
        if password:
            return _make("password_sync_patch", " ".join(notes), who=who)
        grant = self._patch_grant_step(req, who) if others else None
        if grant is not None:
            return grant
        return _make("update_user_patch", attrs=", ".join(others[:5]) or "nothing", who=who)


def _listed(names: list[str]) -> str:
    """At most six attribute names, for an explanation."""
    return ", ".join(names[:6]) + (" …" if len(names) > 6 else "")


def _changed_attrs(before: dict[str, Any] | None, after: Any) -> list[str]:
    """Top-level (and one level of sub-) attributes whose value differs, ignoring id/meta/
    schemas/password; empty when unknown."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    skip = {"id", "meta", "schemas", "password"}
    old = {k.lower(): v for k, v in before.items()}
    changed: list[str] = []
    for key, value in after.items():
        low = key.lower()
        if low in skip:
            continue
        prev = old.get(low)
        if isinstance(value, dict) and isinstance(prev, dict):
            prev_sub = {k.lower(): v for k, v in prev.items()}
            changed += [f"{key}.{k}" for k, v in value.items() if prev_sub.get(k.lower()) != v]
        elif prev != value:
            changed.append(key)
    return changed
