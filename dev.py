"""Run SCIM Desktop, or its tests, from this checkout with nothing but Python 3.11+.

    python3 dev.py [OPTIONS]          install into .venv and start the app (scim-desktop OPTIONS)
    python3 dev.py test [ARGS]        install with the test tools and run pytest ARGS

Everything goes into a virtual environment, .venv beside this file, so the system's Python is
never touched: Debian and Ubuntu refuse `pip install` into theirs (PEP 668,
"externally-managed-environment"). Where the venv module cannot install pip (Debian's python3
without the python3-venv package has no ensurepip), the venv is made without pip and pip is
installed into it from its wheel on the package index your pip configuration names (PyPI by
default). The project is installed editable once, and again only when pyproject.toml
changes, so later starts take well under a second. The exit status is the app's or
pytest's; pytest's 5 ("no tests ran") is a failure too. Delete .venv to start from scratch.

Standard library only, and it runs (to say what is missing) on older Pythons.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / "scim-desktop-dev.json"  # what was installed, and from which pyproject.toml
MIN_PYTHON = (3, 11)
DEFAULT_INDEX = "https://pypi.org/simple"
# pytest's exit status when it collected nothing: a broken test run, not a pass.
PYTEST_NO_TESTS = 5


def say(text: str) -> None:
    print(f"dev.py: {text}", file=sys.stderr, flush=True)


class Failure(Exception):
    """A step failed; the message says what to do."""


# --- the virtual environment ---------------------------------------------------------------------
def venv_python() -> Path:
    # Windows venvs keep their programs in Scripts\, the others in bin/.
    if os.name == "nt":
        return VENV / "Scripts" / "python.exe"
    return VENV / "bin" / "python"


def _venv_works() -> bool:
    python = venv_python()
    if not python.exists():
        return False
    check = f"import sys; sys.exit(sys.version_info[:2] < {MIN_PYTHON!r})"
    try:
        return subprocess.run([str(python), "-c", check], timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def ensure_venv() -> Path:
    """The venv's interpreter, making the venv (again) if needed."""
    if not _venv_works():
        if VENV.exists():
            say(f"{VENV} does not work with this Python; making it again")
            shutil.rmtree(VENV)
        # Debian moves ensurepip into the python3-venv package; without it, make the venv
        # without pip and install pip from its wheel below.
        has_ensurepip = _has_module("ensurepip")
        say(f"making a virtual environment in {VENV}")
        try:
            venv.EnvBuilder(with_pip=has_ensurepip, symlinks=os.name != "nt").create(VENV)
        except (OSError, subprocess.CalledProcessError) as exc:
            shutil.rmtree(VENV, ignore_errors=True)
            raise Failure(f"could not make the virtual environment {VENV}: {exc}") from None
    return venv_python()


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _has_pip(python: Path) -> bool:
    done = subprocess.run([str(python), "-m", "pip", "--version"], capture_output=True, timeout=120)
    return done.returncode == 0


# --- pip from its wheel, where ensurepip is missing ----------------------------------------------
def pip_config() -> dict[str, str]:
    """index-url, cert and proxy as pip would read them: its config files, then PIP_* variables.

    Files in pip's order (global, user, site; PIP_CONFIG_FILE last), later ones winning, and
    in each the [install] section over [global].
    """
    home = Path.home()
    if os.name == "nt":
        program_data = Path(os.environ.get("PROGRAMDATA", r"C:\ProgramData"))
        app_data = Path(os.environ.get("APPDATA", home / "AppData" / "Roaming"))
        files = [program_data / "pip" / "pip.ini", home / "pip" / "pip.ini"]
        files.append(app_data / "pip" / "pip.ini")
    else:
        xdg_dirs = os.environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(os.pathsep)
        files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs if d]
        files.append(Path("/etc/pip.conf"))
        if sys.platform == "darwin":
            files.insert(0, Path("/Library/Application Support/pip/pip.conf"))
            files.append(home / "Library" / "Application Support" / "pip" / "pip.conf")
        files.append(home / ".pip" / "pip.conf")
        config_home = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
        files.append(config_home / "pip" / "pip.conf")
    if os.environ.get("VIRTUAL_ENV"):
        name = "pip.ini" if os.name == "nt" else "pip.conf"
        files.append(Path(os.environ["VIRTUAL_ENV"]) / name)
    named = os.environ.get("PIP_CONFIG_FILE")
    if named == os.devnull:
        files = []
    elif named:
        files.append(Path(named))
    found: dict[str, str] = {}
    for path in files:
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (OSError, configparser.Error, UnicodeDecodeError):
            continue
        for section in ("global", "install"):
            for key in ("index-url", "cert", "proxy"):
                if parser.has_option(section, key):
                    found[key] = parser.get(section, key).strip()
    for key in ("index-url", "cert", "proxy"):
        value = os.environ.get("PIP_" + key.upper().replace("-", "_"))
        if value:
            found[key] = value.strip()
    return found


