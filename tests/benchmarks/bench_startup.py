"""Start-up benchmark for the built app: how long from launch until its window is on screen?

Runs the app (by default the PyInstaller build in ``dist/scim-desktop``) on a private Xvfb
screen with the real xcb platform plugin, and watches the X server from outside (Xlib
through ctypes), so no hook in the app is needed:

- **mapped**: the top-level window titled "SCIM Desktop" is viewable;
- **painted**: its pixels are no longer uniform (Qt has drawn the widgets).

Each run gets a temporary data folder, settings folder and a free port, so the user's data
is never touched. Also prints the time of ``--version`` (bootloader and Python start-up
alone), of ``--self-test``, and of ``gui --screenshot`` (start, render, save, exit: an upper
bound). ``--cold`` drops the page cache before each run (root only; Linux) to show a first
start after installing.

    python tests/benchmarks/bench_startup.py [--app dist/scim-desktop/scim-desktop]
        [--python] [--runs 5] [--cold]

Needs Xvfb (Debian: apt-get install xvfb). Bounded: a fixed number of runs, each stopped
after at most 30 s.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TITLE = b"SCIM Desktop"
IS_VIEWABLE = 2
Z_PIXMAP = 2
ALL_PLANES = ctypes.c_ulong(0xFFFFFFFF)


# --- a little Xlib --------------------------------------------------------------------------------
class XWindowAttributes(ctypes.Structure):
    _fields_ = [
        ("x", ctypes.c_int),
        ("y", ctypes.c_int),
        ("width", ctypes.c_int),
        ("height", ctypes.c_int),
        ("border_width", ctypes.c_int),
        ("depth", ctypes.c_int),
        ("visual", ctypes.c_void_p),
        ("root", ctypes.c_ulong),
        ("class_", ctypes.c_int),
        ("bit_gravity", ctypes.c_int),
        ("win_gravity", ctypes.c_int),
        ("backing_store", ctypes.c_int),
        ("backing_planes", ctypes.c_ulong),
        ("backing_pixel", ctypes.c_ulong),
        ("save_under", ctypes.c_int),
        ("colormap", ctypes.c_ulong),
        ("map_installed", ctypes.c_int),
        ("map_state", ctypes.c_int),
        ("all_event_masks", ctypes.c_long),
        ("your_event_mask", ctypes.c_long),
        ("do_not_propagate_mask", ctypes.c_long),
        ("override_redirect", ctypes.c_int),
        ("screen", ctypes.c_void_p),
    ]


class XImageFuncs(ctypes.Structure):
    _fields_ = [
        ("create_image", ctypes.c_void_p),
        ("destroy_image", ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)),
        ("get_pixel", ctypes.c_void_p),
        ("put_pixel", ctypes.c_void_p),
        ("sub_image", ctypes.c_void_p),
        ("add_pixel", ctypes.c_void_p),
    ]


class XImage(ctypes.Structure):
    _fields_ = [
        ("width", ctypes.c_int),
        ("height", ctypes.c_int),
        ("xoffset", ctypes.c_int),
        ("format", ctypes.c_int),
        ("data", ctypes.c_void_p),
        ("byte_order", ctypes.c_int),
        ("bitmap_unit", ctypes.c_int),
        ("bitmap_bit_order", ctypes.c_int),
        ("bitmap_pad", ctypes.c_int),
        ("depth", ctypes.c_int),
        ("bytes_per_line", ctypes.c_int),
        ("bits_per_pixel", ctypes.c_int),
        ("red_mask", ctypes.c_ulong),
        ("green_mask", ctypes.c_ulong),
        ("blue_mask", ctypes.c_ulong),
        ("obdata", ctypes.c_void_p),
        ("f", XImageFuncs),
    ]


class X:
    """Finds the app's top-level window and looks at its pixels."""

    def __init__(self, display: str) -> None:
        name = ctypes.util.find_library("X11")
        if name is None:
            raise SystemExit("libX11 is missing (apt-get install libx11-6)")
        x = ctypes.cdll.LoadLibrary(name)
        x.XOpenDisplay.restype = ctypes.c_void_p
        x.XOpenDisplay.argtypes = [ctypes.c_char_p]
        x.XDefaultRootWindow.restype = ctypes.c_ulong
        x.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        x.XQueryTree.argtypes = [
            ctypes.c_void_p,
            ctypes.c_ulong,
            ctypes.POINTER(ctypes.c_ulong),
            ctypes.POINTER(ctypes.c_ulong),
            ctypes.POINTER(ctypes.POINTER(ctypes.c_ulong)),
            ctypes.POINTER(ctypes.c_uint),
        ]
        x.XFetchName.argtypes = [
            ctypes.c_void_p,
            ctypes.c_ulong,
            ctypes.POINTER(ctypes.c_char_p),
        ]
        x.XGetWindowAttributes.argtypes = [
            ctypes.c_void_p,
            ctypes.c_ulong,
            ctypes.POINTER(XWindowAttributes),
        ]
        x.XGetImage.restype = ctypes.POINTER(XImage)
        x.XGetImage.argtypes = [
            ctypes.c_void_p,
            ctypes.c_ulong,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_ulong,
            ctypes.c_int,
        ]
        x.XFree.argtypes = [ctypes.c_void_p]
        x.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
        x.XCloseDisplay.argtypes = [ctypes.c_void_p]
        self.x = x
        self.dpy = x.XOpenDisplay(display.encode())
        if not self.dpy:
            raise SystemExit(f"cannot open X display {display}")
        self.root = x.XDefaultRootWindow(self.dpy)

    def close(self) -> None:
        self.x.XCloseDisplay(self.dpy)

    def find_window(self) -> tuple[int, int, int] | None:
        """(window, width, height) of the viewable top-level window titled "SCIM Desktop"."""
        x = self.x
        x.XSync(self.dpy, 0)
        root_ret, parent_ret = ctypes.c_ulong(), ctypes.c_ulong()
        children = ctypes.POINTER(ctypes.c_ulong)()
        count = ctypes.c_uint()
        if not x.XQueryTree(
            self.dpy,
            self.root,
            ctypes.byref(root_ret),
            ctypes.byref(parent_ret),
            ctypes.byref(children),
            ctypes.byref(count),
        ):
            return None
        try:
            for i in range(count.value):
                window = children[i]
                name = ctypes.c_char_p()
                if not x.XFetchName(self.dpy, window, ctypes.byref(name)) or not name.value:
                    continue
                title = name.value
                x.XFree(name)
                if title != TITLE:
                    continue
                attrs = XWindowAttributes()
                x.XGetWindowAttributes(self.dpy, window, ctypes.byref(attrs))
                if attrs.map_state == IS_VIEWABLE:
                    return window, attrs.width, attrs.height
        finally:
            if children:
                x.XFree(children)
        return None

    def painted(self, window: int, width: int, height: int) -> bool:
        """Whether the window shows more than a handful of colours (widgets, text)."""
        image = self.x.XGetImage(self.dpy, window, 0, 0, width, height, ALL_PLANES, Z_PIXMAP)
        if not image:
            return False
        try:
            img = image.contents
            raw = ctypes.string_at(img.data, img.bytes_per_line * img.height)
            step = max(1, img.bits_per_pixel // 8)
            colours = {raw[i : i + step] for i in range(0, len(raw), step * 97)}
            return len(colours) > 8
        finally:
            image.contents.f.destroy_image(ctypes.cast(image, ctypes.c_void_p))


# --- runs -------------------------------------------------------------------------------------
def start_xvfb() -> tuple[subprocess.Popen, str]:
    if shutil.which("Xvfb") is None:
        raise SystemExit("Xvfb is missing: apt-get install xvfb")
    for number in range(90, 190):
        if Path(f"/tmp/.X11-unix/X{number}").exists() or Path(f"/tmp/.X{number}-lock").exists():
            continue
        proc = subprocess.Popen(
            ["Xvfb", f":{number}", "-screen", "0", "1440x900x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if Path(f"/tmp/.X11-unix/X{number}").exists():
                return proc, f":{number}"
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        proc.kill()
    raise SystemExit("could not start Xvfb")


def isolated_env(tmp: Path, display: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY")}
    env.update(
        {
            "HOME": str(tmp / "home"),
            "XDG_CONFIG_HOME": str(tmp / "config"),
            "XDG_DATA_HOME": str(tmp / "data"),
            "XDG_CACHE_HOME": str(tmp / "cache"),
            "XDG_RUNTIME_DIR": str(tmp / "runtime"),
        }
    )
    for key in ("home", "config", "data", "cache", "runtime"):
        (tmp / key).mkdir(mode=0o700, exist_ok=True)
    if display:
        env["DISPLAY"] = display
        env["QT_QPA_PLATFORM"] = "xcb"
    return env


def drop_caches() -> None:
    subprocess.run(["sync"], check=False)
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def time_window(cmd: list[str], display: str, x: X, cold: bool) -> tuple[float, float]:
    """Seconds from launch until the window is mapped, and until it is painted."""
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp_name:
        tmp = Path(tmp_name)
        args = [*cmd, "gui", "--port", "0", "--db", str(tmp / "bench.json")]
        env = isolated_env(tmp, display)
        if cold:
            drop_caches()
        t0 = time.perf_counter()
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        mapped = painted = None
        try:
            deadline = t0 + 30
            while time.perf_counter() < deadline and proc.poll() is None:
                found = x.find_window()
                now = time.perf_counter()
                if found and mapped is None:
                    mapped = now - t0
                if found and x.painted(*found):
                    painted = time.perf_counter() - t0
                    break
                time.sleep(0.005)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                _, err = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
        if mapped is None or painted is None:
            tail = err.decode(errors="replace")[-2000:]
            raise SystemExit(f"the window never appeared ({args}); stderr:\n{tail}")
        return mapped, painted


def time_command(cmd: list[str], extra: list[str], cold: bool) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp_name:
        tmp = Path(tmp_name)
        env = isolated_env(tmp, None)
        args = [a.replace("{tmp}", str(tmp)) for a in extra]
        if cold:
            drop_caches()
        t0 = time.perf_counter()
        result = subprocess.run([*cmd, *args], env=env, capture_output=True, timeout=60)
        elapsed = time.perf_counter() - t0
        if result.returncode != 0:
            raise SystemExit(
                f"{' '.join(cmd + args)} failed:\n{result.stdout.decode()}{result.stderr.decode()}"
            )
        return elapsed


def summary(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):.3f} s  (min {min(values):.3f}, "
        f"max {max(values):.3f}, n={len(values)})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--app",
        type=Path,
        default=ROOT / "dist" / "scim-desktop" / "scim-desktop",
        help="the built app's executable (default: dist/scim-desktop/scim-desktop)",
    )
    parser.add_argument(
        "--python", action="store_true", help="measure `python -m scim_desktop` instead"
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--cold", action="store_true", help="drop the page cache before each run (root)"
    )
    args = parser.parse_args()
    if args.python:
        cmd = [sys.executable, "-m", "scim_desktop"]
        label = f"python -m scim_desktop ({sys.executable})"
    else:
        if not args.app.exists():
            raise SystemExit(f"{args.app} does not exist: run python packaging/build.py first")
        cmd = [str(args.app)]
        label = str(args.app)
    if args.cold and os.geteuid() != 0:
        raise SystemExit("--cold needs root (it writes /proc/sys/vm/drop_caches)")

    print(f"Start-up of {label}, {args.runs} runs{' (cold page cache)' if args.cold else ''}")
    versions = [time_command(cmd, ["--version"], args.cold) for _ in range(args.runs)]
    print(f"  --version (process start, no Qt):        {summary(versions)}")
    tests = [time_command(cmd, ["--self-test"], args.cold) for _ in range(args.runs)]
    print(f"  --self-test (whole run, offscreen):      {summary(tests)}")
    shots = [
        time_command(
            cmd,
            ["gui", "--port", "0", "--db", "{tmp}/shot.json", "--screenshot", "{tmp}/shot.png"],
            args.cold,
        )
        for _ in range(args.runs)
    ]
    print(f"  gui --screenshot (start..exit, offscreen): {summary(shots)}")

    xvfb, display = start_xvfb()
    x = X(display)
    try:
        results = [time_window(cmd, display, x, args.cold) for _ in range(args.runs)]
    finally:
        x.close()
        xvfb.terminate()
        xvfb.wait(10)
    print(f"  window mapped on X (xcb):               {summary([r[0] for r in results])}")
    print(f"  window painted on X (xcb):              {summary([r[1] for r in results])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
