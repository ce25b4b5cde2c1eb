"""Create, read, list, replace, patch and delete Users and Groups on a Repository.

Pure SCIM logic: plain data in, plain data out, :class:`ScimError` on bad input. The server
decodes requests, calls :class:`ScimService`, and makes the repository's writes durable
before it answers. A body is checked against its schema by ``core/validation.py`` first.

Stored records keep only what a client sent and the server owns (``meta`` without
``location``); everything that depends on the request or on other resources — ``meta.location``,
a user's ``groups``, a member's ``display`` and ``$ref`` — is filled in when rendering, so it
is right behind a tunnel and after a rename.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from scim_desktop.core import filter as scim_filter
from scim_desktop.core import patch as scim_patch
from scim_desktop.core.errors import (
    InvalidSyntax,
    InvalidValue,
    NotFound,
    PreconditionFailed,
    Uniqueness,
)
from scim_desktop.core.group_patch import (
    MemberPlan,
    apply_plan,
    member_ids,
    members_wanted,
    plan_member_patch,
    tables,
)
from scim_desktop.core.listing import (
    ListQuery,
    Page,
    Steps,
    list_response,
    paginate_steps,
    run_steps,
)
from scim_desktop.core.paths import ci_get, ci_key
from scim_desktop.core.projection import Projection, project
from scim_desktop.core.repository import GROUP, USER, Record, Repository
from scim_desktop.core.schemas import (
    PATCH_OP_SCHEMA,
    RESOURCE_TYPES,
    ResourceType,
)
from scim_desktop.core.validation import _Input, _parse_input, require_schemas

if TYPE_CHECKING:
    from scim_desktop.core.catalog import Catalog

#: ``Change.rtype`` of a catalog change (id "*"): the catalog is one thing, not a resource.
CATALOG = "Catalog"

#: Users whose encoded JSON is kept for list responses: about 0.9 KB each with the
#: bookkeeping (~90 MB at 100,000 users). Pages of a larger data set re-render the users
#: that fell out of the cache.
FRAGMENT_CACHE_SIZE = 150_000
#: Work between two checkpoints of a filter scan, in records x clauses: about 1-2 ms.
SCAN_WORK = 2048
#: A record whose resource_bulk x clauses is above this is evaluated in steps.
HEAVY_WORK = 20_000


@dataclass(frozen=True, slots=True)
class Change:
    """A resource that a request created, updated or deleted."""

    kind: str  # "created" | "updated" | "deleted"
    rtype: str  # "User" | "Group" | "Catalog" (CATALOG: the entitlement catalog, id "*")
    id: str


@dataclass(slots=True)
class Outcome:
    """What an operation produced: the rendered resource (if any) and what changed."""

    resource: dict[str, Any] | None = None
    version: str | None = None
    changes: list[Change] = field(default_factory=list)


_now_second = -1
_now_prefix = ""


def utc_now_iso() -> str:
    """Now as an RFC 3339 UTC timestamp with milliseconds, e.g. 2026-11-29T13:20:20.123Z.

    Called for every request and write: the part up to the seconds is formatted once a
    second (datetime formatting was ~6 % of a GET by id)."""
    global _now_second, _now_prefix
    now = time.time()
    second = int(now)
    if second != _now_second:
        stamp = datetime.fromtimestamp(second, UTC)
        _now_prefix = stamp.strftime("%Y-%m-%dT%H:%M:%S")
        _now_second = second
    return f"{_now_prefix}.{int((now - second) * 1000):03d}Z"


def hash_password(password: str, key: bytes) -> str:
    """A salted digest of ``password`` keyed with ``key``, ``hmac_sha256$<salt>$<digest>``
    (base64): HMAC-SHA256(key, salt + password).

    The server never checks passwords (Okta only sends them), so it keeps just enough to tell
    which password arrived, never the password. Why a keyed HMAC rather than a slow hash: the
    digest costs ~2 us where PBKDF2 at even 1,000 iterations cost ~310 us on the IOLoop thread
    (60 % of a create, issue 6), and a slow hash strong enough to matter (600,000
    iterations) would cost ~190 ms per create. The key lives outside the data file
    (``config.password_key_path_for``), so the data file alone gives an attacker nothing to
    brute-force, which 1,000 PBKDF2 iterations did not really prevent."""
    salt = os.urandom(12)
    digest = hmac.new(key, salt + password.encode(), hashlib.sha256).digest()
    b64 = base64.b64encode
    return f"hmac_sha256${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str, key: bytes | None = None) -> bool:
    """Constant-time check of ``password`` against a :func:`hash_password` value (or a
    ``pbkdf2_sha256$...`` one from data files written before keyed digests)."""
    try:
        scheme, *fields = stored.split("$")
        if scheme == "hmac_sha256" and key is not None:
            salt, digest = fields
            expected = base64.b64decode(digest)
            actual = hmac.new(
                key, base64.b64decode(salt) + password.encode(), hashlib.sha256
            ).digest()
        elif scheme == "pbkdf2_sha256":
            iterations, salt, digest = fields
            expected = base64.b64decode(digest)
            actual = hashlib.pbkdf2_hmac(
                "sha256", password.encode(), base64.b64decode(salt), int(iterations)
            )
        else:
            return False
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(expected, actual)


def _version(n: int) -> str:
    return f'W/"{n}"'


def _version_number(version: str | None) -> int:
    try:
        return int(str(version).removeprefix("W/").strip('"'))
    except ValueError:
        return 0


def etag_matches(header: str, version: str) -> bool:
    """Whether an If-Match / If-None-Match header lists ``version`` (weak comparison)."""
    if header.strip() == "*":
        return True
    wanted = version.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in header.split(","))


# --- filtering helpers ----------------------------------------------------------------------
def _mentions(node: scim_filter.Filter, attr: str) -> bool:
    if isinstance(node, scim_filter.Compare | scim_filter.Present | scim_filter.ValuePath):
        return node.path.attr.lower() == attr
    if isinstance(node, scim_filter.And | scim_filter.Or):
        return _mentions(node.left, attr) or _mentions(node.right, attr)
    if isinstance(node, scim_filter.Not):
        return _mentions(node.expr, attr)
    return False


class ScimService:
    """SCIM operations on a repository. Call on the thread that owns the repository."""

    def __init__(
        self,
        repo: Repository,
        *,
        now: Callable[[], str] = utc_now_iso,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        password_key: bytes | None = None,
    ) -> None:
        self.repo = repo
        #: Keys the digests of stored passwords (see hash_password). Without one (tests,
        #: in-memory use) a random key lives as long as this service.
        self.password_key = password_key if password_key is not None else os.urandom(32)
        self._now = now
        self._new_id = new_id
        #: id -> (record, base_url, group_writes, version, encoded user); see _user_fragment.
        self._fragments: OrderedDict[str, tuple[Record, str, int, str, orjson.Fragment]] = (
            OrderedDict()
        )
        #: The resource types by name; "User" carries the catalog's user schema extensions
        #: while a catalog is loaded (so they are validated, filtered and patched like core
        #: attributes).
        self.types: dict[str, ResourceType] = dict(RESOURCE_TYPES)
        #: The entitlement catalog (core/catalog.py), or None: then roles and entitlements
        #: are accepted as sent, as before catalogs existed.
        self.catalog: Catalog | None = None
        #: Okta's membership changes and renames of large groups without the general PATCH
        #: engine (core/group_patch.py); False only to compare both in tests.
        self.fast_group_patch = True

    # --- the entitlement catalog -------------------------------------------------------------
    def use_catalog(self, catalog: Catalog | None) -> None:
        """Serve ``catalog`` from now on, without storing it (start-up: it came from the
        store)."""
        self.catalog = catalog
        # Renderings do not depend on the catalog: the cached user fragments stay valid.
        self.types[USER] = catalog.user_type if catalog is not None else RESOURCE_TYPES[USER]

    def set_catalog(self, catalog: Catalog | None) -> Outcome:
        """Replace the catalog and store it with the next commit (the repository's
        ``put_catalog``, when it has one). Users' grants are left as they are: a grant of a
        value the new catalog lacks stays stored and returned (``Catalog.unknown_grants``
        finds them) until a client or the window revokes it; nothing is lost silently."""
        put = getattr(self.repo, "put_catalog", None)
        if put is not None:
            put(catalog.to_json() if catalog is not None else None)
        self.use_catalog(catalog)
        kind = "updated" if catalog is not None else "deleted"
        return Outcome(None, None, [Change(kind, CATALOG, "*")])

    # --- rendering ---------------------------------------------------------------------------
    def render(
        self,
        rtype: str,
        record: Record,
        base_url: str,
        projection: Projection | None = None,
    ) -> dict[str, Any]:
        """The resource as clients see it: internal keys dropped, derived attributes filled.
        A ``projection`` that leaves out a group's ``members`` (RFC 7644 §3.9) spares
        rendering them (O(members)); the caller still applies the projection."""
        out = {k: v for k, v in record.items() if k[:1] != "_"}
        rid = record["id"]
        meta = dict(record["meta"])
        meta["location"] = f"{base_url}{self.types[rtype].endpoint}/{rid}"
        if rtype == USER:
            groups = self.user_groups(rid)
            if groups:
                out["groups"] = [
                    {
                        "value": gid,
                        "$ref": f"{base_url}/Groups/{gid}",
                        "display": display,
                        "type": kind,
                    }
                    for gid, display, kind in groups
                ]
                meta["version"] = self._membership_version(record, groups)
        elif "members" in out:
            if projection is None or members_wanted(projection):
                out["members"] = self._render_members(out["members"], base_url)
            else:
                del out["members"]
        # "meta" goes last, as in the RFC's examples.
        out.pop("meta", None)
        out["meta"] = meta
        return out

    def _user_fragment(self, record: Record, base_url: str) -> orjson.Fragment:
        """A user rendered and encoded once, reused while it, its groups and the base URL
        are unchanged: an import walk or a page of 100 then costs little more than joining
        bytes.

        Valid while the record is the same object (stored records are immutable: an update
        stores a new dict) and no group was written since (``repo.group_writes``). After a
        group write the user's rendered version (which covers its derived groups and their
        names) is compared, and the encoding kept if it did not change."""
        rid = record["id"]
        epoch = self.repo.group_writes
        cached = self._fragments.get(rid)
        if cached is not None and cached[0] is record and cached[1] == base_url:
            if cached[2] == epoch:
                return cached[4]
            version = self.version_of(USER, record)
            if cached[3] == version:
                self._fragments[rid] = (record, base_url, epoch, version, cached[4])
                return cached[4]
        return self._keep_fragment(record, base_url, self.render(USER, record, base_url))

    def _keep_fragment(
        self, record: Record, base_url: str, rendered: dict[str, Any]
    ) -> orjson.Fragment:
        """Encode a rendered user for list pages and keep it (see _user_fragment). Writes
        call it with the rendering they answer with, so pages after an import or a bulk
        create need not render those users again."""
        rid = record["id"]
        # An exact-size copy: orjson.dumps hands back its whole working buffer (about 4 KB
        # for a 600-byte user), and these live in the cache (185 MB at 50,000 users).
        fragment = orjson.Fragment(bytes(memoryview(orjson.dumps(rendered))))
        fragments = self._fragments
        if rid not in fragments and len(fragments) >= FRAGMENT_CACHE_SIZE:
            # The oldest entry. An OrderedDict: deleting a plain dict's first key leaves a
            # tombstone that every later next(iter()) walks past (7 us per eviction at 50k).
            fragments.popitem(last=False)
        version = rendered["meta"]["version"]
        fragments[rid] = (record, base_url, self.repo.group_writes, version, fragment)
        return fragment

    def user_groups(self, rid: str) -> list[tuple[str, str, str]]:
        """(group id, displayName, "direct" | "indirect") for every group a user belongs to,
        directly or through nested groups (RFC 7643 §4.1.2)."""
        out: list[tuple[str, str, str]] = []
        seen: set[str] = set()
        frontier = [rid]
        kind = "direct"
        while frontier:
            parents: list[str] = []
            for member in frontier:
                for group in self.repo.groups_of(member):
                    gid = group["id"]
                    if gid in seen:
                        continue
                    seen.add(gid)
                    out.append((gid, group.get("displayName", ""), kind))
                    parents.append(gid)
            frontier = parents
            kind = "indirect"
        return out

    @staticmethod
    def _membership_version(record: Record, groups: list[tuple[str, str, str]]) -> str:
        """A user's version also changes when its derived ``groups`` do (RFC 7644 §3.14)."""
        digest = zlib.crc32("\x1f".join("\x1e".join(g) for g in groups).encode())
        return f'W/"{_version_number(record["meta"]["version"])}-{digest:08x}"'

    def version_of(self, rtype: str, record: Record) -> str:
        """The ETag of a stored resource, as rendered."""
        if rtype == USER:
            groups = self.user_groups(record["id"])
            if groups:
                return self._membership_version(record, groups)
        version: str = record["meta"]["version"]
        return version

    def _render_members(self, members: list[dict[str, Any]], base_url: str) -> list[dict[str, Any]]:
        """A group's members with ``$ref`` and ``display`` (one loop with local names: this
        runs per member of a group of up to 100,000s, on every read and write of it)."""
        found_in = tables(self.repo)
        get_user, get_group = found_in[USER].get, found_in[GROUP].get
        out: list[dict[str, Any]] = []
        append = out.append
        users = f"{base_url}/Users/"
        groups = f"{base_url}/Groups/"
        for member in members:
            mid = member["value"]
            mtype = member.get("type", USER)
            target = get_user(mid) if mtype == USER else get_group(mid)
            display = ""
            if target is not None:
                display = target.get("displayName") or target.get("userName") or ""
            append(
                {
                    "value": mid,
                    "$ref": (groups if mtype == GROUP else users) + mid,
                    "display": display,
                    "type": mtype,
                }
            )
        return out

    def _require(self, rtype: str, rid: str) -> Record:
        record = self.repo.get(rtype, rid)
        if record is None:
            raise NotFound(f"{rtype} {rid} not found")
        return record

    def _check_if_match(self, record: Record, if_match: str | None) -> None:
        # RFC 7644 §3.14: a stale If-Match is answered 412 and nothing is changed.
        if if_match is None:
            return
        current = self.version_of(record["meta"]["resourceType"], record)
        if not etag_matches(if_match, current):
            raise PreconditionFailed(
                f"If-Match {if_match} does not match the current version {current}"
            )

    # --- reads -------------------------------------------------------------------------------
    def get(
        self, rtype: str, rid: str, base_url: str, projection: Projection | None = None
    ) -> Outcome:
        record = self._require(rtype, rid)
        rendered = self.render(rtype, record, base_url, projection)
        version = rendered["meta"]["version"]
        if projection is not None:
            rendered = project(rendered, projection, self.types[rtype])
        return Outcome(rendered, version)

    def _filter_view(self, rtype: str, record: Record, with_groups: bool) -> Record:
        if not with_groups:
            return record
        groups = self.user_groups(record["id"])
        return {
            **record,
            "groups": [
                {"value": gid, "display": display, "type": kind} for gid, display, kind in groups
            ],
        }

    def _indexed(self, rt: ResourceType, node: scim_filter.Filter) -> list[Record] | None:
        """Candidates from an index for ``attr eq "value"`` (and conjunctions with one)."""
        if isinstance(node, scim_filter.And):
            left = self._indexed(rt, node.left)
            return left if left is not None else self._indexed(rt, node.right)
        if not (
            isinstance(node, scim_filter.Compare)
            and node.op == "eq"
            and isinstance(node.value, str)
            and node.path.sub is None
            and (node.path.urn is None or node.path.urn.lower() == rt.schema.id.lower())
        ):
            return None
        attr = node.path.attr.lower()
        if attr == "id":
            record = self.repo.get(rt.name, node.value)
            return [record] if record is not None else []
        if attr == "username" and rt.name == USER:
            user = self.repo.find_user_by_username(node.value)
            return [user] if user is not None else []
        if attr == "externalid":
            return self.repo.find_by_external_id(rt.name, node.value)
        if attr == "displayname" and rt.name == GROUP:
            return self.repo.find_groups_by_display_name(node.value)
        return None

    def _match_steps(
        self, rt: ResourceType, node: scim_filter.Filter | None
    ) -> Steps[Sequence[Record]]:
        """Records of ``rt`` matching the filter, in ``_seq`` order, found in steps: yields
        after every SCAN_WORK record-clauses (about 1-2 ms), so a caller on a shared loop can
        let other clients in between (issue 12: one 40,000-clause filter held the server for
        99.8 s). Without a filter: the store's ordered list itself, at once.

        A scan reads a snapshot of the records (a copy of the list; the records themselves
        are never changed, only replaced), so writes between steps do not disturb it; a
        user's derived ``groups`` are read as they are when that user is reached.
        """
        if node is None:
            return self.repo.ordered(rt.name)
        candidates: Sequence[Record] | None = self._indexed(rt, node)
        if candidates is None:
            candidates = list(self.repo.ordered(rt.name))
        match = scim_filter.compile_filter(node, rt)
        size = scim_filter.filter_size(node)
        with_groups = rt.name == USER and _mentions(node, "groups")
        chunk = max(1, SCAN_WORK // (size + 4 * with_groups))
        # Records whose multi-valued attributes or texts are large enough that evaluating
        # this filter on one of them could take long go through evaluate_steps.
        heavy = HEAVY_WORK // size if size > 1 else None
        out: list[Record] = []
        for start in range(0, len(candidates), chunk):
            for record in candidates[start : start + chunk]:
                view = self._filter_view(rt.name, record, with_groups)
                if heavy is not None and scim_filter.resource_bulk(view) > heavy:
                    if (yield from scim_filter.evaluate_steps(node, view, rt)):
                        out.append(record)
                elif match(view):
                    out.append(record)
            yield
        return out

    def list(self, rtype: str, query: ListQuery, base_url: str) -> dict[str, Any]:
        """A ListResponse for ``GET /Users`` and ``POST /Users/.search``."""
        return run_steps(self.list_steps(rtype, query, base_url))

    def list_steps(self, rtype: str, query: ListQuery, base_url: str) -> Steps[dict[str, Any]]:
        """:meth:`list` in steps: a generator that yields at points where the caller may
        pause (every few milliseconds of filtering or sorting) and returns the ListResponse.
        Unfiltered unsorted pages and indexed ``eq`` lookups finish within the first step."""
        rt = self.types[rtype]
        matches = yield from self._match_steps(rt, query.filter)
        page = yield from paginate_steps(matches, query, rt, presorted=query.sort_by is None)
        return self._page_response(page, [rtype] * len(page.records), query, base_url)

    def search_all(self, query: ListQuery, base_url: str) -> dict[str, Any]:
        """``POST /.search`` at the root: Users and Groups together (RFC 7644 §3.4.3)."""
        return run_steps(self.search_all_steps(query, base_url))

    def search_all_steps(self, query: ListQuery, base_url: str) -> Steps[dict[str, Any]]:
        """:meth:`search_all` in steps (see :meth:`list_steps`)."""
        tagged: list[tuple[str, Record]] = []
        for rt in (self.types[USER], self.types[GROUP]):
            matches = yield from self._match_steps(rt, query.filter)
            tagged.extend((rt.name, r) for r in matches)
            yield
        tagged.sort(key=lambda item: item[1]["_seq"])
        kinds = {id(r): name for name, r in tagged}
        yield
        page = yield from paginate_steps(
            [r for _, r in tagged], query, self.types[USER], presorted=query.sort_by is None
        )
        return self._page_response(page, [kinds[id(r)] for r in page.records], query, base_url)

    def _page_response(
        self, page: Page, kinds: list[str], query: ListQuery, base_url: str = ""
    ) -> dict[str, Any]:
        resources: list[Any]
        if query.projection.is_identity:
            resources = [
                self._user_fragment(r, base_url) if kind == USER else self.render(kind, r, base_url)
                for kind, r in zip(kinds, page.records, strict=True)
            ]
        else:
            resources = [
                project(self.render(kind, r, base_url), query.projection, self.types[kind])
                for kind, r in zip(kinds, page.records, strict=True)
            ]
        return list_response(
            page.total,
            resources,
            page.start_index,
            next_cursor=page.next_cursor,
            previous_cursor=page.previous_cursor,
        )

    # --- writes ------------------------------------------------------------------------------
    def _check_unique(self, rtype: str, attrs: dict[str, Any], rid: str | None) -> None:
        if rtype != USER:
            return
        existing = self.repo.find_user_by_username(attrs["userName"])
        if existing is not None and existing["id"] != rid:
            raise Uniqueness(f"A user with userName '{attrs['userName']}' already exists")

    def _check_members(self, attrs: dict[str, Any], group_id: str) -> None:
        """Normalise members to {value, type}; every member must exist (400 invalidValue)."""
        members = attrs.get("members")
        if members is None:
            return
        seen: set[str] = set()
        out: list[dict[str, Any]] = []
        for i, member in enumerate(members):
            mid = member.get("value")
            if not isinstance(mid, str) or not mid:
                raise InvalidValue(f"members[{i}] needs a 'value' with the member's id")
            mtype = member.get("type")
            if mtype is not None and (
                not isinstance(mtype, str) or mtype.lower() not in ("user", "group")
            ):
                raise InvalidValue(f"members[{i}].type must be 'User' or 'Group', got {mtype!r}")
            candidates = (
                [USER, GROUP] if mtype is None else [USER if mtype.lower() == "user" else GROUP]
            )
            found = next((t for t in candidates if self.repo.get(t, mid) is not None), None)
            if found is None:
                raise InvalidValue(f"Member '{mid}' does not exist")
            if found == GROUP and mid == group_id:
                raise InvalidValue("A group cannot be a member of itself")
            if mid in seen:
                continue
            seen.add(mid)
            out.append({"value": mid, "type": found})
        attrs["members"] = out

    def _build(
        self,
        rt: ResourceType,
        data: _Input,
        rid: str,
        previous: Record | None,
        *,
        defaults: bool = True,
    ) -> Record:
        """The record to store. ``defaults``: apply the User defaults to a POST / PUT body
        (False for a PATCH result, whose removals must stay removals)."""
        now = self._now()
        meta = {
            "resourceType": rt.name,
            "created": previous["meta"]["created"] if previous else now,
            "lastModified": now,
            "version": _version(
                _version_number(previous["meta"]["version"]) + 1 if previous else 1
            ),
        }
        record: Record = {"schemas": data.schemas, "id": rid, **data.attributes, "meta": meta}
        if rt.name == USER:
            if defaults and "active" not in record:
                # Unassigned in a POST / PUT body: the default, active (RFC 7644 §3.3 and
                # §3.5.1 let the service provider assign defaults; Okta always sends it).
                # Not after a PATCH: "remove" of active leaves it unassigned (RFC 7644
                # §3.5.2.2), which Okta's import and the window read as not deactivated.
                record["active"] = True
                record["meta"] = record.pop("meta")
            password = data.password
            if password is not None:
                record["_password"] = hash_password(password, self.password_key)
            elif previous is not None and "_password" in previous:
                # The password is write-only: a GET-then-PUT round trip must not clear it.
                record["_password"] = previous["_password"]
        record["_seq"] = previous["_seq"] if previous else self.repo.next_seq()
        return record

    def create(self, rtype: str, body: Any, base_url: str) -> Outcome:
        rt = self.types[rtype]
        data = _parse_input(rt, require_schemas(body, rt.schema.id, f"{rt.name} to create", "3.3"))
        rid = self._new_id()
        self._check_unique(rtype, data.attributes, None)
        if self.catalog is not None and rt.name == USER:
            self.catalog.check_grants(data.attributes, None)
        if rt.name == GROUP:
            self._check_members(data.attributes, rid)
        record = self._build(rt, data, rid, None)
        self.repo.put(rtype, record)
        changes = [Change("created", rtype, rid)]
        changes += self._touch_member_views(record, None)
        rendered = self.render(rtype, record, base_url)
        if rt.name == USER:
            self._keep_fragment(record, base_url, rendered)
        return Outcome(rendered, rendered["meta"]["version"], changes)

    def replace(
        self,
        rtype: str,
        rid: str,
        body: Any,
        base_url: str,
        if_match: str | None = None,
        projection: Projection | None = None,
    ) -> Outcome:
        rt = self.types[rtype]
        previous = self._require(rtype, rid)
        self._check_if_match(previous, if_match)
        body = require_schemas(body, rt.schema.id, f"{rt.name} replacement", "3.5.1")
        data = _parse_input(rt, body)
        return self._store_update(rt, previous, data, base_url, projection=projection)

    def patch(
        self,
        rtype: str,
        rid: str,
        body: Any,
        base_url: str,
        if_match: str | None = None,
        projection: Projection | None = None,
    ) -> Outcome:
        """RFC 7644 §3.5.2. ``projection``: the ``attributes`` / ``excludedAttributes`` the
        answer will be limited to (RFC 7644 §3.9), so what it leaves out need not be
        rendered."""
        rt = self.types[rtype]
        previous = self._require(rtype, rid)
        self._check_if_match(previous, if_match)
        body = require_schemas(body, PATCH_OP_SCHEMA, "PATCH request", "3.5.2")
        schemas = ci_get(body, "schemas")
        if not isinstance(schemas, list) or PATCH_OP_SCHEMA not in schemas:
            raise InvalidSyntax(f"A PATCH request must list the schema {PATCH_OP_SCHEMA}")
        operations_key = ci_key(body, "Operations")
        if operations_key is None:
            raise InvalidSyntax("A PATCH request needs 'Operations' (RFC 7644 §3.5.2)")
        if rt.name == GROUP and self.fast_group_patch:
            plan = plan_member_patch(previous, body[operations_key], self.repo)
            if plan is not None:
                return self._store_member_plan(previous, plan, base_url, projection)
        # apply() works on its own deep copy and never changes its input, so the stored
        # record is handed over as it is (a second deep copy here cost ~1 s per PATCH of a
        # group with 100,000 members).
        current = {k: v for k, v in previous.items() if k[:1] != "_"}
        patched = scim_patch.apply(current, body[operations_key], rt)
        data = _parse_input(rt, patched)
        return self._store_update(
            rt, previous, data, base_url, defaults=False, projection=projection
        )

    def _store_member_plan(
        self, previous: Record, plan: MemberPlan, base_url: str, projection: Projection | None
    ) -> Outcome:
        """Store what :func:`plan_member_patch` worked out: the same record, version and
        changes as the general engine gives, built with list operations (C speed) and
        indexed by the members that changed only."""
        rid = previous["id"]
        result = apply_plan(previous, plan)
        members, renamed = result.members, result.renamed
        if not result.changed:
            # Nothing changed: keep version and lastModified, so ETags stay valid.
            rendered = self.render(GROUP, previous, base_url, projection)
            return Outcome(rendered, rendered["meta"]["version"])
        now = self._now()
        old_meta = previous["meta"]
        # The stored record's key order, as _build wrote it.
        record: Record = dict(previous)
        record["members"] = members
        if renamed:
            record["displayName"] = plan.display_name
        record["meta"] = {
            "resourceType": GROUP,
            "created": old_meta["created"],
            "lastModified": now,
            "version": _version(_version_number(old_meta["version"]) + 1),
        }
        put_members = getattr(self.repo, "put_group_members", None)
        if put_members is not None:
            # appended: lets the durable store journal the difference, not the whole group.
            put_members(record, result.added_ids, result.removed_ids, appended=result.appended)
        else:
            self.repo.put(GROUP, record)
        # A member removed and added again (moved to the end) keeps its view: as before ^
        # after in _touch_member_views.
        affected = set(result.added_ids) ^ set(result.removed_ids)
        if renamed:
            affected |= {m["value"] for m in members}
        stored_users = tables(self.repo)[USER]
        changes = [Change("updated", GROUP, rid)]
        changes += [Change("updated", USER, m) for m in sorted(affected) if m in stored_users]
        rendered = self.render(GROUP, record, base_url, projection)
        return Outcome(rendered, rendered["meta"]["version"], changes)

    def _store_update(
        self,
        rt: ResourceType,
        previous: Record,
        data: _Input,
        base_url: str,
        *,
        defaults: bool = True,
        projection: Projection | None = None,
    ) -> Outcome:
        rid = previous["id"]
        self._check_unique(rt.name, data.attributes, rid)
        if self.catalog is not None and rt.name == USER:
            self.catalog.check_grants(data.attributes, previous)
        if rt.name == GROUP:
            self._check_members(data.attributes, rid)
        record = self._build(rt, data, rid, previous, defaults=defaults)
        unchanged = {k: v for k, v in record.items() if k != "meta" and k != "_password"} == {
            k: v for k, v in previous.items() if k != "meta" and k != "_password"
        } and data.password is None
        if unchanged:
            # Nothing changed: keep version and lastModified, so ETags stay valid.
            rendered = self.render(rt.name, previous, base_url, projection)
            return Outcome(rendered, rendered["meta"]["version"])
        put_members = getattr(self.repo, "put_group_members", None)
        if rt.name == GROUP and put_members is not None:
            # The membership index changes by the difference of the two lists only (sets:
            # C speed), not by unindexing and indexing every member (PUT, general PATCH).
            before = member_ids(previous.get("members"))
            after = member_ids(record.get("members"))
            put_members(record, after - before, before - after)
        else:
            self.repo.put(rt.name, record)
        changes = [Change("updated", rt.name, rid)]
        changes += self._touch_member_views(record, previous)
        rendered = self.render(rt.name, record, base_url, projection)
        if rt.name == USER:
            self._keep_fragment(record, base_url, rendered)
        return Outcome(rendered, rendered["meta"]["version"], changes)

    def _touch_member_views(self, record: Record, previous: Record | None) -> list[Change]:
        """Resources whose rendering changed because of this change (for the window): the
        users of a group whose membership or name changed, and the groups of a user whose
        name (a member's ``display``) changed."""
        if record.get("meta", {}).get("resourceType") != GROUP:
            if previous is None or all(
                previous.get(k) == record.get(k) for k in ("userName", "displayName")
            ):
                return []
            return [Change("updated", GROUP, g["id"]) for g in self.repo.groups_of(record["id"])]
        before = {m["value"] for m in (previous or {}).get("members", [])}
        after = {m["value"] for m in record.get("members", [])}
        renamed = previous is not None and previous.get("displayName") != record.get("displayName")
        affected = (before ^ after) | (after if renamed else set())
        return [
            Change("updated", USER, mid) for mid in sorted(affected) if self.repo.get(USER, mid)
        ]

    def delete(self, rtype: str, rid: str, if_match: str | None = None) -> Outcome:
        record = self._require(rtype, rid)
        self._check_if_match(record, if_match)
        changes: list[Change] = []
        # Deleting a user (or group) removes it from every group it belongs to.
        for group in self.repo.groups_of(rid):
            members = [m for m in group.get("members", []) if m["value"] != rid]
            updated = {
                **group,
                "members": members,
                "meta": {
                    **group["meta"],
                    "lastModified": self._now(),
                    "version": _version(_version_number(group["meta"]["version"]) + 1),
                },
            }
            self.repo.put(GROUP, updated)
            changes.append(Change("updated", GROUP, group["id"]))
        self.repo.delete(rtype, rid)
        changes.insert(0, Change("deleted", rtype, rid))
        if rtype == GROUP:
            changes += [
                Change("updated", USER, m["value"])
                for m in record.get("members", [])
                if m.get("type") == USER and self.repo.get(USER, m["value"])
            ]
        return Outcome(None, None, changes)
