"""QtEventSink: the one way server events reach the GUI thread.

The server thread calls :meth:`QtEventSink.publish`, which appends to a deque under a lock and
emits a payload-free signal at most once per drain (a queued connection, so the slot runs on
the GUI thread). A timer on the GUI thread drains the deque every ~75 ms and hands the batch to
the models, so a burst of thousands of requests becomes a few model updates a second
(MusicBrainz Picard's log view works the same way).
"""

from __future__ import annotations

import threading
from collections import deque

from PySide6.QtCore import QObject, Qt, QTimer, Signal

from scim_desktop.server.events import Event

#: Events kept while the GUI is busy; beyond it the oldest are dropped (the models cap their
#: rows anyway, so nothing a user could still see is lost).
MAX_PENDING = 50_000
#: The longest the server thread waits for a paint to finish (a safety net: paints take a few
#: milliseconds once the server thread is out of their way).
PAINT_WAIT_S = 0.05


class QtEventSink(QObject):
    """Thread-safe event buffer with a batched, GUI-thread delivery.

    ``publish`` may be called from any thread; ``batch`` is emitted on the GUI thread with a
    list of events in arrival order.
    """

    wants_changes = True
    #: Emitted (at most once per drain) when the buffer goes from empty to non-empty.
    _pending = Signal()
    #: A batch of events, on the GUI thread.
    batch = Signal(list)

    def __init__(self, interval_ms: int = 75, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._events: deque[Event] = deque(maxlen=MAX_PENDING)
        self._signalled = False
        self._paused = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.drain)
        self._pending.connect(self._on_pending, Qt.ConnectionType.QueuedConnection)
        self.batches_delivered = 0
        # Set while the window paints: see hold().
        self._painting = threading.Event()
        self._painted = threading.Event()
        self._painted.set()

    def publish(self, event: Event) -> None:
        """Called on the server thread after each request: appends under a short lock, and
        waits (at most 50 ms) while the window paints, see :meth:`hold`."""
        with self._lock:
            self._events.append(event)
            signal = not self._signalled
            self._signalled = True
        if signal:
            self._pending.emit()
        if self._painting.is_set():
            self._painted.wait(PAINT_WAIT_S)

    def hold(self) -> None:
        """The window is about to paint (GUI thread). PySide releases the GIL around every
        call between Qt and Python, and a paint makes hundreds of such calls into the
        models: while the server thread runs flat out, each one waits for its turn, which
        stretched a paint to ~100 ms. So the server thread pauses at the end of its current
        request until :meth:`release` (a few ms), and the paint runs uncontended."""
        self._painted.clear()
        self._painting.set()

    def release(self) -> None:
        """The paint is done (GUI thread): the server thread carries on."""
        self._painting.clear()
        self._painted.set()

    def _on_pending(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def drain(self) -> None:
        """Deliver everything buffered as one batch (GUI thread)."""
        with self._lock:
            events = list(self._events)
            self._events.clear()
            self._signalled = False
        if events:
            self.batches_delivered += 1
            # The models apply the batch in Python (re-sorting a sorted table, too): like a
            # paint, it runs uncontended rather than taking turns with the server thread.
            # Slots of `batch` must therefore not open dialogs or run nested event loops:
            # the server would wait PAINT_WAIT_S per published event meanwhile.
            self.hold()
            try:
                self.batch.emit(events)
            finally:
                self.release()
