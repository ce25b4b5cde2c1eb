"""The tunnel tool as a child process: start it, read its public URL, and always end it.

The child gets its own process group (POSIX session; a new process group on Windows), so
stopping it also stops anything it started. It is ended:

- by :meth:`TunnelProcess.stop` (the server stops the tunnel with itself): SIGTERM to the
  group, then SIGKILL if it is still there after a grace period;
- when this process exits normally (``atexit``), also after SIGINT/SIGTERM that the CLI turns
  into an orderly stop;
- when this process dies without cleaning up (crash, ``kill -9``) on Linux: the child asks the
  kernel for SIGKILL when its parent goes (``prctl(PR_SET_PDEATHSIG)``, set via ctypes between
  fork and exec). The kernel sends it when the *thread* that started the child ends, so start
  it from a thread that lives as long as the tunnel should (the server thread does).

Output (stdout and stderr merged) is read on a helper thread; the last lines are kept for
error messages. Nothing is ever downloaded: a missing tool is an error that says where to
get it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from scim_desktop.tunnel.providers import Provider, one_line, strip_ansi

log = logging.getLogger("scim_desktop.tunnel")

PR_SET_PDEATHSIG = 1
TAIL_LINES = 40


class TunnelError(RuntimeError):
    """The tunnel could not start or ended; the message is one line a person can act on."""


class TunnelToolMissing(TunnelError):
    """The tunnel tool is not installed (or --tunnel-path does not point at it)."""


def locate_tool(provider: Provider, tool_path: str | os.PathLike[str] | None = None) -> str:
    """The executable to run: ``tool_path`` if given (a file, or a folder holding the tool),
    else the tool found on PATH. Raises :class:`TunnelToolMissing` with what to do."""
    if tool_path:
        path = Path(tool_path).expanduser()
        if path.is_dir():
            found = shutil.which(provider.executable, path=str(path))
            if found:
                return found
            raise TunnelToolMissing(
                f"{provider.executable} is not in the folder {path} (--tunnel-path). "
                f"{provider.install_hint}"
            )
        if not path.is_file():
            raise TunnelToolMissing(
                f"{path} does not exist (--tunnel-path for {provider.executable}). "
                f"{provider.install_hint}"
            )
        if not os.access(path, os.X_OK):
            raise TunnelToolMissing(f"{path} is not executable (--tunnel-path); chmod +x it.")
        return str(path)
    found = shutil.which(provider.executable)
    if not found:
        raise TunnelToolMissing(provider.missing_message())
    return found


def _linux_prctl() -> Callable[..., int] | None:
    """libc's prctl, looked up in the parent (never between fork and exec)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


