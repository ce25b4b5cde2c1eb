"""A small Okta look-alike: replays the requests Okta's SCIM client sends (OKTA.md).

Used by the window's "Simulate Okta" demo button and ``gui --screenshot --demo``, by
``scim-desktop check`` (``scim_desktop/check/``), and handy in scripts. It speaks plain HTTP with
the exact headers and bodies Okta uses, so whatever the server shows for it is what a real
tenant would produce.

The module holds the one copy of Okta's requests: the body builders (:func:`user_body`,
:func:`active_patch`, :func:`rename_ops`, ...), the transport (:meth:`OktaSimulator.request`,
inherited from ``okta_http.OktaHttp``, which reports each exchange to an observer; its names are
re-exported here), one method per Okta step (existence check, create,
read, PUT, PATCH, group push steps, entitlement discovery, the SPEC suite's 12 steps), and the
demo (:meth:`OktaSimulator.run_demo`) built from them. The checker judges the same requests.
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import quote

# The transport lives in okta_http; its public names are re-exported here, where callers
# have always imported them from.
from scim_desktop.okta_http import MAX_ANSWER as MAX_ANSWER
from scim_desktop.okta_http import MAX_ERROR_TEXT as MAX_ERROR_TEXT
from scim_desktop.okta_http import OKTA_USER_AGENT as OKTA_USER_AGENT
from scim_desktop.okta_http import OktaHttp, Sent, SimResult, size_text

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
#: OKTA.md, "Okta's own test suites": the SPEC suite's User-Agent and Content-Type.
SPEC_USER_AGENT = "OKTA SCIM Integration"
SPEC_CONTENT_TYPE = "application/json"
#: OKTA.md, "Okta's own test suites": the made-up id the SPEC suite's last step reads.
SPEC_UNKNOWN_ID = "00919288221112222"
#: The schemas Okta's entitlement management reads types of (its OIG guide).
ROLE_SCHEMA = "urn:okta:scim:schemas:core:1.0:Role"
ENTITLEMENT_SCHEMA = "urn:okta:scim:schemas:core:1.0:Entitlement"
#: Okta reads entitlement values in pages of this size, like a user import.
ENTITLEMENT_PAGE = 100
#: OKTA.md, "Import users": Okta's page size.
IMPORT_PAGE = 100
#: An import walk stops after this many pages (100,000 resources of 100).
MAX_IMPORT_PAGES = 1000
#: ...or once its answers total this many bytes: the walk's pages are kept, parsed, until it is
#: judged, and JSON of tiny objects is ~20 times bigger parsed, so 1000 pages of 4 MB took the
#: checker past 6 GB (MemoryError). 16 MB is 100 pages of 1,600 users of ~1 KB each.
MAX_IMPORT_BYTES = 16 * 1024 * 1024

PEOPLE = [
    ("Jane", "Doe"),
    ("Ravi", "Patel"),
    ("Sofia", "García"),
    ("Kwame", "Mensah"),
    ("Hana", "Tanaka"),
    ("Lucas", "Schmidt"),
    ("Amara", "Okafor"),
    ("Theo", "Lindqvist"),
]
#: The person the demo's SPEC suite creates, whom Okta later finds and links (OKTA.md, Create
#: step 3: "If step 1 finds the user, Okta links to it instead").
LINKED_PERSON = ("Mei", "Chen")


# --- Okta's bodies (OKTA.md) ---------------------------------------------------------------------
def email_for(given: str, family: str, domain: str) -> str:
    # García -> garcia: strip accents the way most directories build addresses.
    plain = unicodedata.normalize("NFKD", f"{given}.{family}".lower())
    return plain.encode("ascii", "ignore").decode() + f"@{domain}"


def user_body(
    given: str, family: str, domain: str = "example.com", *, user_name: str | None = None
) -> dict[str, Any]:
    """OKTA.md, "User lifecycle", Create step 2: the body Okta POSTs for a new user."""
    email = user_name or email_for(given, family, domain)
    return {
        "schemas": [USER_SCHEMA],
        "userName": email,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": True, "value": email, "type": "work"}],
        "displayName": f"{given} {family}",
        "locale": "en-US",
        "externalId": "00u" + format(abs(hash(email)) % 16**17, "017x"),
        "groups": [],
        "password": "Okta-placeholder-1!",
        "active": True,
    }


def spec_user_body(user_name: str, given: str, family: str) -> dict[str, Any]:
    """The SPEC suite's "create Okta user with realistic values" body."""
    return {
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": True, "value": user_name, "type": "work"}],
        "displayName": f"{given} {family}",
        "active": True,
        "password": "Spec-Test-Password-1!",
    }


