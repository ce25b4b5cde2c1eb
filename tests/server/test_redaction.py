"""Secrets never reach a sink, and every request reaches every sink.

Each test drives a real server over a real socket and then reads everything a person could
see: the text log and the JSON-lines log (TextSink, JsonLinesSink), the RequestRecord the
window gets, the JSON Lines and HAR exports and the curl command line (gui/export.py).
"""

from __future__ import annotations

import http.client
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scim_desktop.config import AuthConfig, ServerConfig
from scim_desktop.gui.export import har_bytes, to_curl, to_jsonl
from scim_desktop.server.events import MultiSink, RequestRecord, dumps_json, redact_body
from scim_desktop.server.log_sinks import JsonLinesSink, TextSink
from scim_desktop.server.runner import ServerThread
from tests.conftest import TOKEN, RecordingSink
from tests.scim_client import ScimClient, filter_query
from tests.server.test_oauth_flow import CLIENT_ID, REDIRECT, Http, basic, get_code, make_server

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@dataclass
class Sinks:
    """Every sink of a running server, and what each of them shows."""

    recording: RecordingSink = field(default_factory=RecordingSink)
    text_stream: io.StringIO = field(default_factory=io.StringIO)
    jsonl_stream: io.StringIO = field(default_factory=io.StringIO)

    def __post_init__(self) -> None:
        self.text = TextSink(self.text_stream)
        self.jsonl = JsonLinesSink(self.jsonl_stream)
        self.multi = MultiSink(self.recording, self.text, self.jsonl)

    def close(self) -> None:
        self.text.close()
        self.jsonl.close()

    @property
    def records(self) -> list[RequestRecord]:
        return [e for e in self.recording.events if isinstance(e, RequestRecord)]

    def outputs(self) -> dict[str, str]:
        """What each sink shows, as text (the sinks must be closed first)."""
        records = self.records
        return {
            "text log": self.text_stream.getvalue(),
            "jsonl log": self.jsonl_stream.getvalue(),
            "window record": "\n".join(repr(r) for r in records),
            "jsonl export": to_jsonl(records),
            "har export": har_bytes(records, "test").decode(),
            "curl": "\n".join(to_curl(r) for r in records),
        }

    def assert_hidden(self, *secrets: str) -> None:
        for name, text in self.outputs().items():
            for secret in secrets:
                assert secret not in text, f"{secret!r} shown in the {name}"


@pytest.fixture
def sinks() -> Sinks:
    return Sinks()


@pytest.fixture
def scim_server(db_path: Path, sinks: Sinks) -> Iterator[ServerThread]:
    config = ServerConfig(
        host="127.0.0.1", port=0, db_path=db_path, auth=AuthConfig("bearer", token=TOKEN)
    )
    server = ServerThread(config, sinks.multi)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        sinks.close()


@pytest.fixture
def scim(scim_server: ServerThread) -> Iterator[ScimClient]:
    c = ScimClient(scim_server.base_url, token=TOKEN)
    try:
        yield c
    finally:
        c.close()


def finish(server: ServerThread, sinks: Sinks) -> None:
    """Stop the server (every record published) and flush the log sinks."""
    server.stop()
    sinks.close()


def create_user(scim: ScimClient, name: str = "ada@example.com") -> str:
    reply = scim.post("/Users", {"schemas": [USER], "userName": name})
    assert reply.status == 201, reply.raw
    return reply.body["id"]


def password_digest(server: ServerThread, uid: str) -> str | None:
    """The stored digest of the user's password (None: no password)."""
    assert server.store is not None
    store = server.store
    record = server.call(lambda: store.get("User", uid)).result(timeout=5)
    return record.get("_password") if record else None


# --- PATCH and create bodies -----------------------------------------------------------------
def test_patch_with_capitalised_keys_changes_the_password_and_logs_none_of_it(
    scim_server: ServerThread, scim: ScimClient, sinks: Sinks
) -> None:
    uid = create_user(scim)
    assert password_digest(scim_server, uid) is None
    operations = [
        {"op": "replace", "Path": "password", "Value": "CAPS-SECRET-1"},
        {"OP": "add", "PATH": "PASSWORD", "VALUE": "CAPS-SECRET-2"},
    ]
    reply = scim.patch(f"/Users/{uid}", {"schemas": [PATCH], "Operations": operations})
    assert reply.status == 200, reply.raw
    assert password_digest(scim_server, uid)  # the engine did take it as the password
    finish(scim_server, sinks)
    sinks.assert_hidden("CAPS-SECRET")
    (patch,) = [r for r in sinks.records if r.method == "PATCH"]
    assert '"Path":"password"' in patch.request_body and '"Value":"***"' in patch.request_body