def _opener(config: dict[str, str]) -> urllib.request.OpenerDirector:
    context = ssl.create_default_context(cafile=config.get("cert") or None)
    handlers: list[urllib.request.BaseHandler] = [urllib.request.HTTPSHandler(context=context)]
    if config.get("proxy"):
        proxy = config["proxy"]
        if "://" not in proxy:
            proxy = "http://" + proxy
        handlers.append(urllib.request.ProxyHandler({"http": proxy, "https": proxy}))
    return urllib.request.build_opener(*handlers)


def _version(text: str) -> tuple[int, ...] | None:
    """A final release's version as numbers ("24.3.1"); None for pre-releases and the like."""
    if not re.fullmatch(r"\d+(\.\d+)*", text):
        return None
    return tuple(int(p) for p in text.split("."))


def _python_allowed(spec: str | None) -> bool:
    """Whether this Python meets a Requires-Python such as ">=3.9,!=3.9.0" (PEP 440 subset)."""
    here = tuple(sys.version_info[:3])
    for clause in (spec or "").split(","):
        m = re.fullmatch(r"\s*(~=|==|!=|<=|>=|<|>)\s*(\d+(?:\.\d+)*)(\.\*)?\s*", clause)
        if not m:
            continue  # empty, or a form this check does not know: let pip decide
        op, want = m.group(1), tuple(int(p) for p in m.group(2).split("."))
        if m.group(3):  # "==3.*", "!=3.8.*": a prefix match
            same = here[: len(want)] == want
            ok = same if op == "==" else not same
        elif op == "~=":  # "~=3.9": >= 3.9 and == 3.*
            ok = here >= want and here[: len(want) - 1] == want[:-1]
        else:
            want = (*want, 0, 0, 0)[:3]
            ok = {
                "==": here == want,
                "!=": here != want,
                "<=": here <= want,
                ">=": here >= want,
                "<": here < want,
                ">": here > want,
            }[op]
        if not ok:
            return False
    return True


def _pip_wheels(index: str, opener: urllib.request.OpenerDirector) -> list[dict[str, str]]:
    """The pip wheels the index lists: url, sha256, requires-python, from its simple API
    (PEP 691 JSON where the index offers it, else PEP 503 HTML)."""
    page = index.rstrip("/") + "/pip/"
    request = urllib.request.Request(
        page, headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"}
    )
    with opener.open(request, timeout=60) as response:
        kind = response.headers.get("Content-Type", "")
        body = response.read().decode("utf-8", "replace")
        base = response.geturl()
    wheels: list[dict[str, str]] = []
    if "json" in kind:
        for item in json.loads(body).get("files", []):
            if item.get("yanked"):
                continue
            wheels.append(
                {
                    "filename": item["filename"],
                    "url": urllib.parse.urljoin(base, item["url"]),
                    "sha256": (item.get("hashes") or {}).get("sha256", ""),
                    "requires_python": item.get("requires-python") or "",
                }
            )
        return wheels
    for m in re.finditer(r"<a\s+([^>]*)>([^<]+)</a>", body, re.IGNORECASE):
        attrs, filename = m.group(1), m.group(2).strip()
        if "data-yanked" in attrs:
            continue
        href = re.search(r'href="([^"]+)"', attrs)
        if not href:
            continue
        url = urllib.parse.urljoin(base, href.group(1).replace("&amp;", "&"))
        requires = re.search(r'data-requires-python="([^"]*)"', attrs)
        fragment = urllib.parse.urlsplit(url).fragment
        sha = fragment[len("sha256=") :] if fragment.startswith("sha256=") else ""
        wheels.append(
            {
                "filename": filename,
                "url": url.split("#", 1)[0],
                "sha256": sha,
                "requires_python": (requires.group(1) if requires else "")
                .replace("&gt;", ">")
                .replace("&lt;", "<"),
            }
        )
    return wheels