def quoted(value: str) -> str:
    """A filter's comparison value: a JSON string (RFC 7644 §3.4.2.2), so an id or a name
    holding a quote or a backslash stays one value (a server's ids are anyone's text)."""
    return json.dumps(value, ensure_ascii=False)


def user_filter_path(user_name: str, *, paged: bool = True) -> str:
    """OKTA.md, Create step 1: ``GET /Users?filter=userName eq "..."&startIndex=1&count=100``."""
    text = quote(f"userName eq {quoted(user_name)}", safe="")
    return f"/Users?filter={text}" + (f"&startIndex=1&count={IMPORT_PAGE}" if paged else "")


def group_filter_path(name: str) -> str:
    """OKTA.md, "Group push": the lookup when the target group id is unknown."""
    text = quote(f"displayName eq {quoted(name)}", safe="")
    return f"/Groups?filter={text}&startIndex=1&count={IMPORT_PAGE}"


def segment(rid: str) -> str:
    """A resource id as one path segment (RFC 3986 §3.3): ids come from the server, and one
    holding ``/``, ``?``, ``#``, a space or CR LF must not reach another path, a query or
    another request line; ``.`` and ``..`` alone would be dot segments (§5.2.4), so they are
    encoded too."""
    text = quote(rid, safe="")
    return text.replace(".", "%2E") if text in (".", "..") else text