def test_a_key_spelled_with_json_escapes_is_still_the_password(
    scim_server: ServerThread, scim: ScimClient, sinks: Sinks
) -> None:
    raw = (
        b'{"schemas":["' + USER.encode() + b'"],"userName":"esc@example.com",'
        b'"p\\u0061ssword":"ESCAPED-SECRET-1",'
        b'"urn:ietf:params:scim:schemas:core:2.0:User:P\\u0041SSWORD":"ESCAPED-SECRET-2"}'
    )
    reply = scim.post("/Users", raw=raw)
    assert reply.status == 201, reply.raw
    assert password_digest(scim_server, reply.body["id"])
    # The Kelvin sign lowers to "k": "refresh_to\u212aen" is refresh_token to str.lower().
    kelvin = '{"userName": "k@example.com", "refresh_to\u212aen": "KELVIN-SECRET"}'
    scim.post("/Users", raw=kelvin.encode())
    finish(scim_server, sinks)
    sinks.assert_hidden("ESCAPED-SECRET", "KELVIN-SECRET")


def test_pathless_urn_and_value_filter_paths(
    scim_server: ServerThread, scim: ScimClient, sinks: Sinks
) -> None:
    uid = create_user(scim)
    cases = [
        # A path-less value object, its key in any case.
        [{"op": "replace", "value": {"PassWord": "PATHLESS-SECRET"}}],
        # The whole core schema as the value's key.
        [{"op": "replace", "value": {USER: {"password": "CORE-OBJECT-SECRET"}}}],
        # URN-qualified paths (RFC 7644 §3.10), with spaces the engine strips.
        [{"op": "replace", "path": f" {USER}:password ", "value": "URN-SECRET"}],
        [{"op": "replace", "path": f"{USER}:Password", "Value": "URN-SECRET-2"}],
    ]
    for operations in cases:
        reply = scim.patch(f"/Users/{uid}", {"schemas": [PATCH], "Operations": operations})
        assert reply.status == 200, (operations, reply.raw)
    # A value filter on password (refused by the engine, recorded all the same).
    refused = [
        {"op": "replace", "path": 'password[value eq "FILTER-SECRET-1"]', "value": "FS-2"},
        {"op": "replace", "path": 'emails[password eq "FILTER-SECRET-3"]', "value": "x"},
        {"op": "replace", "path": 'password[value eq "FILTER-SECRET-4', "value": "FS-5"},
        {"op": "replace", "path": {"password": "NESTED-SECRET"}, "value": "x"},
    ]
    for op in refused:
        reply = scim.patch(f"/Users/{uid}", {"schemas": [PATCH], "Operations": [op]})
        assert 400 <= reply.status < 500, (op, reply.raw)
    finish(scim_server, sinks)
    sinks.assert_hidden(
        "PATHLESS-SECRET",
        "CORE-OBJECT-SECRET",
        "URN-SECRET",
        "FILTER-SECRET",
        "FS-2",
        "FS-5",
        "NESTED-SECRET",
    )
    # Only the secrets went: the rest of each body is as sent.
    patches = [r for r in sinks.records if r.method == "PATCH"]
    assert len(patches) == 8
    assert f'"path":" {USER}:password "' in patches[2].request_body
    assert '"path":"emails[password eq \\"***\\"]"' in patches[5].request_body


