"""A small Okta look-alike: replays the requests Okta's SCIM client sends (OKTA.md).

Used by the window's "Simulate Okta" demo button and ``gui --screenshot --demo``, by
``scim-desktop check`` (``scim_desktop/check/``), and handy in scripts. It speaks plain HTTP with
the exact headers and bodies Okta uses, so whatever the server shows for it is what a real
tenant would produce.

The module holds the one copy of Okta's requests: the body builders (:func:`user_body`,
:func:`active_patch`, :func:`rename_ops`, ...), the transport (:meth:`OktaSimulator.request`,
which reports each exchange to an observer), one method per Okta step (existence check, create,
read, PUT, PATCH, group push steps, entitlement discovery, the SPEC suite's 12 steps), and the
demo (:meth:`OktaSimulator.run_demo`) built from them. The checker judges the same requests.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import secrets
import socket
import ssl
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from scim_desktop.server.events import escape_controls

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
OKTA_USER_AGENT = "Okta SCIM Client 1.0.0"
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
#: The most of one answer the client reads (the proxy judges answers up to the same 4 MB,
#: server/proxy.MAX_JUDGED): a server sending an endless or a 2 GB body is no answer ("more
#: than 4 MB") instead of the client's memory growing with it.
MAX_ANSWER = 4 * 1024 * 1024

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


@dataclass
class SimResult:
    """An answer: ``status`` 0 when none came (``error`` says why)."""

    status: int
    body: Any  # the parsed JSON body, None when empty or not JSON
    text: str = ""  # the body as received
    headers: dict[str, str] = field(default_factory=dict)
    duration_s: float = 0.0
    error: str = ""


#: How often a request's watcher looks at the stop flag (a window's Cancel) and the deadline.
_WATCH_S = 0.25
#: An error text quotes at most this much of what the server sent.
MAX_ERROR_TEXT = 200


def _error_text(exc: BaseException) -> str:
    """An exception as one line of text. http.client quotes the server's bytes in some (a bad
    status line, a header line too long): escape sequences, CR and LF from a hostile server
    must not reach a terminal or split the checker's one-line error."""
    text = escape_controls(f"{type(exc).__name__}: {exc}")
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 1] + "…"


def _size(n: int) -> str:
    """A byte count in words: 4 MB, 256 KB."""
    return f"{n // 1024 // 1024} MB" if n >= 1024 * 1024 else f"{n // 1024} KB"


class _Expired(Exception):
    """A request's deadline passed before its answer was whole."""


@dataclass(frozen=True, slots=True)
class Sent:
    """One exchange as the observer sees it (headers not yet redacted)."""

    method: str
    url: str
    headers: dict[str, str]
    body: str  # the request body as sent ("" for none)
    result: SimResult


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