def patch_body(ops: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schemas": [PATCH_SCHEMA], "Operations": ops}


def active_ops(active: bool) -> list[dict[str, Any]]:
    """OKTA.md, "Deactivate" / "Reactivate": a replace with no path."""
    return [{"op": "replace", "value": {"active": active}}]


def password_ops(password: str = "New-Okta-Password-2!") -> list[dict[str, Any]]:
    """OKTA.md, "Password sync" (template apps)."""
    return [{"op": "replace", "value": {"password": password}}]


def group_body(name: str) -> dict[str, Any]:
    """OKTA.md, "Group push": Okta creates every group with ``"members": []``."""
    return {"schemas": [GROUP_SCHEMA], "displayName": name, "members": []}


def member_values(members: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Member objects as Okta sends them: value and display, no type."""
    return [{"value": m["id"], "display": m.get("userName", m["id"])} for m in members]


def add_members_ops(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"op": "add", "path": "members", "value": values}]


def remove_member_ops(user_id: str) -> list[dict[str, Any]]:
    return [{"op": "remove", "path": f"members[value eq {quoted(user_id)}]"}]


def replace_members_ops(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ "Push Now": overwrite the members; ``[]`` must empty the group."""
    return [{"op": "replace", "path": "members", "value": values}]


def rename_ops(group_id: str, name: str) -> list[dict[str, Any]]:
    """Okta's rename, also sent after every membership change: no path."""
    return [{"op": "replace", "value": {"id": group_id, "displayName": name}}]


def grant_ops(rtype: dict[str, Any], value: dict[str, Any]) -> list[dict[str, Any]]:
    """Grant one value the way Okta does: PATCH add on ``roles`` or ``entitlements``."""
    item = {"value": value["id"], "display": value.get("displayName", value["id"])}
    if rtype.get("schema") == ROLE_SCHEMA:
        return [{"op": "add", "path": "roles", "value": [item]}]
    item["type"] = rtype.get("name") or rtype.get("id")
    return [{"op": "add", "path": "entitlements", "value": [item]}]


def revoke_ops(rtype: dict[str, Any], value: dict[str, Any]) -> list[dict[str, Any]]:
    """Revoke one value: PATCH remove with a value filter, as Okta sends it."""
    attribute = "roles" if rtype.get("schema") == ROLE_SCHEMA else "entitlements"
    return [{"op": "remove", "path": f"{attribute}[value eq {quoted(value['id'])}]"}]


def objects(value: Any) -> list[dict[str, Any]]:
    """The objects in a JSON list (nothing when ``value`` is not a list: a server may send
    anything where a list belongs)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def entitlement_types(listed: Any) -> list[dict[str, Any]]:
    """The resource types of a /ResourceTypes answer that Okta treats as roles or entitlements."""
    resources = listed.get("Resources") if isinstance(listed, dict) else None
    return [
        t
        for t in objects(resources)
        if t.get("schema") in (ROLE_SCHEMA, ENTITLEMENT_SCHEMA)
        and isinstance(t.get("endpoint"), str)
    ]


def with_id(body: Any) -> dict[str, Any] | None:
    """``body`` when it is a resource with a string id (what later requests need)."""
    return body if isinstance(body, dict) and isinstance(body.get("id"), str) else None


def without_meta(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k != "meta"}


def resources_of(result: SimResult) -> list[dict[str, Any]]:
    """The objects of a ListResponse's ``Resources`` (none when the answer has no list)."""
    body = result.body
    return objects(body.get("Resources") if isinstance(body, dict) else None)


def total_of(result: SimResult) -> int | None:
    """A ListResponse's ``totalResults`` when it is a JSON integer."""
    total = result.body.get("totalResults") if isinstance(result.body, dict) else None
    return total if isinstance(total, int) and not isinstance(total, bool) else None


class OktaSimulator(OktaHttp):
    """Sends Okta-shaped requests to a SCIM base URL (the transport is :class:`OktaHttp`).
    Blocking; run it on a worker thread."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        basic: tuple[str, str] | None = None,
        headers: dict[str, str] | None = None,
        domain: str = "example.com",
        pause_s: float = 0.0,
        stop: threading.Event | None = None,
        timeout: float = 65.0,
        max_answer: int = MAX_ANSWER,
        max_walk_bytes: int = MAX_IMPORT_BYTES,
        governance: bool | None = None,
        ssl_context: ssl.SSLContext | None = None,
        on_exchange: Callable[[Sent], None] | None = None,
    ) -> None:
        super().__init__(
            base_url,
            token=token,
            basic=basic,
            headers=headers,
            pause_s=pause_s,
            stop=stop,
            timeout=timeout,
            max_answer=max_answer,
            ssl_context=ssl_context,
            on_exchange=on_exchange,
        )
        self.domain = domain
        self.max_walk_bytes = max_walk_bytes
        #: Why the last import walk stopped before the end totalResults promised ("after 1000
        #: pages", "after 16 MB of answers"); "" when it reached the end or a page ended it.
        self.walk_cut = ""
        #: Run the entitlement (OIG) part of the demo: True / False, or None to run it when
        #: the server declares entitlement types in /ResourceTypes.
        self.governance = governance

    # --- one Okta step each (OKTA.md) ------------------------------------------------------------
    def test_credentials(self) -> tuple[SimResult, SimResult]:
        """The Test API Credentials button: a small user list, then the first group page."""
        users = self.request("GET", "/Users?startIndex=1&count=2")
        return users, self.request("GET", f"/Groups?startIndex=1&count={IMPORT_PAGE}")

    def existence_check(self, user_name: str) -> SimResult:
        return self.request("GET", user_filter_path(user_name))

    def user_body(self, given: str, family: str) -> dict[str, Any]:
        return user_body(given, family, self.domain)

    def post_user(self, body: dict[str, Any]) -> SimResult:
        return self.request("POST", "/Users", body)

    def get_user(self, uid: str) -> SimResult:
        return self.request("GET", f"/Users/{segment(uid)}")

    def put_user(self, uid: str, body: dict[str, Any]) -> SimResult:
        return self.request("PUT", f"/Users/{segment(uid)}", body)

    def patch_user(self, uid: str, ops: list[dict[str, Any]]) -> SimResult:
        return self.request("PATCH", f"/Users/{segment(uid)}", patch_body(ops))

    def delete_user(self, uid: str) -> SimResult:
        """Okta never deletes a user (it deactivates); the checker removes what it created."""
        return self.request("DELETE", f"/Users/{segment(uid)}")

    def create_user(self, given: str, family: str) -> dict[str, Any] | None:
        """Assign a user: existence check, then create (or link when it exists)."""
        body = self.user_body(given, family)
        found = resources_of(self.existence_check(body["userName"]))
        if found and isinstance(found[0].get("id"), str):
            uid = found[0]["id"]
            current = self.get_user(uid).body
            if isinstance(current, dict):
                return with_id(self.put_user(uid, {**without_meta(current), **body}).body)
            return None
        created = self.post_user(body)
        if created.status == 429:
            # Okta pauses the task and retries (after Retry-After); a demo retries at once.
            created = self.post_user(body)
        return with_id(created.body) if created.status == 201 else None

    def update_profile(
        self, user: dict[str, Any], clear: Iterable[str] = (), **changes: Any
    ) -> SimResult | None:
        """GET then a full PUT with ``changes``; attributes in ``clear`` are left out, which is
        how a full-object PUT pushes an empty value (OIN test plan, "push empty values")."""
        current = self.get_user(user["id"]).body
        if not isinstance(current, dict):
            return None
        gone = set(clear)
        body = {k: v for k, v in without_meta(current).items() if k not in gone}
        return self.put_user(user["id"], {**body, **changes})

    def set_active(self, user: dict[str, Any], active: bool) -> SimResult:
        return self.patch_user(user["id"], active_ops(active))

    def password_sync(self, user: dict[str, Any]) -> SimResult:
        return self.patch_user(user["id"], password_ops())

    def import_users(self, count: int = IMPORT_PAGE) -> list[SimResult]:
        return self._import("/Users", count)

    def import_groups(self, count: int = IMPORT_PAGE) -> list[SimResult]:
        """OKTA.md, "Group push": Okta lists groups "often with excludedAttributes=members"."""
        return self._import("/Groups", count, "&excludedAttributes=members")

    def _import(self, endpoint: str, count: int, extra: str = "") -> list[SimResult]:
        pages: list[SimResult] = []
        start = 1
        read = 0
        self.walk_cut = ""
        # A server whose totalResults never ends (or whose pages repeat) must not keep a
        # simulation going for ever, nor fill the memory: MAX_IMPORT_PAGES pages at most, and
        # max_walk_bytes of answers (see walk_cut).
        while not self.stop.is_set():
            page = self.request("GET", f"{endpoint}?startIndex={start}&count={count}{extra}")
            pages.append(page)
            read += len(page.text)
            start += count
            # A page without resources ends the walk too, whatever totalResults claims.
            if page.status != 200 or not resources_of(page) or start > (total_of(page) or 0):
                break
            if len(pages) >= MAX_IMPORT_PAGES:
                self.walk_cut = f"after {MAX_IMPORT_PAGES} pages"
                break
            if read >= self.max_walk_bytes:
                self.walk_cut = f"after {size_text(self.max_walk_bytes)} of answers"
                break
        return pages

    def lookup_group(self, name: str) -> SimResult:
        return self.request("GET", group_filter_path(name))

    def create_group(self, name: str) -> SimResult:
        return self.request("POST", "/Groups", group_body(name))

    def get_group(self, gid: str) -> SimResult:
        return self.request("GET", f"/Groups/{segment(gid)}")

    def patch_group(self, gid: str, ops: list[dict[str, Any]]) -> SimResult:
        return self.request("PATCH", f"/Groups/{segment(gid)}", patch_body(ops))

    def delete_group(self, gid: str) -> SimResult:
        """Unlink a push group and delete it in the app."""
        return self.request("DELETE", f"/Groups/{segment(gid)}")

    def push_group(self, name: str, members: Iterable[dict[str, Any]]) -> str | None:
        """Push a group: look it up, create it when absent, add members, then Okta's rename
        after the change; remove one member; Push Now. Returns the group's id."""
        members = [m for m in members if m]
        found = resources_of(self.lookup_group(name))
        if found and isinstance(found[0].get("id"), str):
            gid = found[0]["id"]
        else:
            created = with_id(self.create_group(name).body)
            if created is None:
                return None
            gid = created["id"]
        value = member_values(members)
        self.patch_group(gid, add_members_ops(value))
        self.patch_group(gid, rename_ops(gid, name))
        if len(members) > 1:
            self.patch_group(gid, remove_member_ops(members[-1]["id"]))
            self.patch_group(gid, rename_ops(gid, name))
        self.patch_group(gid, replace_members_ops(value[:-1]))
        return gid

    # --- entitlement management (Okta Identity Governance) ---------------------------------------
    def discover_entitlements(self) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Okta's discovery when entitlement management is on: GET /ResourceTypes, GET
        /Schemas (for the extension URNs it does not know), then every declared role or
        entitlement endpoint: the Runscope check (``count=1&startIndex=1``) and the import
        in pages of 100. Returns each type with its values; [] without any."""
        types = entitlement_types(self.request("GET", "/ResourceTypes").body)
        if not types:
            return []
        self.request("GET", "/Schemas")
        found = []
        for rtype in types:
            endpoint = "/" + rtype["endpoint"].lstrip("/")
            self.request("GET", f"{endpoint}?count=1&startIndex=1")
            found.append((rtype, self.import_values(endpoint)))
        return found

    def import_values(self, endpoint: str) -> list[dict[str, Any]]:
        """Every value of one entitlement endpoint, paged like a user import."""
        values: list[dict[str, Any]] = []
        for page in self._import(endpoint, ENTITLEMENT_PAGE):
            values += resources_of(page)
        return values

    def grant(
        self, user: dict[str, Any], rtype: dict[str, Any], value: dict[str, Any]
    ) -> SimResult:
        return self.patch_user(user["id"], grant_ops(rtype, value))

    def revoke(
        self, user: dict[str, Any], rtype: dict[str, Any], value: dict[str, Any]
    ) -> SimResult:
        return self.patch_user(user["id"], revoke_ops(rtype, value))

    def put_grants(
        self, user: dict[str, Any], grants: list[tuple[dict[str, Any], dict[str, Any]]]
    ) -> None:
        """Okta's other way: a PUT of the whole user carrying its roles and entitlements."""
        current = self.get_user(user["id"]).body
        if not isinstance(current, dict):
            return
        roles = [
            {"value": v["id"], "display": v.get("displayName", v["id"])}
            for t, v in grants
            if t.get("schema") == ROLE_SCHEMA
        ]
        entitlements = [
            {
                "value": v["id"],
                "display": v.get("displayName", v["id"]),
                "type": t.get("name") or t.get("id"),
            }
            for t, v in grants
            if t.get("schema") != ROLE_SCHEMA
        ]
        body = without_meta(current)
        self.put_user(user["id"], {**body, "roles": roles, "entitlements": entitlements})

    def run_governance(
        self, users: list[dict[str, Any]], say: Callable[[str], None] | None = None
    ) -> bool:
        """Discovery, then a few grants and revokes over ``users``. False (after the one GET
        /ResourceTypes) when the server declares no entitlement types."""
        say = say or (lambda text: None)
        say("Reading the app's entitlements")
        found = self.discover_entitlements()
        pairs = [(t, v) for t, values in found for v in values[:3] if with_id(v)]
        if not pairs or not users:
            return bool(found)
        roles = [(t, v) for t, v in pairs if t.get("schema") == ROLE_SCHEMA]
        others = [(t, v) for t, v in pairs if t.get("schema") != ROLE_SCHEMA]
        say("Granting roles and entitlements")
        first, second = users[0], users[1 % len(users)]
        for rtype, value in (roles[:2] + others[:2])[:3]:
            self.grant(first, rtype, value)
        if roles:
            self.grant(second, *roles[0])
        if others:
            self.grant(second, *others[-1])
        say("Revoking a grant")
        self.revoke(first, *(roles or others)[0])
        if len(users) > 2:
            say("Updating grants with a PUT")
            self.put_grants(users[2], (roles[-1:] + others[:1]) or pairs[:1])
        return True

    # --- Okta's SPEC test suite (OKTA.md, "Okta's own test suites") ------------------------------
    def spec_request(
        self, method: str, path: str, body: Any = None, *, authorization: str | None = None
    ) -> SimResult:
        """A request as the Runscope SPEC suite sends it: its User-Agent, plain JSON."""
        return self.request(
            method,
            path,
            body,
            user_agent=SPEC_USER_AGENT,
            content_type=SPEC_CONTENT_TYPE,
            authorization=authorization,
        )

    def spec_suite(
        self,
        user_name: str,
        given: str = "Spec",
        family: str = "Tester",
        *,
        seed: Callable[[], object] | None = None,
    ) -> Iterator[tuple[str, SimResult]]:
        """The 12 SPEC steps in Runscope's order, each yielded as (key, answer) as soon as it
        is answered; the keys are ``core/okta_spec.py``'s. ``user_name`` is the user it creates
        (and filters for upper-cased). The suite needs a user to exist before it starts: when
        the first list is empty, ``seed`` (if given) is called to create one and the list is
        sent again."""
        listed = self.spec_request("GET", "/Users?count=1&startIndex=1")
        if not resources_of(listed) and listed.status == 200 and seed is not None:
            seed()
            listed = self.spec_request("GET", "/Users?count=1&startIndex=1")
        yield "list_users", listed
        first = next(iter(resources_of(listed)), {})
        if isinstance(first.get("id"), str):
            yield "get_user", self.spec_request("GET", f"/Users/{segment(first['id'])}")
        absent = f"spec-absent-{secrets.token_hex(6)}@example.com"
        yield "filter_absent", self.spec_request("GET", user_filter_path(absent, paged=False))
        yield "unknown_id", self.spec_request("GET", f"/Users/{secrets.token_hex(12)}")
        body = spec_user_body(user_name, given, family)
        created = self.spec_request("POST", "/Users", body)
        yield "create", created
        uid = created.body.get("id") if isinstance(created.body, dict) else None
        if isinstance(uid, str) and uid:
            yield "read_back", self.spec_request("GET", f"/Users/{segment(uid)}")
        yield "filter_created", self.spec_request("GET", user_filter_path(user_name, paged=False))
        upper = user_filter_path(user_name.upper(), paged=False)
        yield "filter_upper", self.spec_request("GET", upper)
        yield "create_again", self.spec_request("POST", "/Users", body)
        yield "list_groups", self.spec_request("GET", "/Groups")
        wrong = f"Bearer wrong-{secrets.token_hex(8)}"
        yield "bad_auth", self.spec_request("GET", "/Users", authorization=wrong)
        yield "fixed_unknown_id", self.spec_request("GET", f"/Users/{SPEC_UNKNOWN_ID}")

    # --- a whole demo --------------------------------------------------------------------------
    def run_demo(self, progress: Callable[[str], None] | None = None) -> None:
        """A realistic session that touches every lifecycle step traffic can show (the
        coverage checklist, core/coverage.py): test the connection, assign users, update a
        profile and push an empty value, deactivate and reactivate, sync a password, Okta's
        SPEC suite, link a user who is already in the app, push a group (add, remove, rename,
        Push Now, an empty group, unlink and delete), import groups, read the app's
        entitlements and grant and revoke some (when the server has a catalog, see
        :attr:`governance`), import users."""
        say = progress or (lambda text: None)
        try:
            say("Testing API credentials")
            self.test_credentials()
            users = []
            for given, family in PEOPLE:
                say(f"Assigning {given} {family}")
                user = self.create_user(given, family)
                if user:
                    users.append(user)
            if users:
                say("Updating a profile")
                self.update_profile(users[0], title="VP Sales")
                say("Pushing an empty value")
                self.update_profile(users[0], clear=("title",))
                say("Deactivating and reactivating a user")
                self.set_active(users[1 % len(users)], False)
                self.set_active(users[1 % len(users)], True)
                self.set_active(users[-1], False)
                say("Syncing a password")
                self.password_sync(users[0])
            say("Running Okta's SPEC test suite")
            given, family = LINKED_PERSON
            for _step in self.spec_suite(email_for(given, family, self.domain), given, family):
                pass
            say(f"Assigning {given} {family}, already in the app: linking")
            linked = self.create_user(given, family)
            if linked:
                users.append(linked)
            self._demo_groups(users, say)
            if self.governance is not False:
                self.run_governance(users, say)
            say("Importing users")
            self.import_users()
            say("Done")
        except InterruptedError:
            say("Stopped")
        finally:
            self.close()

    def _demo_groups(self, users: list[dict[str, Any]], say: Callable[[str], None]) -> None:
        say("Pushing a group")
        gid = self.push_group("Sales", users[:4])
        if gid:
            self.get_group(gid)
            say("Renaming a pushed group")
            self.patch_group(gid, rename_ops(gid, "Sales EMEA"))
        say("Pushing an empty group")
        temp = self.push_group("Contractors", users[4:6])
        if temp:
            self.patch_group(temp, replace_members_ops([]))  # Push Now with no members
            self.patch_group(temp, rename_ops(temp, "Contractors"))
            say("Unlinking a push group and deleting it in the app")
            self.delete_group(temp)
        say("Importing groups")
        self.import_groups()