def test_other_values_are_kept_as_sent(
    scim_server: ServerThread, scim: ScimClient, sinks: Sinks
) -> None:
    """Nothing that is not a secret is redacted, and a body without one is kept byte for
    byte (not re-encoded)."""
    raw = (
        b'{ "schemas": ["' + USER.encode() + b'"], "userName": "kept@example.com",\n'
        b'  "displayName": "password reset team", "emails": [{"value": "p\\u0061ss@x.org"}]}'
    )
    reply = scim.post("/Users", raw=raw)
    assert reply.status == 201, reply.raw
    uid = reply.body["id"]
    op = {"op": "replace", "path": 'emails[value eq "p\\u0061ss@x.org"].type', "value": "home"}
    assert scim.patch(f"/Users/{uid}", {"schemas": [PATCH], "Operations": [op]}).status == 200
    query = filter_query('displayName eq "password reset team"')
    assert scim.get(f"/Users?{query}").status == 200
    finish(scim_server, sinks)
    post, patch, get = [r for r in sinks.records if r.status in (200, 201)][-3:]
    assert post.request_body == raw.decode()
    assert '"value": "home"' in patch.request_body
    assert get.query == query


def test_broken_json_hides_escaped_keys(
    scim_server: ServerThread, scim: ScimClient, sinks: Sinks
) -> None:
    raw = b'{"userName": "b@example.com", "p\\u0061ssword": "BROKEN-SECRET", "x": '
    assert scim.post("/Users", raw=raw).status == 400
    uid = create_user(scim)
    cut_patch = b'{"Operations": [{"op": "replace", "path": "password", "value": "CUT-SECRET'
    assert scim.patch(f"/Users/{uid}", raw=cut_patch).status == 400
    form = b"userName=f&password=FORM-SECRET"
    assert scim.post("/Users", raw=form).status == 400
    finish(scim_server, sinks)
    sinks.assert_hidden("BROKEN-SECRET", "CUT-SECRET", "FORM-SECRET")
    assert '"userName": "b@example.com"' in sinks.records[0].request_body


# --- query strings, filters, headers ---------------------------------------------------------
def test_query_string_credentials_and_password_filters(
    scim_server: ServerThread, scim: ScimClient, sinks: Sinks
) -> None:
    reply = scim.get("/Users?access_token=QUERY-SECRET-1&Token=QUERY-SECRET-2&count=5")
    assert reply.status == 200
    query = filter_query('password eq "QUERY-SECRET-3"')
    scim.get(f"/Users?{query}")
    scim.get("/Users?filter=p%61ssw%4Frd%20eq%20%22QUERY-SECRET-4%22")  # letters encoded
    search = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'userName eq "a" or password eq "SEARCH-SECRET"',
    }
    scim.post("/Users/.search", search)
    finish(scim_server, sinks)
    sinks.assert_hidden("QUERY-SECRET", "SEARCH-SECRET")
    first = sinks.records[0]
    assert first.query == "access_token=***&Token=***&count=5"
    assert "/scim/v2/Users?access_token=***&Token=***&count=5 200" in sinks.outputs()["text log"]
    assert '"userName eq \\"a\\" or password eq \\"***\\""' in sinks.records[3].request_body


def test_query_parameters_named_like_secrets_are_hidden(
    scim_server: ServerThread, scim: ScimClient, sinks: Sinks
) -> None:
    """As for header fields: any parameter whose name holds token, secret, password or
    api_key (``?api_key=`` was logged in clear); ``token_type_hint`` only names a kind."""
    query = "api_key=PARAM-SECRET-1&X-Auth-Token=PARAM-SECRET-2&client%2Dsecret=PARAM-SECRET-3"
    reply = scim.get(f"/Users?{query}&token_type_hint=refresh_token&count=2")
    assert reply.status == 200
    finish(scim_server, sinks)
    sinks.assert_hidden("PARAM-SECRET")
    (record,) = sinks.records
    assert record.query == (
        "api_key=***&X-Auth-Token=***&client%2Dsecret=***&token_type_hint=refresh_token&count=2"
    )


def test_a_password_beside_a_body_nested_past_the_walk_is_hidden(
    scim_server: ServerThread, scim: ScimClient, sinks: Sinks
) -> None:
    """A body nested deeper than the redaction walk goes (orjson parses 1,024 levels, Python
    recurses about 1,000) still loses its password: the walk's RecursionError falls back to
    the text redaction."""
    deep = '{"a":' * 1000 + "1" + "}" * 1000
    body = f'{{"schemas":["{USER}"],"userName":"deep","password":"DEEP-SECRET-1","name":{deep}}}'
    reply = scim.request("POST", "/Users", raw=body.encode())
    assert reply.status in (201, 400)
    finish(scim_server, sinks)
    sinks.assert_hidden("DEEP-SECRET")


