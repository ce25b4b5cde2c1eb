"""Stored password digests: keyed, salted, never the password; old PBKDF2 values still check;
the key file beside the data (mode 0600) is made once and reused."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

from scim_desktop.config import load_or_create_password_key, password_key_path_for
from scim_desktop.core.resources import hash_password, verify_password

KEY = bytes(range(32))


def test_digest_is_keyed_and_salted() -> None:
    a = hash_password("Pl@ceholder-123", KEY)
    b = hash_password("Pl@ceholder-123", KEY)
    assert a.startswith("hmac_sha256$") and a != b  # a fresh salt each time
    assert "Pl@ceholder" not in a
    assert verify_password("Pl@ceholder-123", a, KEY)
    assert not verify_password("Pl@ceholder-124", a, KEY)
    assert not verify_password("Pl@ceholder-123", a, bytes(32))  # another key
    assert not verify_password("Pl@ceholder-123", a)  # no key: cannot be checked


def test_legacy_pbkdf2_values_still_verify() -> None:
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", b"old-secret", salt, 1000)
    b64 = base64.b64encode
    stored = f"pbkdf2_sha256$1000${b64(salt).decode()}${b64(digest).decode()}"
    assert verify_password("old-secret", stored, KEY)
    assert not verify_password("new-secret", stored, KEY)


def test_malformed_values_do_not_verify() -> None:
    for stored in ("", "hmac_sha256$x", "hmac_sha256$!!$!!", "md5$a$b", "pbkdf2_sha256$x$y$z"):
        assert not verify_password("anything", stored, KEY)


def test_key_file_is_private_and_reused(tmp_path: Path) -> None:
    path = password_key_path_for(tmp_path / "data" / "scim.json")
    assert path == tmp_path / "data" / "scim.password-key"
    key = load_or_create_password_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_password_key(path) == key


def test_unreadable_key_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "scim.password-key"
    path.write_text("not hex\n")
    key = load_or_create_password_key(path)
    assert len(key) == 32 and path.read_text().strip() == key.hex()