def _death_signal_preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the kernel SIGKILL the child when its parent dies."""
    prctl = _linux_prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


# --- every live tunnel, ended at exit --------------------------------------------------------
_live: set[TunnelProcess] = set()
_live_lock = threading.Lock()


def _stop_all_at_exit() -> None:
    with _live_lock:
        live = list(_live)
    for tunnel in live:
        with contextlib.suppress(Exception):
            tunnel.stop(grace=0.5)


atexit.register(_stop_all_at_exit)


class TunnelProcess:
    """One tunnel tool run. Methods may be called from any thread; :meth:`spawn` should run
    on a thread that outlives the tunnel (see the module docstring)."""

    def __init__(
        self,
        provider: Provider,
        port: int,
        *,
        scheme: str = "http",
        host: str = "127.0.0.1",
        tool_path: str | os.PathLike[str] | None = None,
        on_exit: Callable[[TunnelProcess], None] | None = None,
    ) -> None:
        self.provider = provider
        self.port = port
        self.scheme = scheme
        self.host = host
        self.tool_path = tool_path
        self.on_exit = on_exit
        self.url: str | None = None
        self.returncode: int | None = None
        self.command: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        self._tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._lock = threading.Lock()
        self._changed = threading.Event()  # a URL was printed, or the process ended
        self._exited = threading.Event()
        self._stopping = False
        self._reader: threading.Thread | None = None

    # --- state (any thread) ---------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and not self._exited.is_set()

    @property
    def stopping(self) -> bool:
        return self._stopping

    def tail(self) -> list[str]:
        with self._lock:
            return list(self._tail)

    # --- lifecycle --------------------------------------------------------------------------
    def spawn(self) -> None:
        """Start the tool. Raises :class:`TunnelError` (:class:`TunnelToolMissing` when it is
        not installed)."""
        if self._proc is not None:
            raise RuntimeError("TunnelProcess.spawn() called twice")
        tool = locate_tool(self.provider, self.tool_path)
        try:
            self.command = self.provider.command(tool, self.port, self.scheme, self.host)
        except ValueError as exc:
            raise TunnelError(str(exc)) from None
        kwargs: dict = {}
        if os.name == "posix":
            kwargs["start_new_session"] = True  # own process group, no controlling terminal
            preexec = _death_signal_preexec()
            if preexec is not None:
                kwargs["preexec_fn"] = preexec
        else:  # pragma: no cover - Windows
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | getattr(
                subprocess, "CREATE_NO_WINDOW", 0
            )
        try:
            proc = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                encoding="utf-8",
                errors="replace",
                bufsize=1,
                close_fds=True,
                **kwargs,
            )
        except FileNotFoundError:
            raise TunnelToolMissing(self.provider.missing_message()) from None
        except PermissionError:
            raise TunnelToolMissing(f"{tool} is not executable (chmod +x it).") from None
        except OSError as exc:
            raise TunnelError(f"Could not start {tool}: {exc.strerror or exc}") from None
        self._proc = proc
        with _live_lock:
            _live.add(self)
        log.info("Started %s (pid %d): %s", self.provider.title, proc.pid, " ".join(self.command))
        self._reader = threading.Thread(
            target=self._read, name=f"tunnel-{self.provider.name}", daemon=True
        )
        self._reader.start()

    def wait_for_url(self, timeout: float) -> str:
        """Block until the tool prints its public URL and return ``https://host``. Raises
        :class:`TunnelError` when it exits first or prints none within ``timeout`` seconds
        (the process is left running then; call :meth:`stop`)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.url is not None:
                return self.url
            if self._exited.is_set():
                raise TunnelError(self._failure_message(exited=True))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TunnelError(self._failure_message(exited=False, timeout=timeout))
            self._changed.wait(min(remaining, 0.5))
            self._changed.clear()

    def stop(self, grace: float = 2.0) -> None:
        """End the tool and its process group: SIGTERM, then SIGKILL after ``grace`` seconds.
        Idempotent; waits for the process to be gone."""
        proc = self._proc
        if proc is None:
            return
        self._stopping = True
        if proc.poll() is None:
            self._signal(proc, signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                self._signal(proc, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(2.0)
        elif os.name == "posix":
            # The leader is gone; anything it left in its group goes too.
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(2.0)
        if proc.stdout is not None:
            with contextlib.suppress(OSError):
                proc.stdout.close()
        with _live_lock:
            _live.discard(self)

    @staticmethod
    def _signal(proc: subprocess.Popen[str], sig: int) -> None:
        try:
            if os.name == "posix":
                os.killpg(proc.pid, sig)  # start_new_session: the group id is the pid
            elif sig == signal.SIGTERM:  # pragma: no cover - Windows
                proc.terminate()
            else:  # pragma: no cover - Windows
                proc.kill()
        except (ProcessLookupError, PermissionError):
            pass

    # --- the reader thread --------------------------------------------------------------------
    def _read(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        try:
            for raw in proc.stdout:
                line = strip_ansi(raw.rstrip("\r\n"))
                with self._lock:
                    self._tail.append(line)
                if self.url is None:
                    try:
                        url = self.provider.parse_line(line)
                    except Exception:  # a parser bug must not kill the reader
                        log.exception("Could not parse tunnel output %r", line)
                        url = None
                    if url:
                        self.url = url
                        log.info("%s is up: %s", self.provider.title, url)
                        self._changed.set()
        except (OSError, ValueError):
            pass  # the pipe was closed by stop()
        self.returncode = proc.wait()
        self._exited.set()
        self._changed.set()
        with _live_lock:
            _live.discard(self)
        if self.on_exit is not None:
            try:
                self.on_exit(self)
            except Exception:
                log.exception("Tunnel exit callback failed")

    def _failure_message(self, *, exited: bool, timeout: float = 0.0) -> str:
        lines = self.tail()
        cause = self.provider.explain(lines)
        name = self.provider.executable
        if exited:
            head = f"{name} exited (code {self.returncode}) before printing a public URL."
        else:
            head = f"{name} printed no public URL within {timeout:g} s."
        parts = [head]
        if cause:
            parts.append(cause)
        parts.append(f"Its last output: {one_line(lines[-8:])}")
        return " ".join(parts)

    def exit_message(self) -> str:
        """Why a tunnel that was up ended, in one line."""
        lines = self.tail()
        cause = self.provider.explain(lines)
        text = f"{self.provider.executable} exited (code {self.returncode})."
        if cause:
            text += " " + cause
        return f"{text} Its last output: {one_line(lines[-5:])}"
