"""The SCIM endpoints and the routes to them: what each SCIM URL and method does once
:class:`~scim_desktop.server.handlers.Exchange` has let the request through.

An endpoint is a plain function called with the exchange and the route's percent-decoded
arguments. It reads the request through the exchange (``query_args``, ``json_body``,
``base_url``), asks core (``ScimService``, the entitlement catalog, the discovery tables) and
answers with ``ex.respond`` / ``ex.respond_outcome``, or returns an awaitable for a listing
answered in slices. A ScimError raised here becomes the SCIM Error answer in handlers.py.
Authentication, the body limit, the Okta label and injected faults all happen before an
endpoint runs (handlers.py): endpoints never know about them.

Routing is one regular expression over the fixed SCIM URLs (:func:`_route_pattern`,
:func:`_route_args`); the catalog's endpoints are looked up per request instead
(:func:`_catalog_route`), because the catalog changes while serving. The URL's decoding is
here too: percent-decoded path segments (:func:`_unquote`) and query parameters
(:func:`parse_query`, which the exchange calls once per request).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, unquote_to_bytes

from scim_desktop.core import errors
from scim_desktop.core.catalog import Catalog, EntitlementType, list_values_steps
from scim_desktop.core.faults import METHODS
from scim_desktop.core.listing import list_response, parse_list_query, parse_search_request
from scim_desktop.core.projection import Projection, make_projection, project
from scim_desktop.core.resources import Outcome, etag_matches
from scim_desktop.core.schemas import RESOURCE_TYPES, SCHEMAS, service_provider_config
from scim_desktop.server.slices import run_in_slices

if TYPE_CHECKING:
    from scim_desktop.server.handlers import Exchange

_RESOURCE_NAMES = {"users": "User", "groups": "Group"}
#: Methods HTTP/1.1 servers here know (the ones fault rules may name); anything else is 405
#: before authentication.
_KNOWN_METHODS = METHODS
#: Control characters replaced in query parameters (as Tornado's get_argument does).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1f]")


class Finished(Exception):
    """Raised to end a request that has already been answered (or dropped)."""


# --- endpoints ------------------------------------------------------------------------------
#: An endpoint: called with the exchange and the route's (decoded) arguments; returns None when
#: it answered, or an awaitable that answers.
Endpoint = Callable[..., Awaitable[None] | None]


def _rtype(name: str) -> str:
    return _RESOURCE_NAMES[name.lower()]


def _list_users_or_groups(ex: Exchange, collection: str) -> Awaitable[None] | None:
    rtype = _rtype(collection)
    query = parse_list_query(ex.query_args(), RESOURCE_TYPES[rtype])
    return _in_slices(ex, ex.ctx.service.list_steps(rtype, query, ex.base_url))


def _in_slices(
    ex: Exchange, steps: Generator[None, None, dict[str, Any]]
) -> Awaitable[None] | None:
    """Answer a listing computed in steps: at once when it is quick, else in slices that
    leave the IOLoop to other clients in between (scim_desktop.server.slices)."""
    return run_in_slices(steps, lambda body: ex.respond(200, body), lambda: ex._closed, Finished)


def _create(ex: Exchange, collection: str) -> None:
    outcome = ex.ctx.service.create(_rtype(collection), ex.json_body(), ex.base_url)
    ex.respond_outcome(201, outcome)


def _search(ex: Exchange, collection: str) -> Awaitable[None] | None:
    """``POST /Users/.search`` and ``/Groups/.search`` (RFC 7644 §3.4.3)."""
    rtype = _rtype(collection)
    query = parse_search_request(ex.json_body(), RESOURCE_TYPES[rtype])
    return _in_slices(ex, ex.ctx.service.list_steps(rtype, query, ex.base_url))


def _root_search(ex: Exchange) -> Awaitable[None] | None:
    """``POST /.search``: Users and Groups together."""
    query = parse_search_request(ex.json_body(), RESOURCE_TYPES["User"])
    return _in_slices(ex, ex.ctx.service.search_all_steps(query, ex.base_url))


def _get_resource(ex: Exchange, collection: str, rid: str) -> None:
    rtype = _rtype(collection)
    projection = None
    if ex.query:
        projection = make_projection(
            ex.query_arg("attributes"), ex.query_arg("excludedAttributes"), RESOURCE_TYPES[rtype]
        )
    outcome = ex.ctx.service.get(rtype, rid, ex.base_url, projection)
    if_none_match = ex.h.get("If-None-Match")
    if if_none_match and outcome.version and etag_matches(if_none_match, outcome.version):
        # RFC 7644 §3.14 / RFC 7232 §4.1: unchanged -> 304 with the ETag and no body.
        ex.respond(304, None, {"ETag": outcome.version})
        return
    ex.respond(200, outcome.resource, {"ETag": outcome.version or ""})


def _answer_projection(ex: Exchange, rtype: str) -> Projection | None:
    """``attributes`` / ``excludedAttributes`` of a write's answer (RFC 7644 §3.9: "any
    operation that returns a resource"), handed to the service so that what they leave out
    (a large group's ``members``) is not rendered at all; ``respond_outcome`` applies them."""
    if not ex.query:
        return None
    return make_projection(
        ex.query_arg("attributes"), ex.query_arg("excludedAttributes"), RESOURCE_TYPES[rtype]
    )


def _write(ex: Exchange, collection: str, rid: str, write: Callable[..., Outcome]) -> None:
    """PUT or PATCH: ``write`` is the service's ``replace`` or ``patch``; RFC 7644 §3.5.1 and
    §3.5.2 answer 200 with the resource, which is what Okta's tooling checks."""
    rtype = _rtype(collection)
    outcome = write(
        rtype,
        rid,
        ex.json_body(),
        ex.base_url,
        ex.h.get("If-Match"),
        _answer_projection(ex, rtype),
    )
    ex.respond_outcome(200, outcome)


def _replace(ex: Exchange, collection: str, rid: str) -> None:
    _write(ex, collection, rid, ex.ctx.service.replace)


def _patch(ex: Exchange, collection: str, rid: str) -> None:
    _write(ex, collection, rid, ex.ctx.service.patch)


def _delete(ex: Exchange, collection: str, rid: str) -> None:
    outcome = ex.ctx.service.delete(_rtype(collection), rid, ex.h.get("If-Match"))
    ex.changes = outcome.changes
    ex.when_durable(lambda: ex.respond(204, None))


def _no_filter_on_discovery(ex: Exchange) -> None:
    if ex.query and ex.query_arg("filter") is not None:
        # RFC 7644 §4: a filter on a discovery endpoint SHOULD be refused with 403, so a
        # client cannot believe its conditions were applied.
        raise errors.Forbidden("Filtering is not supported on discovery endpoints")


def _list_of(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return list_response(len(resources), resources, 1)


def _service_provider_config(ex: Exchange) -> None:
    _no_filter_on_discovery(ex)
    ex.respond(200, service_provider_config(ex.base_url, auth_mode=ex.ctx.auth.mode))


def _discovery(ex: Exchange, kind: str, table: Mapping[str, Any], item_id: str | None) -> None:
    """``/Schemas`` and ``/ResourceTypes``: the list, or one entry by its id (ignoring
    case)."""
    _no_filter_on_discovery(ex)
    if item_id is None:
        ex.respond(200, _list_of([item.to_scim(ex.base_url) for item in table.values()]))
        return
    for key, item in table.items():
        if key.lower() == item_id.lower():
            ex.respond(200, item.to_scim(ex.base_url))
            return
    raise errors.NotFound(f"{kind} {item_id} not found")


def _schemas(ex: Exchange, schema_id: str | None = None) -> None:
    """``/Schemas``: the built-in schemas, plus the catalog's (and Okta's Role / Entitlement
    schemas when the catalog uses them)."""
    catalog = ex.ctx.service.catalog
    table: Mapping[str, Any] = SCHEMAS
    if catalog is not None:
        table = {**SCHEMAS, **{s.id: s for s in catalog.discovery_schemas()}}
    _discovery(ex, "Schema", table, schema_id)


def _resource_types(ex: Exchange, type_id: str | None = None) -> None:
    """``/ResourceTypes``: User (with the enterprise extension and the catalog's user schema
    extensions), Group, and every catalog type (Okta's guide: what Okta reads first)."""
    service = ex.ctx.service
    table: dict[str, Any] = {name: service.types[name] for name in RESOURCE_TYPES}
    if service.catalog is not None:
        table.update((rt.id, rt) for rt in service.catalog.resource_types)
    _discovery(ex, "ResourceType", table, type_id)


# --- the catalog's endpoints (read-only values) ---------------------------------------------
def _catalog_type(ex: Exchange, endpoint: str) -> tuple[Catalog, EntitlementType]:
    catalog = ex.ctx.service.catalog
    rt = catalog.type_for_endpoint(endpoint) if catalog is not None else None
    if catalog is None or rt is None:  # the catalog changed since the route was chosen
        raise errors.NotFound(f"No SCIM endpoint at {ex.path}")
    return catalog, rt


def _list_values(ex: Exchange, endpoint: str) -> Awaitable[None] | None:
    catalog, rt = _catalog_type(ex, endpoint)
    query = parse_list_query(ex.query_args(), catalog.scim_type(rt.id))
    return _in_slices(ex, list_values_steps(catalog, rt, query, ex.base_url))


def _search_values(ex: Exchange, endpoint: str) -> Awaitable[None] | None:
    catalog, rt = _catalog_type(ex, endpoint)
    query = parse_search_request(ex.json_body(), catalog.scim_type(rt.id))
    return _in_slices(ex, list_values_steps(catalog, rt, query, ex.base_url))


def _get_value(ex: Exchange, endpoint: str, rid: str) -> None:
    catalog, rt = _catalog_type(ex, endpoint)
    record = rt.record(rid)
    if record is None:
        raise errors.NotFound(f"{rt.name} {rid} not found")
    resource = rt.render(record, ex.base_url)
    if ex.query:
        scim_rt = catalog.scim_type(rt.id)
        projection = make_projection(
            ex.query_arg("attributes"), ex.query_arg("excludedAttributes"), scim_rt
        )
        resource = project(resource, projection, scim_rt)
    ex.respond(200, resource)


def _values_read_only(ex: Exchange, endpoint: str, *_rid: str) -> None:
    _catalog, rt = _catalog_type(ex, endpoint)
    raise errors.MethodNotAllowed(
        f"{rt.name} values are read-only over SCIM: edit them in SCIM Desktop's Governance "
        "tab, or in the catalog file loaded with --catalog FILE",
        headers={"Allow": "GET, HEAD"},
    )


def _not_implemented(ex: Exchange) -> None:
    """``/Me`` and ``/Bulk``: not offered (ServiceProviderConfig says bulk is unsupported)."""
    endpoint = ex.path.rsplit("/", 1)[-1] or "This endpoint"
    raise errors.NotImplementedByServer(f"{endpoint} is not implemented by this server")


def _not_found(ex: Exchange) -> None:
    raise errors.NotFound(f"No SCIM endpoint at {ex.path}; the SCIM base URL is {ex.base_url}")


# --- routing: URL -> Route -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Route:
    """The endpoints of one URL shape, by method."""

    methods: dict[str, Endpoint]
    #: Unknown URLs are answered 404 without authentication, so a wrong base URL in Okta says
    #: "wrong URL" rather than "wrong token".
    public: bool = False

    @property
    def allow(self) -> str:
        return ", ".join(m for m in _KNOWN_METHODS if m in self.methods)


_COLLECTION = Route({"GET": _list_users_or_groups, "HEAD": _list_users_or_groups, "POST": _create})
_SEARCH = Route({"POST": _search})
_RESOURCE = Route(
    {
        "GET": _get_resource,
        "HEAD": _get_resource,
        "PUT": _replace,
        "PATCH": _patch,
        "DELETE": _delete,
    }
)
_WRITES = ("POST", "PUT", "PATCH", "DELETE")
_VALUES = Route(
    {"GET": _list_values, "HEAD": _list_values, **dict.fromkeys(_WRITES, _values_read_only)}
)
_VALUES_SEARCH = Route({"POST": _search_values})
_VALUE = Route({"GET": _get_value, "HEAD": _get_value, **dict.fromkeys(_WRITES, _values_read_only)})
_ROOT_SEARCH = Route({"POST": _root_search})
_SPC = Route({"GET": _service_provider_config})
_SCHEMAS = Route({"GET": _schemas})
_RESOURCE_TYPES = Route({"GET": _resource_types})
_NOT_IMPLEMENTED = Route(dict.fromkeys(("GET", "POST", "PUT", "PATCH", "DELETE"), _not_implemented))
_NOT_FOUND = Route(
    dict.fromkeys(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"), _not_found),
    public=True,
)


def _route_pattern(base_path: str) -> re.Pattern[str]:
    """One expression for every SCIM URL (resource endpoint names are matched
    case-insensitively: some clients write /users); a trailing slash is allowed. The last
    group that matched names the route (see :func:`match_route`)."""
    bp = re.escape(base_path.rstrip("/"))
    return re.compile(
        rf"{bp}/(?:"
        r"(?P<coll>(?i:users|groups))(?:/(?P<search>\.search)|/(?P<rid>[^/]+))?"
        r"|(?P<root>\.search)"
        r"|(?P<spc>(?i:ServiceProviderConfigs?))"
        r"|(?P<schemas>(?i:Schemas))(?:/(?P<sid>[^/]+))?"
        r"|(?P<rtypes>(?i:ResourceTypes))(?:/(?P<tid>[^/]+))?"
        r"|(?P<ni>(?i:Me|Bulk))(?:/.*)?"
        r")/?"
    )


def parse_query(query: str) -> dict[str, str]:
    """Query parameters, the last value of each, decoded as urllib's ``parse_qsl`` with
    ``keep_blank_values`` does (without its per-call overhead), control characters replaced
    and whitespace stripped (as Tornado's ``get_query_argument`` gives them)."""
    args: dict[str, str] = {}
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        name = _form_decode(name)
        value = _form_decode(value)
        if _CONTROL_RE.search(value):
            value = _CONTROL_RE.sub(" ", value)
        args[name] = value.strip()
    return args


def _form_decode(text: str) -> str:
    """One name or value of a query string, decoded (``+`` is a space; UTF-8 %XX)."""
    if "+" in text:
        text = text.replace("+", " ")
    if "%" not in text:
        return text
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise errors.BadRequest("The query string is not valid UTF-8") from None


def _unquote(segment: str) -> str:
    """A percent-decoded path segment (UTF-8)."""
    if "%" not in segment:
        return segment
    try:
        return unquote_to_bytes(segment).decode("utf-8")
    except UnicodeDecodeError:
        raise errors.BadRequest(f"The path segment {segment!r} is not valid UTF-8") from None


def _route_args(m: re.Match[str]) -> tuple[Route, tuple[str, ...]]:
    last = m.lastgroup
    if last == "rid":
        return _RESOURCE, (m.group("coll"), _unquote(m.group("rid")))
    if last == "coll":
        return _COLLECTION, (m.group("coll"),)
    if last == "search":
        return _SEARCH, (m.group("coll"),)
    if last == "root":
        return _ROOT_SEARCH, ()
    if last == "spc":
        return _SPC, ()
    if last == "schemas":
        return _SCHEMAS, ()
    if last == "sid":
        return _SCHEMAS, (_unquote(m.group("sid")),)
    if last == "rtypes":
        return _RESOURCE_TYPES, ()
    if last == "tid":
        return _RESOURCE_TYPES, (_unquote(m.group("tid")),)
    return _NOT_IMPLEMENTED, ()


def match_route(
    pattern: re.Pattern[str],
    path: str,
    catalog: Catalog | None = None,
    base_path: str = "",
) -> tuple[Route, tuple[str, ...]]:
    m = pattern.fullmatch(path)
    if m is None:
        if catalog is not None:
            return _catalog_route(catalog, path, base_path)
        return _NOT_FOUND, ()
    return _route_args(m)


def _catalog_route(catalog: Catalog, path: str, base_path: str) -> tuple[Route, tuple[str, ...]]:
    """A catalog endpoint (``{endpoint}``, ``{endpoint}/.search``, ``{endpoint}/{id}``; the
    endpoint matched ignoring case, like /Users), else the 404 route. The catalog changes
    while serving, so this is looked up per request rather than compiled into the pattern."""
    base = base_path.rstrip("/")
    if not path.startswith(base + "/"):
        return _NOT_FOUND, ()
    parts = path[len(base) + 1 :].split("/")
    if parts and parts[-1] == "" and len(parts) > 1:
        parts.pop()  # a trailing slash
    rt = catalog.type_for_endpoint("/" + parts[0]) if 1 <= len(parts) <= 2 else None
    if rt is None:
        return _NOT_FOUND, ()
    if len(parts) == 1:
        return _VALUES, (rt.endpoint,)
    if parts[1] == ".search":
        return _VALUES_SEARCH, (rt.endpoint,)
    return _VALUE, (rt.endpoint, _unquote(parts[1]))