def install_pip(python: Path) -> None:
    """Install pip into the venv from the newest pip wheel on the configured index."""
    config = pip_config()
    index = config.get("index-url") or DEFAULT_INDEX
    opener = _opener(config)
    say(f"this Python has no ensurepip; installing pip into {VENV} from {index}")
    try:
        wheels = _pip_wheels(index, opener)
        candidates = []
        for wheel in wheels:
            m = re.fullmatch(r"pip-([^-]+)-py3-none-any\.whl", wheel["filename"])
            version = _version(m.group(1)) if m else None
            if version and _python_allowed(wheel["requires_python"]):
                candidates.append((version, wheel))
        if not candidates:
            raise Failure(f"{index} lists no pip wheel for this Python")
        wheel = max(candidates, key=lambda c: c[0])[1]
        with opener.open(wheel["url"], timeout=120) as response:
            data = response.read()
    except (OSError, ValueError) as exc:
        raise Failure(
            f"could not download pip from {index} ({exc}). Check the network or your pip "
            "configuration (index-url, proxy), or install your system's venv support "
            "(Debian/Ubuntu: sudo apt install python3-venv) and run this again."
        ) from None
    if wheel["sha256"] and hashlib.sha256(data).hexdigest() != wheel["sha256"]:
        raise Failure(f"the pip wheel from {wheel['url']} does not match its sha256")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / wheel["filename"]
        path.write_bytes(data)
        # A pip wheel runs pip from inside itself: "python pip.whl/pip install pip.whl".
        done = subprocess.run(
            [str(python), str(path / "pip"), "install", "--no-index", "--quiet", str(path)]
        )
    if done.returncode != 0 or not _has_pip(python):
        raise Failure(f"installing {wheel['filename']} into {VENV} failed")


# --- installing the project ----------------------------------------------------------------------
def install_project(python: Path, extras: set[str]) -> None:
    """pip install -e .[extras] into the venv, unless it was done from this pyproject.toml."""
    fingerprint = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    try:
        stamp = json.loads(STAMP.read_text(encoding="utf-8"))
        if stamp["pyproject"] == fingerprint and extras <= set(stamp["extras"]):
            return
        extras = extras | set(stamp["extras"])  # keep what an earlier run installed
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if not _has_pip(python):
        install_pip(python)
    target = "." + (f"[{','.join(sorted(extras))}]" if extras else "")
    say(f"installing SCIM Desktop ({target}) into {VENV}; the first time takes a minute or two")
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-e", target],
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise Failure(f"pip could not install {target} (its messages are above)")
    STAMP.write_text(
        json.dumps({"pyproject": fingerprint, "extras": sorted(extras)}), encoding="utf-8"
    )


# --- system libraries Qt needs (Linux) -----------------------------------------------------------
# Debian/Ubuntu package for each library a PySide6 wheel loads but does not carry.
DEBIAN_PACKAGES = {
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libGLX.so.0": "libglx0",
    "libOpenGL.so.0": "libopengl0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libgobject-2.0.so.0": "libglib2.0-0",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb.so.1": "libxcb1",
    "libz.so.1": "zlib1g",
}

QT_CHECK = """
import os
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtWidgets import QApplication
QApplication([])
"""


def missing_qt_libraries(python: Path) -> list[str]:
    """Shared libraries Qt cannot find, [] when Qt starts offscreen (the tests need it)."""
    if not sys.platform.startswith("linux"):
        return []
    done = subprocess.run([str(python), "-c", QT_CHECK], capture_output=True, text=True)
    if done.returncode == 0:
        return []
    found = set(re.findall(r"(lib[\w.+-]+\.so[\w.]*): cannot open shared object", done.stderr))
    # One import error names one library; ldd names all of those Qt's offscreen start needs.
    qt = _pyside_folder(python)
    ldd = shutil.which("ldd")
    if qt is not None and ldd:
        # The Qt modules the project and pytest-qt use, the offscreen platform and the image
        # plugins (icons); ldd lists the libraries they need transitively.
        modules = ("QtCore", "QtGui", "QtWidgets", "QtTest")
        libraries = [qt / f"{name}.abi3.so" for name in modules]
        libraries.append(qt / "Qt" / "plugins" / "platforms" / "libqoffscreen.so")
        libraries += sorted((qt / "Qt" / "plugins" / "imageformats").glob("*.so"))
        for library in libraries:
            out = subprocess.run([ldd, str(library)], capture_output=True, text=True).stdout
            for name in re.findall(r"^\s*(\S+) => not found", out, re.MULTILINE):
                # Qt's own libraries come with PySide6 or belong to modules not used here
                # (the PDF image plugin needs PySide6-Addons).
                if not name.startswith("libQt6"):
                    found.add(name)
    if not found:
        raise Failure(f"Qt does not start offscreen in {VENV}:\n{done.stderr.strip()}")
    return sorted(found)


