"""A small Okta look-alike: replays the requests Okta's SCIM client sends (OKTA.md).

Used by the window's "Simulate Okta" demo button and ``gui --screenshot --demo``, and handy in
scripts. It speaks plain HTTP with the exact headers and bodies Okta uses, so whatever the
server shows for it is what a real tenant would produce.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
OKTA_USER_AGENT = "Okta SCIM Client 1.0.0"
#: The schemas Okta's entitlement management reads types of (its OIG guide).
ROLE_SCHEMA = "urn:okta:scim:schemas:core:1.0:Role"
ENTITLEMENT_SCHEMA = "urn:okta:scim:schemas:core:1.0:Entitlement"
#: Okta reads entitlement values in pages of this size, like a user import.
ENTITLEMENT_PAGE = 100

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


@dataclass
class SimResult:
    status: int
    body: Any


class OktaSimulator:
    """Sends Okta-shaped requests to a SCIM base URL. Blocking; run it on a worker thread."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        basic: tuple[str, str] | None = None,
        domain: str = "example.com",
        pause_s: float = 0.0,
        stop: threading.Event | None = None,
        timeout: float = 65.0,
        governance: bool | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if self._https else 80)
        self._base = parts.path.rstrip("/")
        self._headers = {
            "User-Agent": OKTA_USER_AGENT,
            "Accept": "application/scim+json",
            "Accept-Charset": "utf-8",
            "Content-Type": "application/scim+json; charset=utf-8",
        }
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        elif basic:
            raw = base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
            self._headers["Authorization"] = f"Basic {raw}"
        self.domain = domain
        self.pause_s = pause_s
        self.stop = stop or threading.Event()
        self.timeout = timeout
        #: Run the entitlement (OIG) part of the demo: True / False, or None to run it when
        #: the server declares entitlement types in /ResourceTypes.
        self.governance = governance
        self._conn: http.client.HTTPConnection | None = None

    # --- transport ---------------------------------------------------------------------------
    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(self, method: str, path: str, body: Any = None) -> SimResult:
        if self.stop.is_set():
            raise InterruptedError("simulation stopped")
        data = json.dumps(body).encode() if body is not None else None
        headers = dict(self._headers)
        if data is None:
            headers.pop("Content-Type")
        try:
            conn = self._connection()
            conn.request(method, self._base + path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException):
            self.close()  # a dropped connection (fault) or a restart: Okta just sees a failure
            return SimResult(0, None)
        if self.pause_s:
            time.sleep(self.pause_s)
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return SimResult(resp.status, parsed)

    # --- Okta flows (OKTA.md) ------------------------------------------------------------------
    def test_credentials(self) -> None:
        self.request("GET", "/Users?startIndex=1&count=2")
        self.request("GET", "/Groups?startIndex=1&count=100")

    def existence_check(self, user_name: str) -> SimResult:
        text = quote(f'userName eq "{user_name}"', safe="")
        return self.request("GET", f"/Users?filter={text}&startIndex=1&count=100")

    def user_body(self, given: str, family: str) -> dict[str, Any]:
        # García -> garcia: strip accents the way most directories build addresses.
        plain = unicodedata.normalize("NFKD", f"{given}.{family}".lower())
        email = plain.encode("ascii", "ignore").decode() + f"@{self.domain}"
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

    def create_user(self, given: str, family: str) -> dict[str, Any] | None:
        """Assign a user: existence check, then create (or link when it exists)."""
        body = self.user_body(given, family)
        check = self.existence_check(body["userName"])
        found = (check.body or {}).get("Resources") or []
        if found:
            uid = found[0]["id"]
            current = self.request("GET", f"/Users/{uid}").body
            if current:
                return self.request("PUT", f"/Users/{uid}", {**current, **body}).body
            return None
        created = self.request("POST", "/Users", body)
        if created.status == 429:
            # Okta pauses the task and retries (after Retry-After); a demo retries at once.
            created = self.request("POST", "/Users", body)
        return created.body if created.status == 201 else None

    def update_profile(self, user: dict[str, Any], **changes: Any) -> None:
        current = self.request("GET", f"/Users/{user['id']}").body
        if current:
            self.request("PUT", f"/Users/{user['id']}", {**current, **changes})

    def set_active(self, user: dict[str, Any], active: bool) -> None:
        ops = [{"op": "replace", "value": {"active": active}}]
        self.request(
            "PATCH", f"/Users/{user['id']}", {"schemas": [PATCH_SCHEMA], "Operations": ops}
        )

    def password_sync(self, user: dict[str, Any]) -> None:
        ops = [{"op": "replace", "value": {"password": "New-Okta-Password-2!"}}]
        self.request(
            "PATCH", f"/Users/{user['id']}", {"schemas": [PATCH_SCHEMA], "Operations": ops}
        )

    def import_users(self, count: int = 100) -> None:
        start = 1
        while not self.stop.is_set():
            page = self.request("GET", f"/Users?startIndex={start}&count={count}").body or {}
            start += count
            if start > page.get("totalResults", 0):
                break

    def push_group(self, name: str, members: Iterable[dict[str, Any]]) -> None:
        members = [m for m in members if m]
        text = quote(f'displayName eq "{name}"', safe="")
        found = self.request("GET", f"/Groups?filter={text}&startIndex=1&count=100").body or {}
        if found.get("Resources"):
            gid = found["Resources"][0]["id"]
        else:
            created = self.request(
                "POST", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": name, "members": []}
            )
            if created.status != 201:
                return
            gid = created.body["id"]
        value = [{"value": m["id"], "display": m["userName"]} for m in members]
        self._patch_group(gid, [{"op": "add", "path": "members", "value": value}])
        self._patch_group(gid, [{"op": "replace", "value": {"id": gid, "displayName": name}}])
        if len(members) > 1:
            victim = members[-1]["id"]
            self._patch_group(gid, [{"op": "remove", "path": f'members[value eq "{victim}"]'}])
            self._patch_group(gid, [{"op": "replace", "value": {"id": gid, "displayName": name}}])
        self._patch_group(gid, [{"op": "replace", "path": "members", "value": value[:-1]}])

    def _patch_group(self, gid: str, ops: list[dict[str, Any]]) -> None:
        self.request("PATCH", f"/Groups/{gid}", {"schemas": [PATCH_SCHEMA], "Operations": ops})

    # --- entitlement management (Okta Identity Governance) ---------------------------------------
    def discover_entitlements(self) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Okta's discovery when entitlement management is on: GET /ResourceTypes, GET
        /Schemas (for the extension URNs it does not know), then every declared role or
        entitlement endpoint: the Runscope check (``count=1&startIndex=1``) and the import
        in pages of 100. Returns each type with its values; [] without any."""
        listed = self.request("GET", "/ResourceTypes").body or {}
        types = [
            t
            for t in listed.get("Resources") or []
            if isinstance(t, dict)
            and t.get("schema") in (ROLE_SCHEMA, ENTITLEMENT_SCHEMA)
            and isinstance(t.get("endpoint"), str)
        ]
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
        start = 1
        while not self.stop.is_set():
            page = self.request(
                "GET", f"{endpoint}?startIndex={start}&count={ENTITLEMENT_PAGE}"
            ).body
            if not isinstance(page, dict):
                break
            resources = [r for r in page.get("Resources") or [] if isinstance(r, dict)]
            values += resources
            start += ENTITLEMENT_PAGE
            if not resources or start > page.get("totalResults", 0):
                break
        return values

    def _patch_user(self, uid: str, ops: list[dict[str, Any]]) -> SimResult:
        return self.request(
            "PATCH", f"/Users/{uid}", {"schemas": [PATCH_SCHEMA], "Operations": ops}
        )

    def grant(self, user: dict[str, Any], rtype: dict[str, Any], value: dict[str, Any]) -> None:
        """Grant one value the way Okta does: PATCH add on ``roles`` or ``entitlements``."""
        if rtype.get("schema") == ROLE_SCHEMA:
            item = {"value": value["id"], "display": value.get("displayName", value["id"])}
            self._patch_user(user["id"], [{"op": "add", "path": "roles", "value": [item]}])
        else:
            item = {
                "value": value["id"],
                "display": value.get("displayName", value["id"]),
                "type": rtype.get("name") or rtype.get("id"),
            }
            self._patch_user(user["id"], [{"op": "add", "path": "entitlements", "value": [item]}])

    def revoke(self, user: dict[str, Any], rtype: dict[str, Any], value: dict[str, Any]) -> None:
        """Revoke one value: PATCH remove with a value filter, as Okta sends it."""
        attribute = "roles" if rtype.get("schema") == ROLE_SCHEMA else "entitlements"
        path = f'{attribute}[value eq "{value["id"]}"]'
        self._patch_user(user["id"], [{"op": "remove", "path": path}])

    def put_grants(
        self, user: dict[str, Any], grants: list[tuple[dict[str, Any], dict[str, Any]]]
    ) -> None:
        """Okta's other way: a PUT of the whole user carrying its roles and entitlements."""
        current = self.request("GET", f"/Users/{user['id']}").body
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
        body = {k: v for k, v in current.items() if k != "meta"}
        self.request(
            "PUT", f"/Users/{user['id']}", {**body, "roles": roles, "entitlements": entitlements}
        )

    def run_governance(
        self, users: list[dict[str, Any]], say: Callable[[str], None] | None = None
    ) -> bool:
        """Discovery, then a few grants and revokes over ``users``. False (after the one GET
        /ResourceTypes) when the server declares no entitlement types."""
        say = say or (lambda text: None)
        say("Reading the app's entitlements")
        found = self.discover_entitlements()
        pairs = [(t, v) for t, values in found for v in values[:3]]
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

    # --- a whole demo --------------------------------------------------------------------------
    def run_demo(self, progress: Callable[[str], None] | None = None) -> None:
        """A realistic sequence: test the connection, assign users, update, deactivate and
        reactivate, sync a password, push a group, read the app's entitlements and grant and
        revoke some (when the server has a catalog, see :attr:`governance`), import."""
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
                say("Deactivating and reactivating a user")
                self.set_active(users[1 % len(users)], False)
                self.set_active(users[1 % len(users)], True)
                self.set_active(users[-1], False)
                say("Syncing a password")
                self.password_sync(users[0])
            say("Pushing a group")
            self.push_group("Sales", users[:4])
            if self.governance is not False:
                self.run_governance(users, say)
            say("Importing users")
            self.import_users()
            say("Done")
        except InterruptedError:
            say("Stopped")
        finally:
            self.close()