def test_secret_headers_are_hidden(
    scim_server: ServerThread, scim: ScimClient, sinks: Sinks
) -> None:
    headers = {
        "X-Api-Key": "HEADER-SECRET-1",
        "X-Auth-Token": "HEADER-SECRET-2",
        "Cookie": "sid=HEADER-SECRET-3; other=HEADER-SECRET-4",
    }
    assert scim.get("/Users", headers=headers).status == 200
    finish(scim_server, sinks)
    sinks.assert_hidden("HEADER-SECRET", TOKEN)
    (record,) = sinks.records
    assert record.request_headers["X-Api-Key"] == "***"
    assert record.request_headers["Authorization"] == "Bearer ***"
    assert '"Authorization: Bearer $TOKEN"' in to_curl(record)


@pytest.mark.parametrize(
    ("auth", "authorization", "secrets"),
    [
        (AuthConfig("bearer", token=TOKEN), f"Bearer {TOKEN}", (TOKEN,)),
        # Basic: the blob and the password ("svc:pass-word-9876" in base64).
        (
            AuthConfig("basic", username="svc", password="pass-word-9876"),
            "Basic c3ZjOnBhc3Mtd29yZC05ODc2",
            ("c3ZjOnBhc3Mtd29yZC05ODc2", "pass-word-9876"),
        ),
    ],
)
def test_the_requests_own_credential_quoted_back_is_hidden(
    db_path: Path, sinks: Sinks, auth: AuthConfig, authorization: str, secrets: tuple[str, ...]
) -> None:
    """The record shows the request's Authorization as '***'; an answer, Okta label or
    explanation that quotes the credential (here a filter holding it, echoed by the error
    detail and the label) must not show it either, in any sink. The client still gets the
    answer as the server wrote it."""
    config = ServerConfig(host="127.0.0.1", port=0, db_path=db_path, auth=auth)
    server = ServerThread(config, sinks.multi)
    server.start()
    answers = []
    try:
        for secret in secrets:
            for query in (
                filter_query(f'userName eq "{secret}"'),  # Okta's lookup: the label quotes it
                filter_query(f'userName eq "{secret}" and'),  # a 400 quoting the filter
            ):
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                conn.request(
                    "GET", f"/scim/v2/Users?{query}", headers={"Authorization": authorization}
                )
                reply = conn.getresponse()
                answers.append((reply.status, reply.read()))
                conn.close()
    finally:
        finish(server, sinks)
    assert [status for status, _ in answers] == [200, 400] * len(secrets)
    assert all(secrets[i // 2].encode() in body for i, (_, body) in enumerate(answers) if i % 2)
    sinks.assert_hidden(*secrets)
    lookup, refused = sinks.records[:2]
    assert lookup.okta_label is not None and "***" in lookup.okta_label
    assert "***" in refused.response_body and "***" in refused.query


# --- OAuth endpoints -------------------------------------------------------------------------
def test_oauth_secrets_sent_as_json_are_hidden(db_path: Path, sinks: Sinks) -> None:
    server = make_server(db_path, sinks.multi)  # type: ignore[arg-type]
    try:
        web = Http(server)
        code = get_code(web)
        secrets = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": CLIENT_ID,
            "client_secret": "JSON-SECRET-1",
            "code_verifier": "JSON-SECRET-2",
            "refresh_token": "JSON-SECRET-3",
        }
        for ctype in ("application/json", "application/x-www-form-urlencoded"):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            try:
                conn.request(
                    "POST",
                    "/oauth/token",
                    body=json.dumps(secrets).encode(),
                    headers={"Content-Type": ctype, **basic()},
                )
                assert conn.getresponse().status == 400  # JSON is not how tokens are asked
            finally:
                conn.close()
    finally:
        finish(server, sinks)
    sinks.assert_hidden(code, "JSON-SECRET")
    posts = [r for r in sinks.records if r.path == "/oauth/token"]
    assert len(posts) == 2
    assert all('"code":"***"' in r.request_body for r in posts)
    assert all('"grant_type":"authorization_code"' in r.request_body for r in posts)


# --- every request is recorded ---------------------------------------------------------------
def test_a_start_index_beyond_64_bits_reaches_every_sink(
    scim_server: ServerThread, scim: ScimClient, sinks: Sinks
) -> None:
    huge = "999999999999999999999999"
    reply = scim.get(f"/Users?startIndex={huge}&count=100")
    assert reply.status == 200
    assert scim.get("/Users?startIndex=1&count=1").status == 200  # later records too
    finish(scim_server, sinks)
    outputs = sinks.outputs()
    assert len(sinks.records) == 2
    assert f"?startIndex={huge}&count=100 200" in outputs["text log"]
    assert len(outputs["text log"].splitlines()) == 2
    lines = [orjson.loads(line) for line in outputs["jsonl log"].splitlines()]
    assert [line["query"] for line in lines] == [
        f"startIndex={huge}&count=100",
        "startIndex=1&count=1",
    ]
    # The page number Okta would be on does not fit 64 bits: written as text.
    assert lines[0]["okta_page"] == str(int(huge) // 100 + 1)
    exported = [orjson.loads(line) for line in outputs["jsonl export"].splitlines()]
    assert exported == lines
    har = orjson.loads(outputs["har export"])
    assert len(har["log"]["entries"]) == 2
    assert {"name": "startIndex", "value": huge} in har["log"]["entries"][0]["request"][
        "queryString"
    ]
    assert f"startIndex={huge}" in outputs["curl"]


def test_a_failing_sink_does_not_starve_the_others(
    scim_server: ServerThread, scim: ScimClient, sinks: Sinks
) -> None:
    class Broken:
        def publish(self, event: object) -> None:
            raise RuntimeError("observer bug")

    sinks.multi.sinks.insert(0, Broken())
    assert scim.get("/Users").status == 200
    assert scim.get("/Users").status == 200
    finish(scim_server, sinks)
    assert len(sinks.records) == 2
    assert len(sinks.outputs()["jsonl log"].splitlines()) == 2


def test_record_serialization_never_refuses_a_value() -> None:
    """What orjson refuses is written as text; everything else as orjson writes it."""
    value = {"big": 10**24, "small": -(2**70), "ok": 2**63, "s": "a\ud800b", "n": [1, {2: 3}]}
    with pytest.raises(TypeError):
        orjson.dumps(value)
    assert orjson.loads(dumps_json(value)) == {
        "big": str(10**24),
        "small": str(-(2**70)),
        "ok": 2**63,
        "s": "a?b",
        "n": [1, {"2": 3}],
    }
    assert dumps_json({"x": 1}) == b'{"x":1}'


# --- any spelling the engine accepts ----------------------------------------------------------
def _spelling(draw: st.DrawFn, name: str) -> str:
    """``name`` as JSON key text: each letter in either case, maybe as a \\u escape."""
    out = []
    for ch in name:
        ch = draw(st.sampled_from([ch.lower(), ch.upper()]))
        out.append(f"\\u{ord(ch):04x}" if draw(st.booleans()) else ch)
    return "".join(out)


@st.composite
def secret_bodies(draw: st.DrawFn) -> str:
    """A body that hands the engine the password ``SECRET-VALUE`` in one of the ways it
    takes one (as JSON text, escapes and case as a client may send them)."""
    key = _spelling(draw, "password")
    urn = draw(st.sampled_from([USER, USER.upper(), USER.replace("User", "\\u0055ser")]))
    value = _spelling(draw, "value")
    path = _spelling(draw, "path")
    qualified = draw(st.sampled_from([key, f"{urn}:{key}", f" {key} "]))
    shape = draw(st.integers(0, 3))
    if shape == 0:  # a create or replace
        return f'{{"userName": "u", "{qualified}": "SECRET-VALUE"}}'
    if shape == 1:  # inside the core schema's object
        return f'{{"{urn}": {{"{key}": "SECRET-VALUE"}}}}'
    if shape == 2:  # a PATCH operation with a path
        op = f'"op": "replace", "{path}": "{qualified}", "{value}": "SECRET-VALUE"'
        return f'{{"Operations": [{{{op}}}]}}'
    return f'{{"Operations": [{{"op": "add", "{value}": {{"{qualified}": "SECRET-VALUE"}}}}]}}'


@settings(max_examples=200, deadline=None)
@given(secret_bodies())
def test_no_spelling_of_a_password_is_recorded(body: str) -> None:
    parsed = json.loads(body)  # valid JSON, as the engine would read it
    assert parsed
    assert "SECRET-VALUE" not in redact_body(body.encode())