def _pyside_folder(python: Path) -> Path | None:
    done = subprocess.run(
        [str(python), "-c", "import importlib.util as u; print(u.find_spec('PySide6').origin)"],
        capture_output=True,
        text=True,
    )
    return Path(done.stdout.strip()).parent if done.returncode == 0 else None


def _debian_packages(missing: list[str]) -> tuple[list[str], list[str]]:
    """The Debian packages that bring ``missing``, and the libraries no known package brings."""
    packages = sorted({DEBIAN_PACKAGES.get(lib, "") for lib in missing} - {""})
    return packages, [lib for lib in missing if lib not in DEBIAN_PACKAGES]


def install_qt_libraries(missing: list[str]) -> bool:
    """As root on Debian or Ubuntu (a CI machine, a container), install the packages that bring
    ``missing`` with apt-get, saying so; True when that worked. Anyone else is told the
    command instead (qt_libraries_hint): this never asks for a password."""
    packages, unknown = _debian_packages(missing)
    if os.name == "nt" or os.geteuid() != 0 or unknown or not packages:
        return False
    if not shutil.which("apt-get"):
        return False
    say(f"Qt needs system libraries; running as root, so installing: {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
    ):
        if subprocess.run(command, env=env).returncode != 0:
            say(f"{' '.join(command)} failed")
            return False
    return True


def qt_libraries_hint(missing: list[str]) -> str:
    packages, unknown = _debian_packages(missing)
    text = (
        "the tests open Qt windows (offscreen), and Qt needs system libraries this machine "
        f"lacks: {', '.join(missing)}."
    )
    if packages and shutil.which("apt-get"):
        sudo = "" if os.name != "nt" and os.geteuid() == 0 else "sudo "
        text += f" Install them with\n\n    {sudo}apt-get install {' '.join(packages)}\n\n"
        if unknown:
            text += f"(and whichever package has {', '.join(unknown)}) "
        text += "and run this again. The app itself starts without them, headless."
    else:
        text += " Install them with your system's package manager and run this again."
    return text


# --- the commands --------------------------------------------------------------------------------
def run(command: list[str], *, replace: bool) -> int:
    """Run the venv's command; its exit status is ours."""
    sys.stdout.flush()
    sys.stderr.flush()
    if replace and os.name != "nt":
        # The app becomes this process: Ctrl+C, SIGTERM and SIGHUP reach it directly (and so
        # stop a tunnel tool it started).
        os.execv(command[0], command)
    process = subprocess.Popen(command, cwd=ROOT)
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            continue  # the child got Ctrl+C too and ends by itself; report its status


def main(argv: list[str]) -> int:
    if sys.version_info[:2] < MIN_PYTHON:
        version = ".".join(map(str, sys.version_info[:3]))
        say(
            f"SCIM Desktop needs Python {'.'.join(map(str, MIN_PYTHON))} or newer; "
            f"{sys.executable} is {version}."
        )
        return 1
    testing = bool(argv) and argv[0] == "test"
    try:
        python = ensure_venv()
        install_project(python, {"test"} if testing else set())
        if testing:
            missing = missing_qt_libraries(python)
            if missing and install_qt_libraries(missing):
                missing = missing_qt_libraries(python)
            if missing:
                raise Failure(qt_libraries_hint(missing))
    except Failure as exc:
        say(f"error: {exc}")
        return 1
    if not testing:
        return run([str(python), "-m", "scim_desktop", *argv], replace=True)
    status = run([str(python), "-m", "pytest", *argv[1:]], replace=False)
    if status == PYTEST_NO_TESTS:
        say("pytest ran no tests (exit status 5): that is a failure, not a pass")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
