"""Build SCIM Desktop for the system this runs on, with PyInstaller, and package it.

    python packaging/build.py [--self-test] [--clean] [--skip-pyinstaller] [--no-deb]

Run it from an environment where this checkout is installed with the ``package`` extra
(``python3 -m pip install -e ".[package]"``). Everything lands in ``dist/``:

- Linux: ``dist/scim-desktop/`` (the one-folder app), ``scim-desktop-<version>-linux-x86_64.tar.gz``
  and, where ``dpkg-deb`` exists, ``scim-desktop_<version>_amd64.deb`` (installs into
  ``/opt/scim-desktop``, with ``/usr/bin/scim-desktop``, a desktop entry and hicolor icons;
  ``Depends`` worked out from the libraries the bundle links to).
- macOS: ``dist/SCIM Desktop.app`` in ``scim-desktop-<version>-macos-<arch>.dmg``; signed with
  ``SCIM_DESKTOP_CODESIGN_IDENTITY`` when that is set, ad hoc otherwise.
- Windows: ``scim-desktop-<version>-windows-x86_64.zip`` and, with Inno Setup's ``ISCC``
  (on PATH, in ``ISCC``, or in its default folder), ``...-setup.exe`` from
  ``packaging/scim-desktop.iss``.

``--self-test`` then runs the built app's ``--self-test`` (offscreen). Also writes
``dist/SHA256SUMS`` and prints the time of each step and the size of each file.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import bundle_rules  # noqa: E402
import icons  # noqa: E402

APP = "scim-desktop"
DIST = ROOT / "dist"
WORK = ROOT / "build" / "pyinstaller"
SPEC = HERE / "scim-desktop.spec"
IS_LINUX = sys.platform.startswith("linux")
IS_MAC = sys.platform == "darwin"
IS_WIN = sys.platform == "win32"
# The target: the Linux tar.gz stays under 80 MB (it is about 42 MB).
TARBALL_BUDGET_BYTES = 80_000_000

DEB_DESCRIPTION = """\
Mock SCIM 2.0 server for demoing and exploring Okta provisioning
 SCIM Desktop answers every request Okta's provisioning client makes, keeps what Okta
 provisions in a local file and shows every request as it arrives, with switches that make
 the server answer 429, 5xx or slowly."""


class BuildError(Exception):
    """A build step failed; the message says what to do."""


# --- small helpers -------------------------------------------------------------------------------
TIMINGS: list[tuple[str, float]] = []


@contextmanager
def step(name: str) -> Iterator[None]:
    print(f"==> {name}", flush=True)
    t0 = time.perf_counter()
    yield
    elapsed = time.perf_counter() - t0
    TIMINGS.append((name, elapsed))
    print(f"    {name}: {elapsed:.1f} s", flush=True)


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess:
    print("    $ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]


def human(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def tree_size(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() or p.is_symlink())


def machine() -> str:
    arch = platform.machine().lower()
    return {"amd64": "x86_64", "x64": "x86_64", "aarch64": "arm64"}.get(arch, arch)


def app_version() -> str:
    return version(APP)


def check_environment() -> None:
    """The bundle is built from the *installed* scim_desktop: make sure it is this checkout."""
    try:
        import scim_desktop
    except ImportError:
        raise BuildError(
            'scim_desktop is not installed: run  python3 -m pip install -e ".[package]"'
        ) from None
    installed = Path(scim_desktop.__file__).resolve().parent
    if installed != ROOT / "scim_desktop":
        raise BuildError(
            f"scim_desktop is imported from {installed}, not from this checkout ({ROOT}): "
            f'run  python3 -m pip install -e "{ROOT}[package]"'
        )
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        raise BuildError(
            'PyInstaller is missing: run  python3 -m pip install -e ".[package]"'
        ) from None
    if IS_LINUX and shutil.which("objdump") is None:
        raise BuildError("objdump is missing (PyInstaller needs it): apt-get install binutils")


# --- PyInstaller ---------------------------------------------------------------------------------
def pyinstaller(clean: bool) -> Path:
    """Run the spec; returns the one-folder app (``dist/scim-desktop``)."""
    cmd = [
        sys.executable,
        "-m",
        "PyInstaller",
        str(SPEC),
        "--noconfirm",
        "--log-level",
        "WARN",
        "--distpath",
        str(DIST),
        "--workpath",
        str(WORK),
    ]
    if clean:
        cmd.append("--clean")
    run(cmd, cwd=ROOT)
    folder = DIST / APP
    if not folder.is_dir():
        raise BuildError(f"PyInstaller did not produce {folder}")
    return folder


def app_executable() -> Path:
    if IS_MAC:
        return DIST / "SCIM Desktop.app" / "Contents" / "MacOS" / APP
    if IS_WIN:
        return DIST / APP / f"{APP}.exe"
    return DIST / APP / APP


# --- Linux: libraries and Depends ---------------------------------------------------------------
def elf_files(folder: Path) -> list[Path]:
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as f:
                if f.read(4) == b"\x7fELF":
                    found.append(path)
    return found


def system_libraries(folder: Path) -> dict[str, list[str]]:
    """Sonames the bundle needs from the system, each with the bundled files that need it.
    Fails if a library is needed that is neither bundled nor a known system library."""
    files = elf_files(folder)
    bundled = {p.name for p in folder.rglob("*")}
    needed: dict[str, list[str]] = {}
    unknown: list[str] = []
    for path in files:
        for soname in bundle_rules.elf_needed(str(path)):
            if soname in bundled:
                continue
            rel = str(path.relative_to(folder))
            if soname in bundle_rules.SYSTEM_LIBS:
                needed.setdefault(soname, []).append(rel)
            else:
                unknown.append(f"{rel} needs {soname}")
    if unknown:
        raise BuildError(
            "the bundle is incomplete; these libraries are neither bundled nor known system "
            "libraries (add them to SYSTEM_LIBS in packaging/bundle_rules.py, or bundle them):\n  "
            + "\n  ".join(unknown)
        )
    return needed


def _ldconfig_paths() -> dict[str, str]:
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    paths: dict[str, str] = {}
    for m in re.finditer(r"^\s*(\S+) \(([^)]*)\) => (\S+)$", out, re.MULTILINE):
        if "x86-64" in m.group(2) or machine() != "x86_64":
            paths.setdefault(m.group(1), m.group(3))
    return paths


def deb_package_for(soname: str, ld_paths: dict[str, str]) -> str:
    """The Debian package that provides ``soname`` on this machine (dpkg -S), else the table
    in bundle_rules (for a library that is not installed where the build runs)."""
    path = ld_paths.get(soname)
    if path and shutil.which("dpkg"):
        for candidate in (path, os.path.realpath(path)):
            result = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
            if result.returncode == 0:
                package = result.stdout.split(":")[0].strip()
                if package and "," not in package:
                    return package
    return bundle_rules.SYSTEM_LIBS[soname]


def glibc_minimum(folder: Path) -> str | None:
    """The newest GLIBC_x.y symbol version any bundled file needs (for ``libc6 (>= x.y)``)."""
    best: tuple[int, ...] = ()
    for path in elf_files(folder):
        out = subprocess.run(["objdump", "-T", str(path)], capture_output=True, text=True).stdout
        for m in re.finditer(r"GLIBC_(\d+(?:\.\d+)+)", out):
            best = max(best, tuple(int(x) for x in m.group(1).split(".")))
    return ".".join(map(str, best)) if best else None


def deb_depends(folder: Path) -> list[str]:
    needed = system_libraries(folder)
    ld_paths = _ldconfig_paths()
    packages = {deb_package_for(soname, ld_paths) for soname in needed}
    glibc = glibc_minimum(folder)
    depends = []
    for package in sorted(packages):
        if package == "libc6" and glibc:
            depends.append(f"libc6 (>= {glibc})")
        else:
            depends.append(package)
    return depends


# --- Linux: tar.gz and .deb ----------------------------------------------------------------------
def _tar_filter(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if info.isdir() or info.mode & 0o111:
        info.mode = 0o755
    else:
        info.mode = 0o644
    return info


def remove_old_artifacts() -> None:
    """Installers of earlier builds (other versions too), so dist/ holds one of each."""
    for pattern in (
        f"{APP}-*.tar.gz",
        f"{APP}_*.deb",
        f"{APP}-*.dmg",
        f"{APP}-*.zip",
        f"{APP}-*.exe",
    ):
        for path in DIST.glob(pattern):
            path.unlink()


def make_tarball(folder: Path, ver: str) -> Path:
    name = f"{APP}-{ver}-linux-{machine()}"
    out = DIST / f"{name}.tar.gz"
    # gzip level 6: within a few percent of level 9 on this content, at a third of the time.
    with (
        gzip.GzipFile(out, "wb", compresslevel=6, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        tar.add(folder, arcname=name, filter=_tar_filter)
        for extra in ("scim-desktop.desktop", "icons/scim-desktop.svg"):
            src = ROOT / "resources" / extra
            tar.add(src, arcname=f"{name}/{Path(extra).name}", filter=_tar_filter)
    return out


def debian_version(ver: str) -> str:
    """PEP 440 to Debian: pre-releases sort before the release (0.2.0rc1 -> 0.2.0~rc1)."""
    return re.sub(r"(\d)(a|b|rc|\.dev)(\d+)", r"\1~\2\3", ver)


def _copy_tree_normalised(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, symlinks=True)
    for path in [dst, *dst.rglob("*")]:
        if path.is_symlink():
            continue
        if path.is_dir() or os.stat(path).st_mode & 0o111:
            path.chmod(0o755)
        else:
            path.chmod(0o644)


def make_deb(folder: Path, ver: str, depends: list[str]) -> Path:
    arch = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()
    deb_ver = debian_version(ver)
    stage = ROOT / "build" / "deb" / "root"
    if stage.exists():
        shutil.rmtree(stage)
    _copy_tree_normalised(folder, stage / "opt" / APP)

    (stage / "usr" / "bin").mkdir(parents=True)
    # A symlink: the PyInstaller bootloader resolves its real path to find _internal/.
    (stage / "usr" / "bin" / APP).symlink_to(f"/opt/{APP}/{APP}")

    apps = stage / "usr" / "share" / "applications"
    apps.mkdir(parents=True)
    shutil.copy(ROOT / "resources" / "scim-desktop.desktop", apps / "scim-desktop.desktop")
    hicolor = stage / "usr" / "share" / "icons" / "hicolor"
    for size in icons.ICON_SIZES:
        target = hicolor / f"{size}x{size}" / "apps"
        target.mkdir(parents=True)
        shutil.copy(icons.png_path(size), target / f"{APP}.png")
    (hicolor / "scalable" / "apps").mkdir(parents=True)
    shutil.copy(icons.ICON_DIR / "scim-desktop.svg", hicolor / "scalable" / "apps" / f"{APP}.svg")
    doc = stage / "usr" / "share" / "doc" / APP
    doc.mkdir(parents=True)
    shutil.copy(ROOT / "LICENSE", doc / "copyright")
    for path in (stage / "usr").rglob("*"):
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)

    installed_kib = (tree_size(stage) + 1023) // 1024
    control = stage / "DEBIAN" / "control"
    control.parent.mkdir(parents=True)
    control.write_text(
        f"Package: {APP}\n"
        f"Version: {deb_ver}\n"
        f"Architecture: {arch}\n"
        "Maintainer: SCIM Desktop maintainers <scim-desktop@users.noreply.github.com>\n"
        f"Installed-Size: {installed_kib}\n"
        f"Depends: {', '.join(depends)}\n"
        "Section: devel\n"
        "Priority: optional\n"
        f"Description: {DEB_DESCRIPTION}\n",
        encoding="utf-8",
    )
    out = DIST / f"{APP}_{deb_ver}_{arch}.deb"
    # gzip, not xz: xz takes minutes on ~100 MB; every dpkg reads gzip (zstd needs dpkg 1.21.18+).
    run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-z6", "--build", str(stage), str(out)])
    return out


# --- macOS ----------------------------------------------------------------------------------------
def make_dmg(ver: str) -> Path:
    app = DIST / "SCIM Desktop.app"
    if not app.is_dir():
        raise BuildError(f"PyInstaller did not produce {app}")
    identity = os.environ.get("SCIM_DESKTOP_CODESIGN_IDENTITY")
    if identity:
        run(["codesign", "--verify", "--deep", "--strict", "--verbose=2", str(app)])
    stage = ROOT / "build" / "dmg"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    run(["ditto", str(app), str(stage / app.name)])
    (stage / "Applications").symlink_to("/Applications")
    out = DIST / f"{APP}-{ver}-macos-{machine()}.dmg"
    out.unlink(missing_ok=True)
    run(
        [
            "hdiutil",
            "create",
            "-volname",
            "SCIM Desktop",
            "-srcfolder",
            str(stage),
            "-ov",
            "-format",
            "UDZO",
            str(out),
        ]
    )
    if identity:
        run(["codesign", "--sign", identity, "--timestamp", str(out)])
    return out


# --- Windows --------------------------------------------------------------------------------------
def make_zip(folder: Path, ver: str) -> Path:
    base = DIST / f"{APP}-{ver}-windows-{machine()}"
    return Path(shutil.make_archive(str(base), "zip", root_dir=folder.parent, base_dir=folder.name))


def find_iscc() -> str | None:
    candidates = [os.environ.get("ISCC"), shutil.which("iscc"), shutil.which("ISCC")]
    for env in ("ProgramFiles(x86)", "ProgramFiles"):
        if os.environ.get(env):
            candidates.append(str(Path(os.environ[env]) / "Inno Setup 6" / "ISCC.exe"))
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def make_installer(folder: Path, ver: str, ico: Path) -> Path | None:
    iscc = find_iscc()
    if iscc is None:
        print("    Inno Setup (ISCC.exe) not found: no installer; set ISCC to its path")
        return None
    name = f"{APP}-{ver}-windows-{machine()}-setup"
    run(
        [
            iscc,
            f"/DAppVersion={ver}",
            f"/DBundleDir={folder}",
            f"/DOutputDir={DIST}",
            f"/DOutputName={name}",
            f"/DIconFile={ico}",
            str(HERE / "scim-desktop.iss"),
        ]
    )
    return DIST / f"{name}.exe"


# --- self-test and summary -----------------------------------------------------------------------
def self_test() -> None:
    exe = app_executable()
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY")}
    print(f"    $ {exe} --self-test", flush=True)
    # Pipes, not inherited handles: a windowed Windows app gets a usable stdout only so.
    result = subprocess.run(
        [str(exe), "--self-test"],
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=300,
    )
    print(result.stdout, end="")
    print(result.stderr, end="", file=sys.stderr)
    if result.returncode != 0:
        raise BuildError(f"the built app's self-test failed (exit status {result.returncode})")


def write_checksums(files: list[Path]) -> Path:
    out = DIST / "SHA256SUMS"
    lines = []
    for path in files:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines.append(f"{digest}  {path.name}\n")
    out.write_text("".join(lines), encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clean", action="store_true", help="ignore PyInstaller's cache")
    parser.add_argument(
        "--skip-pyinstaller", action="store_true", help="package the existing dist/scim-desktop"
    )
    parser.add_argument("--no-deb", action="store_true", help="Linux: no .deb")
    parser.add_argument(
        "--self-test", action="store_true", help="run the built app's --self-test afterwards"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        check_environment()
        ver = app_version()
        print(f"SCIM Desktop {ver}: building for {sys.platform} {machine()}")
        DIST.mkdir(exist_ok=True)
        folder = DIST / APP
        if not args.skip_pyinstaller:
            with step("PyInstaller (one-folder, windowed)"):
                folder = pyinstaller(args.clean)
        if not folder.is_dir():
            raise BuildError(f"no app at {folder}: run without --skip-pyinstaller")
        artifacts: list[Path] = []
        remove_old_artifacts()
        if IS_LINUX:
            with step("check libraries, work out Depends"):
                depends = deb_depends(folder)
                print(f"    Depends: {', '.join(depends)}")
            with step("tar.gz"):
                tarball = make_tarball(folder, ver)
                artifacts.append(tarball)
                if tarball.stat().st_size >= TARBALL_BUDGET_BYTES:
                    raise BuildError(
                        f"{tarball.name} is {human(tarball.stat().st_size)}, over the "
                        f"{human(TARBALL_BUDGET_BYTES)} budget: see packaging/README.md"
                    )
            if not args.no_deb:
                if shutil.which("dpkg-deb") is None:
                    print("    dpkg-deb not found: no .deb (apt-get install dpkg-dev)")
                else:
                    with step(".deb"):
                        artifacts.append(make_deb(folder, ver, depends))
        elif IS_MAC:
            with step(".dmg"):
                artifacts.append(make_dmg(ver))
        elif IS_WIN:
            ico, _ = icons.write_icons(WORK / "icons")
            with step(".zip"):
                artifacts.append(make_zip(folder, ver))
            with step("Inno Setup installer"):
                installer = make_installer(folder, ver, ico)
                if installer is not None:
                    artifacts.append(installer)
        if args.self_test:
            with step("self-test of the built app"):
                self_test()
        sums = write_checksums(artifacts)
    except (BuildError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        print(f"build.py: error: {exc}", file=sys.stderr)
        return 1
    print(f"\nBuilt in {time.perf_counter() - started:.1f} s:")
    print(f"  {folder.relative_to(ROOT)}/  {human(tree_size(folder))} unpacked")
    for path in [*artifacts, sums]:
        print(f"  {path.relative_to(ROOT)}  {human(path.stat().st_size)}")
    print("Timings: " + ", ".join(f"{name} {secs:.1f} s" for name, secs in TIMINGS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
