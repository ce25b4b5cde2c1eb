"""https with a generated certificate or the user's own, over real sockets."""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import ssl
from pathlib import Path

import pytest

from scim_desktop.config import AuthConfig, ServerConfig, TlsConfig
from scim_desktop.server.runner import ServerStartError, ServerThread
from scim_desktop.server.tls import generate_self_signed
from tests.conftest import TOKEN
from tests.server.test_okta_flows import okta_create_body


def tls_server(db_path: Path, tls: TlsConfig, host: str = "127.0.0.1") -> ServerThread:
    config = ServerConfig(
        host=host, port=0, db_path=db_path, auth=AuthConfig("bearer", token=TOKEN), tls=tls
    )
    server = ServerThread(config)
    server.start()
    return server


def https(server: ServerThread, cafile: Path, method: str, path: str, body=None, host="127.0.0.1"):
    context = ssl.create_default_context(cafile=str(cafile))
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    conn = http.client.HTTPSConnection(host, server.port, context=context, timeout=10)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/scim+json"
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def file_fingerprint(cert: Path) -> str:
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def test_generated_certificate_is_trusted_for_127_0_0_1(db_path: Path) -> None:
    tls = TlsConfig.generated_for(db_path)
    assert tls.cert_path == db_path.with_name("scim.tls") / "cert.pem"
    server = tls_server(db_path, tls)
    try:
        assert server.base_url.startswith("https://127.0.0.1:")
        assert server.tls_generated is True
        assert server.tls_fingerprint == file_fingerprint(tls.cert_path)
        assert oct(tls.key_path.stat().st_mode & 0o777) == "0o600"
        assert oct(tls.key_path.parent.stat().st_mode & 0o777) == "0o700"
        status, headers, raw = https(server, tls.cert_path, "GET", "/scim/v2/Users")
        assert status == 200
        status, headers, raw = https(
            server, tls.cert_path, "POST", "/scim/v2/Users", okta_create_body("tls@example.com")
        )
        assert status == 201
        assert headers["Location"].startswith(f"https://127.0.0.1:{server.port}/scim/v2/Users/")
        assert json.loads(raw)["meta"]["location"] == headers["Location"]
        # localhost is named too.
        assert https(server, tls.cert_path, "GET", "/scim/v2/Groups", host="localhost")[0] == 200
        # A client that does not trust the certificate is refused.
        with pytest.raises(ssl.SSLCertVerificationError):
            conn = http.client.HTTPSConnection("127.0.0.1", server.port, timeout=10)
            conn.request("GET", "/scim/v2/Users")
    finally:
        server.stop()
    # The certificate is kept and reused on the next start.
    again = tls_server(db_path, tls)
    try:
        assert again.tls_generated is False
        assert again.tls_fingerprint == file_fingerprint(tls.cert_path)
    finally:
        again.stop()


def test_plain_http_client_gets_no_answer_from_tls_port(db_path: Path) -> None:
    server = tls_server(db_path, TlsConfig.generated_for(db_path))
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
            conn.request("GET", "/scim/v2/Users")
            conn.getresponse()
    finally:
        server.stop()


def test_requests_over_tls_keep_alive_and_refusals_close(db_path: Path) -> None:
    """The HTTP/1.1 layer over TLS: keep-alive serves several requests on one connection,
    and a request it cannot read gets a SCIM Error before the connection closes."""
    tls = TlsConfig.generated_for(db_path)
    server = tls_server(db_path, tls)
    context = ssl.create_default_context(cafile=str(tls.cert_path))
    try:
        conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=context, timeout=10)
        for _ in range(3):
            conn.request("GET", "/scim/v2/Users", headers={"Authorization": f"Bearer {TOKEN}"})
            response = conn.getresponse()
            assert response.status == 200 and json.loads(response.read())["totalResults"] == 0
        conn.close()
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            sock.sendall(b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nBad\r\n\r\n")
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400") and b"Connection: close" in head
        assert json.loads(body)["status"] == "400"
    finally:
        server.stop()


def test_users_own_certificate(tmp_path: Path, db_path: Path) -> None:
    cert, key = tmp_path / "mine" / "server.crt", tmp_path / "mine" / "server.key"
    generate_self_signed(cert, key, ["localhost", "127.0.0.1"])
    tls = TlsConfig(cert, key, self_signed=False)
    server = tls_server(db_path, tls)
    try:
        assert server.tls_fingerprint == file_fingerprint(cert) and not server.tls_generated
        assert https(server, cert, "GET", "/scim/v2/Users")[0] == 200
        assert not db_path.with_name("scim.tls").exists()  # nothing generated
    finally:
        server.stop()


def test_missing_host_name_makes_a_new_certificate(db_path: Path) -> None:
    tls = TlsConfig.generated_for(db_path)
    generate_self_signed(tls.cert_path, tls.key_path, ["localhost"])  # no 127.0.0.1
    old = file_fingerprint(tls.cert_path)
    server = tls_server(db_path, tls)
    try:
        assert server.tls_generated and server.tls_fingerprint != old
        assert https(server, tls.cert_path, "GET", "/scim/v2/Users")[0] == 200
    finally:
        server.stop()


@pytest.mark.parametrize("what", ["missing cert", "missing key", "not pem", "wrong key"])
def test_bad_certificate_is_a_one_line_error(tmp_path: Path, db_path: Path, what: str) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    generate_self_signed(cert, key, ["localhost"])
    if what == "missing cert":
        cert = tmp_path / "nope.pem"
    elif what == "missing key":
        key = tmp_path / "nope.key"
    elif what == "not pem":
        cert.write_text("hello")
    else:
        generate_self_signed(tmp_path / "c2.pem", tmp_path / "k2.pem", ["localhost"])
        key = tmp_path / "k2.pem"
    server = ServerThread(
        ServerConfig(
            port=0, db_path=db_path, auth=AuthConfig("none"), tls=TlsConfig(cert, key, False)
        )
    )
    with pytest.raises(ServerStartError) as info:
        server.start()
    message = str(info.value)
    assert "\n" not in message and ("TLS" in message or "certificate" in message)
    assert str(cert if what != "missing key" else key) in message
