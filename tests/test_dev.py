"""dev.py, the Quick start's bootstrap: pip from its wheel, pip's configuration, exit status.

The whole Quick start on a stock Debian 12 is shown by hand (README); these tests check the
parts a Debian python3 without ensurepip depends on, with a real venv and a real index over
HTTP on an ephemeral port, and that pytest's exit status (5 included) comes through.
"""

from __future__ import annotations

import hashlib
import http.server
import importlib.util
import json
import os
import shutil
import site
import subprocess
import sys
import threading
import venv
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_dev(path: Path = ROOT / "dev.py") -> ModuleType:
    spec = importlib.util.spec_from_file_location("dev_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def dev() -> ModuleType:
    return load_dev()


@pytest.mark.parametrize(
    ("spec", "allowed"),
    [
        (">=3.9", True),
        (">=3.99", False),
        ("<3.99", True),
        ("!=3.*", False),
        ("==3.*", True),
        ("~=3.10", True),
        ("~=3.99", False),
        (f">=3.7,!={'.'.join(map(str, sys.version_info[:3]))}", False),
        ("", True),
        (None, True),
        (">=3.8, <4", True),
    ],
)
def test_requires_python(dev: ModuleType, spec: str | None, allowed: bool) -> None:
    assert dev._python_allowed(spec) is allowed


def test_pip_configuration_is_read_like_pip(dev, tmp_path: Path, monkeypatch) -> None:
    config = tmp_path / "pip.conf"
    config.write_text(
        "[global]\nindex-url = https://global.example/simple\nproxy = proxy.example:3128\n"
        "[install]\nindex-url = https://install.example/simple\n"
    )
    for name in ("PIP_INDEX_URL", "PIP_CERT", "PIP_PROXY", "VIRTUAL_ENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "etc-xdg"))
    monkeypatch.setenv("PIP_CONFIG_FILE", str(config))
    found = dev.pip_config()
    assert found["index-url"] == "https://install.example/simple"  # [install] over [global]
    assert found["proxy"] == "proxy.example:3128"
    monkeypatch.setenv("PIP_INDEX_URL", "https://env.example/simple")
    assert dev.pip_config()["index-url"] == "https://env.example/simple"
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # pip's "no config files"
    monkeypatch.delenv("PIP_INDEX_URL")
    assert dev.pip_config() == {}


# --- a package index on an ephemeral port --------------------------------------------------------
class Index:
    """A simple-API index holding one pip wheel, as HTML (PEP 503) or JSON (PEP 691)."""

    def __init__(self, wheel: Path, style: str) -> None:
        self.wheel, self.style = wheel, style
        self.requests: list[str] = []
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        index = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                index.requests.append(self.path)
                if self.path == "/simple/pip/":
                    self._simple(digest)
                elif self.path == f"/files/{wheel.name}":
                    self._send(index.wheel.read_bytes(), "application/octet-stream")
                else:
                    self.send_error(404)

            def _simple(self, digest: str) -> None:
                old = "pip-1.0-py3-none-any.whl"  # an older wheel and a yanked newer one
                if index.style == "json":
                    files = [
                        {"filename": old, "url": "../../files/old.whl", "hashes": {}},
                        {
                            "filename": "pip-999.0-py3-none-any.whl",
                            "url": "../../files/yanked.whl",
                            "hashes": {},
                            "yanked": "broken",
                        },
                        {
                            "filename": wheel.name,
                            "url": f"../../files/{wheel.name}",
                            "hashes": {"sha256": digest},
                            "requires-python": ">=3.8",
                        },
                    ]
                    body = json.dumps({"meta": {"api-version": "1.0"}, "files": files})
                    self._send(body.encode(), "application/vnd.pypi.simple.v1+json")
                else:
                    links = (
                        f'<a href="../../files/old.whl">{old}</a>\n'
                        '<a href="../../files/yanked.whl" data-yanked="">'
                        "pip-999.0-py3-none-any.whl</a>\n"
                        f'<a href="../../files/{wheel.name}#sha256={digest}" '
                        f'data-requires-python="&gt;=3.8">{wheel.name}</a>\n'
                    )
                    self._send(f"<html><body>{links}</body></html>".encode(), "text/html")

            def _send(self, body: bytes, kind: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def pip_wheel(tmp_path_factory) -> Path:
    """A pip wheel, fetched the way this machine's pip is configured to fetch packages."""
    folder = tmp_path_factory.mktemp("pip-wheel")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "pip",
            "-d",
            str(folder),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    wheels = sorted(folder.glob("pip-*-py3-none-any.whl"))
    if done.returncode != 0 or not wheels:
        pytest.skip(f"no pip wheel to serve: {done.stderr.strip()[-300:]}")
    return wheels[-1]


@pytest.fixture(params=["html", "json"])
def index(request, pip_wheel: Path) -> Iterator[Index]:
    served = Index(pip_wheel, request.param)
    yield served
    served.close()


def test_pip_comes_from_the_configured_index_when_ensurepip_is_missing(
    dev, index: Index, tmp_path: Path, monkeypatch
) -> None:
    """What happens on Debian's python3 without python3-venv: a venv without pip gets pip
    from its wheel, found on the index that pip's configuration names (here, a local one)."""
    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    monkeypatch.setattr(dev, "VENV", target)
    python = dev.venv_python()
    assert not dev._has_pip(python)
    config = tmp_path / "pip.conf"
    config.write_text(f"[global]\nindex-url = {index.url}\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(config))
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    dev.install_pip(python)
    assert dev._has_pip(python)
    assert index.requests == ["/simple/pip/", f"/files/{index.wheel.name}"]
    version = subprocess.run(
        [str(python), "-m", "pip", "--version"], capture_output=True, text=True
    ).stdout
    assert version.startswith("pip " + index.wheel.name.split("-")[1])
    assert str(target) in version  # installed into the venv, not beside this interpreter


def test_a_wheel_that_does_not_match_its_digest_is_refused(
    dev, pip_wheel: Path, tmp_path: Path, monkeypatch
) -> None:
    index = Index(pip_wheel, "html")
    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    monkeypatch.setattr(dev, "VENV", target)
    original = index.wheel.read_bytes()
    bad = tmp_path / "served" / index.wheel.name
    bad.parent.mkdir()
    bad.write_bytes(original)
    index.wheel = bad
    # The digest in the page is of the original; the file now served differs by one byte.
    bad.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    config = tmp_path / "pip.conf"
    config.write_text(f"[global]\nindex-url = {index.url}\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(config))
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    try:
        with pytest.raises(dev.Failure, match="does not match its sha256"):
            dev.install_pip(dev.venv_python())
    finally:
        index.close()
    assert not dev._has_pip(dev.venv_python())


# --- the test command's exit status --------------------------------------------------------------
@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A tiny checkout with dev.py and a .venv it considers installed: the venv sees this
    interpreter's packages (pytest, PySide6) through a .pth file, and the stamp matches."""
    root = tmp_path / "checkout"
    root.mkdir()
    shutil.copy(ROOT / "dev.py", root / "dev.py")
    (root / "pyproject.toml").write_text('[project]\nname = "x"\n')
    venv.EnvBuilder(with_pip=False).create(root / ".venv")
    probe = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    python = load_dev(root / "dev.py").venv_python()
    purelib = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
    paths = [*site.getsitepackages(), site.getusersitepackages(), *sys.path]
    lines = [p for p in dict.fromkeys(paths) if p and Path(p).is_dir()]
    Path(purelib.stdout.strip(), "outer.pth").write_text("\n".join(lines) + "\n")
    digest = hashlib.sha256((root / "pyproject.toml").read_bytes()).hexdigest()
    stamp = {"pyproject": digest, "extras": ["test"]}
    (root / ".venv" / "scim-desktop-dev.json").write_text(json.dumps(stamp))
    return root


@pytest.mark.parametrize(
    ("test_file", "status"),
    [
        ("def test_passes():\n    assert True\n", 0),
        ("def test_fails():\n    assert False\n", 1),
        ("# no tests here\n", 5),
    ],
)
def test_the_test_command_passes_pytests_exit_status_on(
    checkout: Path, test_file: str, status: int
) -> None:
    (checkout / "test_sample.py").write_text(test_file)
    done = subprocess.run(
        [sys.executable, "dev.py", "test", "-p", "no:cacheprovider", "test_sample.py"],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == status, done.stdout + done.stderr
    assert ("that is a failure, not a pass" in done.stderr) is (status == 5)
    assert "installing" not in done.stderr  # the stamp matched: nothing was installed


def test_qt_libraries_are_installed_only_by_root_and_only_known_packages(
    dev: ModuleType, monkeypatch
) -> None:
    """As root (CI, a container) dev.py apt-installs the packages Qt lacks; anyone else, or a
    library no known package brings, gets the command to run instead: never a password prompt.
    The cases here stop before apt-get would run."""
    ran: list[list[str]] = []
    monkeypatch.setattr(dev.subprocess, "run", lambda cmd, **kw: ran.append(cmd))
    assert dev.install_qt_libraries(["libunheard-of.so.7"]) is False
    monkeypatch.setattr(dev.os, "geteuid", lambda: 1000)
    assert dev.install_qt_libraries(["libEGL.so.1"]) is False
    assert ran == []
    hint = dev.qt_libraries_hint(["libEGL.so.1"])
    if shutil.which("apt-get"):
        assert "sudo apt-get install libegl1" in hint
