"""Okta insight for entitlements (OKTA.md, "Entitlements, roles and custom attributes (Okta
Identity Governance)"): Okta reading the app's resource types and extension schemas, importing
the values of each catalog endpoint (/Roles, /Licenses, ...) page by page, and granting or
revoking them through the user's ``roles`` and ``entitlements`` (RFC 7643 §4.1.2) by PATCH
(``add`` on the attribute, ``remove`` with a ``[value eq "..."]`` filter) and by PUT of the
whole user.

The catalog endpoints are whatever the loaded catalog file declares, so the classifier is told
them with :meth:`_EntitlementSteps.set_catalog`. Without a catalog, /ResourceTypes and /Schemas
stay plain discovery steps and other paths are not Okta's, as before; requests to /Users and
/Groups never look at the catalog (grants are recognised from the PATCH or PUT itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scim_desktop.core.okta_common import (
    _int,
    _operations,
    _patch_attr,
    _q,
    _Recent,
    _State,
    _Target,
    _target,
)
from scim_desktop.core.okta_groups import _member_ids
from scim_desktop.core.okta_steps import OktaRequest, Step, _make, _not_okta
from scim_desktop.core.paths import ci_get

#: The user attributes Okta grants through (OKTA.md; RFC 7643 §4.1.2).
GRANT_ATTRS = ("roles", "entitlements")
#: OKTA.md: the schema of a role type, and of every other entitlement type.
ROLE_URN = "urn:okta:scim:schemas:core:1.0:Role"
ENTITLEMENT_URN = "urn:okta:scim:schemas:core:1.0:Entitlement"
#: OKTA.md: the schemas Okta knows without reading /Schemas (compared lower-case).
KNOWN_SCHEMAS = frozenset(
    urn.lower()
    for urn in (
        ROLE_URN,
        ENTITLEMENT_URN,
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    )
)
#: The step ids this part gives; note_response asks it about their answers.
ENTITLEMENT_STEPS = frozenset(
    {
        "read_resource_types",
        "read_extension_schemas",
        "import_entitlements",
        "read_entitlement_value",
        "grant_entitlement",
        "revoke_entitlement",
    }
)
_DISCOVERY_STEPS = {"/resourcetypes": "read_resource_types", "/schemas": "read_extension_schemas"}
_RUNSCOPE = (
    "count=1&startIndex=1 is what Okta's Runscope entitlements test sends; it requires "
    "itemsPerPage 1 and a value with id and displayName."
)


@dataclass(frozen=True, slots=True)
class _CatalogTarget:
    """A path under a catalog endpoint."""

    endpoint: str  # as the catalog spells it, e.g. "/Roles"
    type: str  # the resource type's name, e.g. "Role"
    id: str | None = None  # a value's id for {endpoint}/{id}


def _clean_path(path: str) -> str:
    """``path`` without query, trailing slash or the conventional /scim/v2 base, as
    ``okta_common._parse_target`` tolerates them; always starting with "/"."""
    clean = path.split("?", 1)[0].strip().rstrip("/")
    if clean.lower().startswith("/scim/v2/"):
        clean = clean[len("/scim/v2") :]
    return clean if clean.startswith("/") else "/" + clean


class _EntitlementSteps(_State):
    """The entitlement part of :class:`~scim_desktop.core.okta.OktaClassifier`."""

    #: lower-case endpoint -> (endpoint as declared, type name); replaced whole, never mutated.
    _catalog: dict[str, tuple[str, str]]
    #: path -> its catalog target (or None), for recent paths; emptied with each new catalog.
    _catalog_targets: dict[str, _CatalogTarget | None]
    #: value id -> displayName, learned from import pages and grants, to name revoked values.
    _values: _Recent[str, str]

    def set_catalog(self, endpoints: Mapping[str, str]) -> None:
        """Tell the classifier the catalog's endpoints: each path relative to the SCIM base
        (e.g. "/Roles", matched case-insensitively, a missing leading "/" added) mapped to its
        resource type's name (e.g. "Role"). An empty mapping means no catalog. Call it when a
        catalog is loaded, edited or removed, on the thread that classifies."""
        catalog: dict[str, tuple[str, str]] = {}
        for endpoint, type_name in endpoints.items():
            clean = _clean_path(str(endpoint))
            if clean != "/":
                catalog[clean.lower()] = (clean, str(type_name))
        self._catalog_targets = {}
        self._catalog = catalog

    @property
    def catalog(self) -> dict[str, str]:
        """The catalog endpoints as last set (endpoint -> type name)."""
        return dict(self._catalog.values())

    def _catalog_target(self, path: str) -> _CatalogTarget | None:
        cache = self._catalog_targets
        if path in cache:
            return cache[path]
        clean = _clean_path(path)
        found: _CatalogTarget | None = None
        hit = self._catalog.get(clean.lower())
        if hit is not None:
            found = _CatalogTarget(hit[0], hit[1])
        else:
            head, _sep, rid = clean.rpartition("/")
            hit = self._catalog.get(head.lower())
            if hit is not None and rid:
                found = _CatalogTarget(hit[0], hit[1], rid)
        if len(cache) >= 1024:
            cache.clear()
        cache[path] = found
        return found

    # --- classification ------------------------------------------------------------------------
    def _entitlement_step(self, req: OktaRequest, method: str, target: _Target) -> Step | None:
        """The step of a request to a discovery or catalog path while a catalog is set, None
        when it is not one of them (the caller goes on as without a catalog)."""
        if target.kind == "discovery":
            step_id = _DISCOVERY_STEPS.get(target.name.lower())
            if step_id is None or method != "GET":
                return None
            rest = _clean_path(req.path).split("/", 2)[2:]
            which = rest[0] if rest else None
            note = ""
            if step_id == "read_extension_schemas" and which and which.lower() in KNOWN_SCHEMAS:
                note = f"Okta knows {which} already and does not need to read it."
            return _make(step_id, note, which=f" ({which})" if which else "")
        found = self._catalog_target(req.path)
        if found is None:
            return None
        if method != "GET":
            return _not_okta(
                f"{method} {found.endpoint}" + ("/{id}" if found.id else ""),
                f"it only reads the values of {found.type}; the app owns them, and grants go to "
                "the user's roles and entitlements.",
            )
        if found.id is not None:
            name = self._values.get(found.id, req.time)
            return _make(
                "read_entitlement_value",
                type=found.type,
                value=f'"{name}" (id {found.id})' if name else found.id,
                endpoint=found.endpoint,
            )
        if _q(req.query, "filter") is not None:
            return _not_okta(
                f"GET {found.endpoint}?filter=…",
                f"it imports every value of {found.type} page by page, without a filter.",
            )
        start = _int(_q(req.query, "startIndex"))
        count = _int(_q(req.query, "count"))
        fields = {"type": found.type, "endpoint": found.endpoint}
        if start == 1 and count == 1:
            return _make("import_entitlements", _RUNSCOPE, page=1, start=1, count=1, **fields)
        return self._import_page(
            req, found.endpoint.lower(), start, count, "import_entitlements", **fields
        )

    def _patch_grant_step(self, req: OktaRequest, who: str) -> Step | None:
        """A PATCH /Users/{id} that adds to or removes from roles or entitlements (OKTA.md:
        add on the attribute, remove with a value filter), else None."""
        granted: list[tuple[str, Any]] = []  # (attribute, value object)
        revoked: list[tuple[str, Any]] = []
        hows: list[str] = []
        others: list[str] = []
        notes: list[str] = []
        for op, path, value in _operations(req.body) or []:
            if path is None:
                pairs = list(value.items()) if isinstance(value, dict) else []
                items = [(k.lower().rsplit(":", 1)[-1], k, v) for k, v in pairs]
                filt = None
            else:
                attr, filt = _patch_attr(path)
                items = [(attr, path, value)]
            for attr, shown, val in items:
                if attr not in GRANT_ATTRS:
                    others.append(shown)
                    continue
                values = val if isinstance(val, list) else [] if val is None else [val]
                hows.append(f"op {op} " + (f"on path {shown}" if path else f"of {shown}"))
                if op in ("add", "replace"):
                    granted += [(attr, v) for v in values]
                    if op == "replace":
                        notes.append(
                            "Okta grants with op add and revokes with op remove and a value "
                            f"filter; a replace drops every {attr} value it does not list."
                        )
                elif op == "remove":
                    # roles[value eq "x"], also with "and type eq ..." (only the values count).
                    ids = _member_ids(filt)
                    if ids:
                        revoked += [(attr, {"value": v}) for v in ids]
                    elif values:
                        revoked += [(attr, v) for v in values]
                    else:
                        revoked.append((attr, {"value": f"every {attr} value"}))
                        notes.append(
                            f"This remove has no value filter, so it removes every {attr} value; "
                            'Okta always names the value it revokes (path [value eq "..."]).'
                        )
                else:
                    others.append(shown)
        if not granted and not revoked:
            return None
        if others:
            notes.append(f"It also changes {', '.join(others[:5])}.")
        return self._grant_step(req, who, granted, revoked, "PATCH, " + "; ".join(hows), notes)

    def _put_grant_step(
        self, req: OktaRequest, who: str, body: dict[str, Any], before: dict[str, Any] | None
    ) -> tuple[Step | None, str]:
        """A PUT /Users/{id} whose roles or entitlements differ from the user as last seen:
        the grant or revoke step, or None and a note for the update step."""
        sent = [a for a in GRANT_ATTRS if ci_get(body, a) is not None]
        if not sent:
            return None, ""
        if before is None:
            return None, (
                f"It carries {' and '.join(sent)}; no earlier read of this user was seen, so "
                "what it grants or revokes cannot be told."
            )
        granted: list[tuple[str, Any]] = []
        revoked: list[tuple[str, Any]] = []
        for attr in sent:
            new, old = _by_value(ci_get(body, attr)), _by_value(ci_get(before, attr))
            granted += [(attr, item) for key, item in new.items() if key not in old]
            revoked += [(attr, item) for key, item in old.items() if key not in new]
        if not granted and not revoked:
            return None, ""
        notes = ["It also sets the password."] if ci_get(body, "password") is not None else []
        how = f"PUT of the whole user with its {' and '.join(sent)}"
        return self._grant_step(req, who, granted, revoked, how, notes), ""

    def _grant_step(
        self,
        req: OktaRequest,
        who: str,
        granted: list[tuple[str, Any]],
        revoked: list[tuple[str, Any]],
        how: str,
        notes: list[str],
    ) -> Step:
        now = req.time
        user_id = _target(req.path).id or "?"
        name = self._names.get(user_id, now)
        user = name if name else f"user {user_id}"
        main, other = (granted, revoked) if granted else (revoked, [])
        if other:
            notes.insert(0, f"It also revokes {self._values_text(other, now, long=True)}.")
        attrs = sorted({attr for attr, _item in main}, key=GRANT_ATTRS.index)
        return _make(
            "grant_entitlement" if granted else "revoke_entitlement",
            " ".join(notes),
            values=self._values_text(main, now),
            user=user,
            what=self._values_text(main, now, long=True),
            who=who,
            how=how,
            attrs=" and ".join(attrs),
        )

    def _values_text(self, items: list[tuple[str, Any]], now: float, long: bool = False) -> str:
        """``Administrator, Pro license`` (long: ``role "Administrator" (role-admin), ...``)."""
        texts: list[str] = []
        for attr, item in items:
            value = ci_get(item, "value") if isinstance(item, dict) else item
            value = str(value) if value is not None else "?"
            display = ci_get(item, "display") if isinstance(item, dict) else None
            name = display if isinstance(display, str) and display else self._values.get(value, now)
            if not long:
                texts.append(name or value)
                continue
            kind = ci_get(item, "type") if isinstance(item, dict) else None
            kind = kind if isinstance(kind, str) and kind else attr.removesuffix("s")
            texts.append(f'{kind} "{name}" ({value})' if name else f"{kind} {value}")
        text = ", ".join(texts[:3])
        return text + (f" and {len(texts) - 3} more" if len(texts) > 3 else "")

    # --- what Okta does with the answer --------------------------------------------------------
    def _entitlement_error_note(self, req: OktaRequest, step: Step, status: int, body: Any) -> str:
        """What Okta does with a 3xx-5xx answer to an entitlement step."""
        detail = ci_get(body, "detail")
        shown = f' Okta shows the admin: "{detail}".' if isinstance(detail, str) and detail else ""
        sid = step.id
        if sid in ("grant_entitlement", "revoke_entitlement") and 400 <= status < 500:
            return (
                f"{status}: Okta fails the assignment task for this user and shows its error "
                "message on the task; the grant stays pending until an admin retries it." + shown
            )
        if sid == "import_entitlements" and status >= 500:
            return (
                f"{status}: the entitlement import fails; Okta keeps the values it had on the "
                "Governance tab, and an admin runs the import again." + shown
            )
        if sid in ("read_resource_types", "read_extension_schemas") and status >= 400:
            return (
                f"{status}: Okta cannot discover the app's entitlements, so enabling entitlement "
                "management fails and nothing appears on the Governance tab." + shown
            )
        if sid == "read_entitlement_value" and status == 404:
            return "404: the value is not in the app (any more)." + shown
        return ""

    def _entitlement_success_note(self, req: OktaRequest, step: Step, body: Any) -> str:
        """What Okta learns from a 2xx answer to a discovery or import step."""
        sid = step.id
        resources = ci_get(body, "Resources")
        if sid == "read_resource_types":
            types = resources if isinstance(resources, list) else [body]
            okta_types: list[str] = []
            unknown: list[str] = []
            for rtype in types:
                for ext in ci_get(rtype, "schemaExtensions") or ():
                    urn = ci_get(ext, "schema")
                    if isinstance(urn, str) and urn.lower() not in KNOWN_SCHEMAS:
                        unknown.append(urn)
                schema = ci_get(rtype, "schema")
                if isinstance(schema, str) and schema.lower() in (
                    ROLE_URN.lower(),
                    ENTITLEMENT_URN.lower(),
                ):
                    okta_types.append(f"{ci_get(rtype, 'name')} ({ci_get(rtype, 'endpoint')})")
            schemas = (
                f"Okta reads /Schemas for the extensions it does not know "
                f"({', '.join(dict.fromkeys(unknown))}). "
                if unknown
                else ""
            )
            if not okta_types:
                return (
                    f"{schemas}No type declares Okta's Role or Entitlement schema: the "
                    "Governance tab stays empty."
                )
            return f"{schemas}Okta imports the values of {', '.join(okta_types)} next."
        if sid == "import_entitlements":
            notes: list[str] = []
            per_page = ci_get(body, "itemsPerPage")
            if isinstance(resources, list) and per_page != len(resources):
                notes.append(
                    f"itemsPerPage is {per_page!r} but the page holds {len(resources)} values; "
                    "it must be the real page size."
                )
            if _int(_q(req.query, "count")) == 1 and _int(_q(req.query, "startIndex")) == 1:
                notes.append(
                    "itemsPerPage is 1, as the Runscope entitlements test requires."
                    if per_page == 1
                    else "The Runscope entitlements test fails: itemsPerPage is not 1."
                )
            return " ".join(notes)
        return ""

    def _remember_entitlements(self, req: OktaRequest, step: Step, body: Any) -> None:
        """What a 2xx answer to an entitlement step teaches: the total of a catalog endpoint and
        the names of its values (import pages with pre-encoded values teach only the total)."""
        now = req.time
        found = self._catalog_target(req.path) if self._catalog else None
        if found is None:
            return
        resources = ci_get(body, "Resources")
        total = ci_get(body, "totalResults")
        if step.id == "import_entitlements" and isinstance(total, int):
            self._totals.put(found.endpoint.lower(), total, now)
        for value in resources if isinstance(resources, list) else [body]:
            if isinstance(value, dict):
                vid, name = ci_get(value, "id"), ci_get(value, "displayName")
                if isinstance(vid, str) and isinstance(name, str) and vid and name:
                    self._values.put(vid, name, now)


def _by_value(values: Any) -> dict[str, Any]:
    """A multi-valued attribute's items by their ``value`` (strings accepted as the value)."""
    out: dict[str, Any] = {}
    for item in values if isinstance(values, list) else []:
        value = ci_get(item, "value") if isinstance(item, dict) else item
        if isinstance(value, (str, int)):
            out[str(value)] = item
    return out


def grants_on_page(body: Any) -> str:
    """For a user import page: how many users on it carry roles or entitlements (users sent
    pre-encoded cannot be looked into and are not counted)."""
    resources = ci_get(body, "Resources")
    holders = 0
    for user in resources if isinstance(resources, list) else []:
        if isinstance(user, dict) and any(ci_get(user, a) for a in GRANT_ATTRS):
            holders += 1
    if not holders:
        return ""
    return (
        f"{holders} of the users on this page carry roles or entitlements: Okta records them "
        "as the users' grants on the app's Governance tab."
    )