class OktaSimulator:
    """Sends Okta-shaped requests to a SCIM base URL. Blocking; run it on a worker thread."""

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
        parts = urlsplit(base_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if self._https else 80)
        self._base = parts.path.rstrip("/")
        self._origin = f"{parts.scheme or 'http'}://{parts.netloc}"
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
        self._headers.update(headers or {})  # "HTTP Header" auth with another header name
        self.domain = domain
        self.pause_s = pause_s
        self.stop = stop or threading.Event()
        #: The deadline for a whole request, connect to the last byte of the answer (Okta
        #: closes the socket after 60 s whatever arrived meanwhile).
        self.timeout = timeout
        self.max_answer = max_answer
        self.max_walk_bytes = max_walk_bytes
        #: Why the last import walk stopped before the end totalResults promised ("after 1000
        #: pages", "after 16 MB of answers"); "" when it reached the end or a page ended it.
        self.walk_cut = ""
        #: Run the entitlement (OIG) part of the demo: True / False, or None to run it when
        #: the server declares entitlement types in /ResourceTypes.
        self.governance = governance
        self.ssl_context = ssl_context
        #: Called with every exchange, answered or not (the checker records them).
        self.on_exchange = on_exchange
        self._conn: http.client.HTTPConnection | None = None

    # --- transport ---------------------------------------------------------------------------
    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._https:
                # The system store verifies the certificate unless a context says otherwise.
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self.timeout, context=self.ssl_context
                )
            else:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=self.timeout
                )
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def url(self, path: str) -> str:
        return self._origin + self._base + path

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        user_agent: str | None = None,
        content_type: str | None = None,
        authorization: str | None = None,
    ) -> SimResult:
        """Send one request with Okta's headers (``user_agent``, ``content_type`` and
        ``authorization`` replace them: the SPEC suite's differ)."""
        if self.stop.is_set():
            raise InterruptedError("simulation stopped")
        data = json.dumps(body).encode() if body is not None else None
        headers = dict(self._headers)
        if user_agent:
            headers["User-Agent"] = user_agent
        if authorization is not None:
            headers["Authorization"] = authorization
        if data is None:
            headers.pop("Content-Type", None)
        elif content_type:
            headers["Content-Type"] = content_type
        started = time.monotonic()
        try:
            status, raw, got = self._exchange(method, self._base + path, data, headers)
        except InterruptedError:
            self.close()
            raise
        except _Expired:
            self.close()
            waited = max(time.monotonic() - started, self.timeout)
            result = SimResult(
                0, None, duration_s=waited, error=f"no answer within {self.timeout:g} s"
            )
        except (OSError, http.client.HTTPException) as exc:
            self.close()  # a dropped connection (fault) or a restart: Okta just sees a failure
            took = time.monotonic() - started
            result = SimResult(0, None, duration_s=took, error=_error_text(exc))
        else:
            took = time.monotonic() - started
            if len(raw) > self.max_answer:
                self.close()  # the rest of the body is still coming: the connection is spent
                more = _size(self.max_answer)
                error = f"answered {status} with more than {more}: the rest was not read"
                result = SimResult(0, None, headers=got, duration_s=took, error=error)
            else:
                text = raw.decode("utf-8", errors="replace")
                try:
                    parsed = json.loads(raw) if raw else None
                except (ValueError, RecursionError):  # not JSON, or nested past the stack
                    parsed = None
                result = SimResult(status, parsed, text, got, took)
        if self.on_exchange is not None:
            sent = data.decode() if data else ""
            self.on_exchange(Sent(method, self.url(path), headers, sent, result))
        if self.pause_s:
            time.sleep(self.pause_s)
        return result

    def _exchange(
        self, method: str, target: str, data: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        """Send one request and read its answer (at most ``max_answer`` + 1 bytes of body)
        within ``timeout`` for the whole of it. http.client's timeout is per socket operation:
        a server trickling a byte a second, or sending 100 Continue without end (http.client
        skips those in a loop of its own), would hold it for ever. A watcher thread shuts the
        socket down at the deadline, which ends any read under way, and raises :class:`_Expired`
        then (also when the shut-down read ended a close-delimited body and looked like its
        end). It also watches :attr:`stop` (a window's Cancel): the request ends within a
        quarter of a second with InterruptedError instead of waiting for the deadline."""
        expired, stopped, done = threading.Event(), threading.Event(), threading.Event()
        conn = self._connection()
        deadline = time.monotonic() + self.timeout

        def watch() -> None:
            while not done.wait(max(0.0, min(_WATCH_S, deadline - time.monotonic()))):
                if self.stop.is_set():
                    stopped.set()
                elif time.monotonic() >= deadline:
                    expired.set()
                else:
                    continue
                sock = conn.sock
                if sock is not None:
                    with contextlib.suppress(OSError):
                        # socket.socket's own shutdown: an SSLSocket's would drop its TLS
                        # state under the reading thread.
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)
                return

        threading.Thread(target=watch, name="okta-sim-deadline", daemon=True).start()
        try:
            if conn.sock is None:
                conn.connect()  # its own timeout; the deadline is checked right after
            if stopped.is_set() or expired.is_set():
                raise OSError("ended before sending")
            conn.request(method, target, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read(self.max_answer + 1)
            got = {k: v for k, v in resp.getheaders()}
        except (OSError, http.client.HTTPException) as exc:
            if stopped.is_set():
                raise InterruptedError("simulation stopped") from None
            if expired.is_set() or isinstance(exc, TimeoutError):
                raise _Expired() from None
            raise
        finally:
            done.set()
        if stopped.is_set():  # the shut-down read ended a close-delimited body
            raise InterruptedError("simulation stopped")
        if expired.is_set():
            raise _Expired()
        return resp.status, raw, got

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
                self.walk_cut = f"after {_size(self.max_walk_bytes)} of answers"
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
