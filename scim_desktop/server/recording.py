"""What an exchange leaves behind: its Okta label, its request record and the resource changes
it made, told to the event sink.

:class:`~scim_desktop.server.handlers.Exchange` answers a request; this module records it. Its
functions take the exchange and read the state the exchange kept while answering (the Okta
request and step, the answer's status, headers and body, the upstream's figures in proxy
mode), as the endpoints in :mod:`scim_desktop.server.endpoints` do. :func:`classify` labels the
request with its Okta step before faults run (a fault rule may match on the step);
:func:`record` runs once per request, after its answer was written or it was abandoned: it
counts the request, finishes the Okta label from the answer, redacts and publishes the
:class:`~scim_desktop.server.events.RequestRecord`, and :func:`publish_changes` the
``ResourceChanged`` events (also called by ``ServerThread`` for the window's own edits).
Recording never breaks serving: a failure here is logged and the answer stands.

Imported by :mod:`scim_desktop.server.handlers`, which re-exports :func:`publish_changes`.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import orjson

from scim_desktop.core import errors
from scim_desktop.core.faults import relative_path
from scim_desktop.core.okta import OktaRequest, Step
from scim_desktop.core.resources import CATALOG, Change
from scim_desktop.server.events import (
    RequestRecord,
    ResourceChanged,
    cut_body,
    next_record_id,
    redact_body,
    redact_headers,
    redact_params,
    scrub,
)
from scim_desktop.server.proxy import _hide, credential_texts, okta_problems

if TYPE_CHECKING:
    from scim_desktop.server.handlers import Exchange, ServerContext

log = logging.getLogger("scim_desktop.server")


def classify(ex: Exchange) -> None:
    """Label the request with its Okta step (before faults, which may match on it)."""
    try:
        ex._okta_request = OktaRequest(
            method=ex.method,
            path=relative_path(ex.path, ex.ctx.config.base_path),
            query=ex.query_args() if ex.query else {},
            body=ex._decoded_body(),
            user_agent=ex.h.get("User-Agent", ""),
            time=time.monotonic(),
            client=ex.remote_ip,
        )
        ex._okta_step = ex.ctx.okta.classify(ex._okta_request)
    except errors.ScimError:
        ex._okta_request = ex._okta_step = None  # a bad query: the endpoint says so
    except Exception:  # labelling must never break serving
        log.exception("Could not classify %s %s", ex.method, ex.path)  # no query: see _fail
        ex._okta_request = ex._okta_step = None


def publish_changes(ctx: ServerContext, changes: list[Change], base_url: str) -> None:
    """Tell the sink what changed, with each resource as clients now see it (a catalog
    change: the catalog in its file format, and the Okta classifier its endpoints)."""
    if not changes:
        return
    for change in changes:
        if change.rtype == CATALOG:
            catalog = ctx.service.catalog
            ctx.okta.set_catalog(catalog.endpoints() if catalog is not None else {})
    if not getattr(ctx.sink, "wants_changes", True):
        return
    for change in changes:
        if change.rtype == CATALOG:
            catalog = ctx.service.catalog
            doc = catalog.to_json() if catalog is not None else None
            ctx.sink.publish(ResourceChanged(change.kind, CATALOG, "*", doc))
            continue
        resource = None
        if change.kind != "deleted" and ctx.store.get(change.rtype, change.id) is not None:
            resource = ctx.service.get(change.rtype, change.id, base_url).resource
        ctx.sink.publish(ResourceChanged(change.kind, change.rtype, change.id, resource))


def record(ex: Exchange) -> None:
    """Count the request and publish its record (and the resource changes it made)."""
    ex._done()
    ctx = ex.ctx
    stats = ctx.stats
    stats["requests"] += 1
    status = ex.status
    if status >= 400:
        stats["errors"] += 1
    # Headers and bodies are kept only for sinks that show them (the window, --log jsonl).
    bodies = getattr(ctx.sink, "wants_bodies", True)
    try:
        duration_ms = round((time.perf_counter() - ex._started) * 1000, 3)
        step, extra = _okta_answer(ex, status, duration_ms)
        # The secrets hidden from the request; the explanation and an error detail may
        # quote the path or filter that held one, so they are scrubbed of them too. The
        # request's own credential first (the record shows its Authorization as
        # "Bearer ***"): an answer may quote it (an upstream's 401 "invalid token ...", in
        # proxy mode), and so may what is read from the answer.
        own = list(credential_texts(ex.h.get("Authorization")))
        found = own.copy()
        # ?access_token=, ?token=, a filter comparing password: never recorded (nor the
        # credential, should the request quote it, e.g. in a filter).
        query = (scrub(redact_params(ex.query, found), own) or "") if ex.query else ""
        request_body = (scrub(redact_body(ex.body, found), own) or "") if bodies else ""
        response_body = scrub(_recorded_response(ex, own), found) if bodies else ""
        explanation = step.explanation if step else None
        problems: tuple[str, ...] = ()
        if ex.upstream_status is not None and step is not None:
            problems = okta_problems(ex, step, status, ex._response_json, duration_ms)
        request_record = RequestRecord(
            id=next_record_id(),
            time=ex._arrived,
            method=ex.method,
            path=scrub(ex.path, own) or "",
            query=query,
            status=status,  # 0: no answer (dropped, or the client went away)
            duration_ms=duration_ms,
            client=ex.remote_ip,
            request_headers=redact_headers(ex.h) if bodies else {},
            request_body=request_body,
            # This server's own headers carry no credentials (no Set-Cookie either); an
            # upstream's may.
            response_headers=(
                ex._response_headers
                if ex.upstream_status is None
                else redact_headers(ex._response_headers)
            )
            if bodies
            else {},
            response_body=response_body or "",
            okta_step=step.id if step else None,
            okta_label=scrub(step.label, found) if step else None,
            okta_explanation=scrub(explanation, found) if found else explanation,
            fault=ex.fault,
            extra=extra,
            upstream_status=ex.upstream_status,
            upstream_ms=ex.upstream_ms,
            upstream_error=ex.upstream_error,
            okta_problems=tuple(scrub(p, found) or "" for p in problems),
        )
        publish_changes(ctx, ex.changes, ex.base_url)
        ctx.sink.publish(request_record)
    except Exception:  # an observer's failure must never break serving
        # The path only: the query may hold a credential.
        log.exception("Could not publish the record of %s %s", ex.method, ex.path)


def _recorded_response(ex: Exchange, own: list[str]) -> str:
    """The response body for the record. SCIM answers are built by this server, which
    never returns a password (returned: never), so they need no redaction pass (a real
    cost on 60 KB list pages); errors (whose detail may quote a path or filter the
    client sent) and anything else go through redact_body. The request's credential
    (``own``) is hidden from the bytes first: after the record's cut, part of one could
    remain."""
    body = ex._response_body
    if own and body:
        texts = [text.encode() for text in own]
        if any(text in body for text in texts):  # a search, rarely a copy
            body = _hide(body, texts)
    if ex._response_obj is not None and 0 < ex.status < 400:
        return cut_body(body.decode("utf-8", errors="replace"))
    return redact_body(body)


def _okta_answer(
    ex: Exchange, status: int, duration_ms: float
) -> tuple[Step | None, dict[str, Any]]:
    """The request's Okta step once its answer is known, and the record's extra fields."""
    req, step = ex._okta_request, ex._okta_step
    if req is None or step is None:
        return None, {}
    # The answer as built (list pages hold pre-encoded users, which the classifier need
    # not look into); only fault answers and the like are parsed back.
    response_body = ex._response_obj
    if response_body is None:
        response_body = ex._response_json
    if response_body is None and ex._response_body and ex.upstream_status is None:
        try:
            response_body = orjson.loads(ex._response_body)
        except orjson.JSONDecodeError:
            response_body = None
    try:
        step = ex.ctx.okta.note_response(
            req,
            step,
            status,
            ex._response_headers.get("Retry-After"),
            response_body,
            duration_s=duration_ms / 1000,
        )
    except Exception:
        log.exception("Could not label %s %s", ex.method, ex.path)
    extra: dict[str, Any] = {}
    if step.page is not None:
        extra["okta_page"] = step.page
    if step.retry is not None:
        extra["okta_retry"] = step.retry
    if step.next_retry_in_s is not None:
        extra["okta_next_retry_in_s"] = step.next_retry_in_s
    if step.retry_gives_up:
        extra["okta_retry_gives_up"] = True
    return step, extra
