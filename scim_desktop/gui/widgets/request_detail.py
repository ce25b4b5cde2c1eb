"""The detail pane of one request: headers and bodies, the Okta step and its explanation,
the fault that answered it and, for 429s, where the request stands in Okta's retry schedule.
In proxy mode also what the upstream (the user's own server) answered, the time spent there
and in the proxy, and whether Okta would accept that answer.
"""

from __future__ import annotations

import html
import re

import orjson
from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QGuiApplication,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextOption,
)
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from scim_desktop.core.okta import DEFAULT_RETRY_WAIT_S, MAX_ATTEMPTS, retry_wait
from scim_desktop.gui import theme
from scim_desktop.gui.export import record_url, to_curl
from scim_desktop.gui.models.requests import (
    REJECT_MARK,
    UpstreamFacts,
    display_target,
    format_local_time,
    reason_phrase,
    upstream_facts,
)
from scim_desktop.server.events import RequestRecord

__all__ = ["EMPTY_TEXT", "HeaderHighlighter", "JsonHighlighter", "RequestDetail", "pretty_body"]

#: Bodies longer than this are added to their view in slices of this many characters.
CHUNK_CHARS = 24 * 1024
EMPTY_TEXT = "Select a request to see its headers and bodies"
#: OKTA.md, "Errors, rate limits and retries", in one sentence for the retry timeline.
RETRY_RULE = (
    "Okta's rule: an integer Retry-After is honoured; a missing one, an HTTP-date or anything "
    f"else means {DEFAULT_RETRY_WAIT_S / 60:g} minutes; each further 429 doubles the wait; "
    f"after {MAX_ATTEMPTS} attempts the task fails for good."
)

# One pass per line: keys (a string followed by a colon), strings, literals, numbers.
_JSON_TOKEN = re.compile(
    r'(?P<key>"(?:[^"\\]|\\.)*"(?=\s*:))'
    r'|(?P<string>"(?:[^"\\]|\\.)*"?)'
    r"|(?P<literal>\b(?:true|false|null)\b)"
    r"|(?P<number>-?\b\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\b)"
)
_NON_BMP = re.compile("[\U00010000-\U0010ffff]")
#: The note ``events.redact_body`` appends to a body cut at the recording limit.
_TRUNCATED = re.compile(r"… \[\d+ more characters\]\Z")
_PARTIAL_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[{}\[\],:]|[^\s{}\[\],:"]+')
#: Lines longer than this are shown broken into pieces of this length.
MAX_LINE = 1000
_LONG_LINE = re.compile(rf"[^\n]{{{MAX_LINE + 1}}}")


def pretty_body(body: str) -> tuple[str, bool]:
    """The body pretty-printed when it is JSON (two-space indent), else as recorded; and
    whether it is shown as JSON. A JSON body cut at the recording limit is indented as far
    as it goes, with the "… [N more characters]" note on its own line."""
    if not body:
        return "", False
    if not body.lstrip().startswith(("{", "[")):
        return body, False
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        cut = _TRUNCATED.search(body)
        if cut is None:
            return body, False  # broken JSON: shown exactly as it came
        return _indent_partial(body[: cut.start()]) + "\n" + cut.group().strip(), True
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode(), True


def _indent_partial(text: str) -> str:
    """Indent JSON that may stop anywhere (no parsing, so a cut body still reads well)."""
    pieces: list[str] = []
    depth = 0
    just_opened = False
    for match in _PARTIAL_TOKEN.finditer(text):
        token = match.group()
        if token in ("{", "["):
            depth += 1
            pieces.append(token)
            pieces.append("\n" + "  " * depth)
            just_opened = True
            continue
        if token in ("}", "]"):
            depth = max(depth - 1, 0)
            if just_opened:
                pieces.pop()  # an empty container stays "{}" / "[]"
            else:
                pieces.append("\n" + "  " * depth)
            pieces.append(token)
        elif token == ",":
            pieces.append(",\n" + "  " * depth)
        elif token == ":":
            pieces.append(": ")
        else:
            pieces.append(token)
        just_opened = False
    return "".join(pieces)


def display_text(text: str) -> str:
    """Text with lines longer than :data:`MAX_LINE` broken up: Qt lays out one huge line
    (a minified body) in seconds, the same text in short lines in milliseconds."""
    if not _LONG_LINE.search(text):
        return text
    out: list[str] = []
    for line in text.split("\n"):
        if len(line) <= MAX_LINE:
            out.append(line)
        else:
            out.extend(line[i : i + MAX_LINE] for i in range(0, len(line), MAX_LINE))
    return "\n".join(out)


def _split_chunks(text: str, size: int) -> list[str]:
    """``text`` in pieces of about ``size`` characters, each cut just after a newline (so no
    line is split between two highlighting passes) unless a single line is longer."""
    chunks: list[str] = []
    start = 0
    while start < len(text):
        end = start + size
        if end < len(text):
            newline = text.rfind("\n", start, end)
            if newline > start:
                end = newline + 1
        chunks.append(text[start:end])
        start = end
    return chunks


def _utf16_offsets(text: str) -> list[int] | None:
    """Qt positions are UTF-16 code units; only characters beyond the BMP make them differ."""
    if text.isascii() or not _NON_BMP.search(text):
        return None
    offsets = [0]
    total = 0
    for ch in text:
        total += 2 if ord(ch) > 0xFFFF else 1
        offsets.append(total)
    return offsets


class JsonHighlighter(QSyntaxHighlighter):
    """Colours JSON keys, strings, numbers and true/false/null (one regex pass per line)."""

    def __init__(self, document: QTextDocument | None = None) -> None:
        super().__init__(document)
        self.enabled = True
        self._formats: dict[str, QTextCharFormat] = {}
        self.refresh_colors()

    def refresh_colors(self) -> None:
        self._formats = {}
        for kind in ("key", "string", "number", "literal"):
            fmt = QTextCharFormat()
            fmt.setForeground(theme.json_color(kind))
            if kind == "key":
                fmt.setFontWeight(QFont.Weight.DemiBold)
            self._formats[kind] = fmt

    def highlightBlock(self, text: str) -> None:
        if not self.enabled or not text:
            return
        formats = self._formats
        offsets = _utf16_offsets(text)
        for match in _JSON_TOKEN.finditer(text):
            kind = match.lastgroup
            if kind is None:
                continue
            start, end = match.span()
            if offsets is not None:
                start, end = offsets[start], offsets[end]
            self.setFormat(start, end - start, formats[kind])


class HeaderHighlighter(QSyntaxHighlighter):
    """Header names (before the first colon) in the key colour."""

    def __init__(self, document: QTextDocument | None = None) -> None:
        super().__init__(document)
        self._format = QTextCharFormat()
        self.refresh_colors()

    def refresh_colors(self) -> None:
        self._format = QTextCharFormat()
        self._format.setForeground(theme.json_color("key"))
        self._format.setFontWeight(QFont.Weight.DemiBold)

    def highlightBlock(self, text: str) -> None:
        colon = text.find(":")
        if colon > 0:
            self.setFormat(0, len(text[:colon].encode("utf-16-le")) // 2, self._format)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 7200:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min" + (f" {rest} s" if rest else "")
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours} h" + (f" {rest // 60} min" if rest >= 60 else "")


def _size(text: str) -> str:
    size = len(text.encode("utf-8"))
    if size < 1024:
        return f"{size} B"
    return f"{size / 1024:.1f} KB"


def _header(headers: dict[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def _color(color: object) -> str:
    return color.name()  # type: ignore[attr-defined]


class _MessagePane(QWidget):
    """Headers above, body below, in a splitter; both read-only and monospaced."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.setChildrenCollapsible(False)
        self.headers = QPlainTextEdit(self.splitter)
        self.body = QPlainTextEdit(self.splitter)
        for edit in (self.headers, self.body):
            edit.setReadOnly(True)
            edit.setUndoRedoEnabled(False)
            edit.setFont(theme.mono_font())
            edit.setFrameShape(QFrame.Shape.StyledPanel)
            edit.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
            edit.setTextInteractionFlags(
                Qt.TextInteractionFlag.TextSelectableByMouse
                | Qt.TextInteractionFlag.TextSelectableByKeyboard
            )
        self.headers.setPlaceholderText("No headers")
        self.body.setPlaceholderText("No body")
        self.body.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.header_highlighter = HeaderHighlighter(self.headers.document())
        self.highlighter = JsonHighlighter(self.body.document())
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        layout.addWidget(self.splitter)
        self.body_text = ""
        self._generation = 0
        self._pending: list[str] = []

    def show_message(self, headers: dict[str, str], body: str) -> None:
        lines = [f"{name}: {value}" for name, value in headers.items()]
        self.headers.setPlainText("\n".join(lines))
        text, is_json = pretty_body(body)
        self.body_text = text
        text = display_text(text)
        self.highlighter.enabled = is_json or text.lstrip().startswith(("{", "["))
        self.body.setLineWrapMode(
            QPlainTextEdit.LineWrapMode.NoWrap
            if is_json
            else QPlainTextEdit.LineWrapMode.WidgetWidth
        )
        self._generation += 1
        if len(text) <= CHUNK_CHARS:
            self._pending = []
            self.body.setPlainText(text)
        else:
            # A big body (up to 256 KB, ~20,000 lines pretty-printed) is laid out and
            # highlighted in slices, one per event-loop turn, so the window never stalls.
            chunks = _split_chunks(text, CHUNK_CHARS)
            self.body.setPlainText(chunks[0])
            self._pending = chunks[1:]
            generation = self._generation
            QTimer.singleShot(0, lambda: self._load_more(generation))
        self._size_headers(len(lines))

    @property
    def loading(self) -> bool:
        """Part of a big body is still being added."""
        return bool(self._pending)

    def _load_more(self, generation: int) -> None:
        if generation != self._generation or not self._pending:
            return
        chunk = self._pending.pop(0)
        cursor = QTextCursor(self.body.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(chunk)
        if self._pending:
            QTimer.singleShot(0, lambda: self._load_more(generation))

    def _size_headers(self, count: int) -> None:
        metrics = self.headers.fontMetrics()
        wanted = metrics.lineSpacing() * max(1, min(count, 10)) + 14
        total = max(self.splitter.height(), wanted * 3)
        self.splitter.setSizes([wanted, max(total - wanted, 1)])

    def clear(self) -> None:
        self._generation += 1
        self._pending = []
        self.headers.clear()
        self.body.clear()
        self.body_text = ""

    def set_mono_font(self, font: QFont) -> None:
        self.headers.setFont(font)
        self.body.setFont(font)

    def refresh_colors(self) -> None:
        self.highlighter.refresh_colors()
        self.header_highlighter.refresh_colors()
        self.highlighter.rehighlight()
        self.header_highlighter.rehighlight()


class RequestDetail(QWidget):
    """Everything about one request; :meth:`show_record` fills it, :meth:`clear` empties it."""

    #: A short message for the status bar ("Copied the curl command").
    message = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._record: RequestRecord | None = None
        self._proxied = False
        self._refreshing = False

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.stack = QStackedWidget(self)
        outer.addWidget(self.stack)

        self.empty_label = QLabel(EMPTY_TEXT, self)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.stack.addWidget(self.empty_label)

        page = QWidget(self)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(8, 6, 8, 4)
        layout.setSpacing(4)

        self.header_label = QLabel(page)
        self.header_label.setTextFormat(Qt.TextFormat.RichText)
        self.header_label.setWordWrap(True)
        self.header_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        header_font = self.header_label.font()
        header_font.setPointSizeF(header_font.pointSizeF() * 1.1)
        self.header_label.setFont(header_font)
        layout.addWidget(self.header_label)

        self.meta_label = QLabel(page)
        self.meta_label.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self.meta_label)

        self.fault_banner = QLabel(page)
        self.fault_banner.setWordWrap(True)
        self.fault_banner.setTextFormat(Qt.TextFormat.PlainText)
        self.fault_banner.setMargin(6)
        self.fault_banner.hide()
        layout.addWidget(self.fault_banner)

        # Proxy mode: the upstream's status and timing, then what Okta would make of it.
        self.upstream_label = QLabel(page)
        self.upstream_label.setTextFormat(Qt.TextFormat.RichText)
        self.upstream_label.setWordWrap(True)
        self.upstream_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.upstream_label.hide()
        layout.addWidget(self.upstream_label)
        self.reject_banner = QLabel(page)
        self.reject_banner.setObjectName("rejectBanner")
        self.reject_banner.setTextFormat(Qt.TextFormat.RichText)
        self.reject_banner.setWordWrap(True)
        self.reject_banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.reject_banner.setMargin(6)
        self.reject_banner.hide()
        layout.addWidget(self.reject_banner)

        self.step_label = QLabel(page)
        step_font = self.step_label.font()
        step_font.setBold(True)
        self.step_label.setFont(step_font)
        self.step_label.setWordWrap(True)
        self.step_label.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self.step_label)

        self.explanation_label = QLabel(page)
        self.explanation_label.setWordWrap(True)
        self.explanation_label.setTextFormat(Qt.TextFormat.PlainText)
        self.explanation_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.explanation_label.setSizePolicy(
            QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum
        )
        layout.addWidget(self.explanation_label)

        self.retry_label = QLabel(page)
        self.retry_label.setTextFormat(Qt.TextFormat.RichText)
        self.retry_label.setWordWrap(True)
        self.retry_label.hide()
        layout.addWidget(self.retry_label)

        self.tabs = QTabWidget(page)
        self.tabs.setDocumentMode(True)
        self.request_pane = _MessagePane(self.tabs)
        self.response_pane = _MessagePane(self.tabs)
        self.tabs.addTab(self.request_pane, "Request")
        self.tabs.addTab(self.response_pane, "Response")
        corner = QWidget(self.tabs)
        corner_layout = QHBoxLayout(corner)
        corner_layout.setContentsMargins(0, 0, 0, 2)
        corner_layout.setSpacing(4)
        self.copy_body_button = QPushButton("Copy body", corner)
        self.copy_body_button.setToolTip("Copy the body shown in the current tab")
        self.copy_curl_button = QPushButton("Copy as curl", corner)
        self.copy_curl_button.setToolTip(
            "Copy a curl command that repeats this request (the token stays $TOKEN)"
        )
        corner_layout.addWidget(self.copy_body_button)
        corner_layout.addWidget(self.copy_curl_button)
        self.tabs.setCornerWidget(corner, Qt.Corner.TopRightCorner)
        layout.addWidget(self.tabs, 1)
        self.stack.addWidget(page)

        self._preferred_tab = 0
        self.tabs.tabBarClicked.connect(self._remember_tab)
        self.copy_body_button.clicked.connect(self.copy_body)
        self.copy_curl_button.clicked.connect(self.copy_curl)
        self._apply_colors()
        self.clear()

    # --- content ---------------------------------------------------------------------------------
    @property
    def record(self) -> RequestRecord | None:
        return self._record

    def clear(self) -> None:
        """Show the empty state."""
        self._record = None
        self.request_pane.clear()
        self.response_pane.clear()
        self.stack.setCurrentIndex(0)

    def show_record(self, record: RequestRecord, *, proxied: bool = False) -> None:
        """Show ``record``; ``proxied``: it went through the proxy (the window was in proxy
        mode), so a request without upstream facts was answered by the proxy itself."""
        if record is self._record and proxied == self._proxied:
            return
        self._record = record
        self._proxied = proxied
        facts = upstream_facts(record)
        proxied = proxied or facts.reached
        self.header_label.setText(self._header_html(record))
        self.header_label.setToolTip(record_url(record))
        meta = [format_local_time(record.time, with_date=True), f"{record.duration_ms:,.1f} ms"]
        if record.client:
            meta.append(f"from {record.client}")
        self.meta_label.setText("  ·  ".join(meta))

        if record.fault and proxied and not facts.reached:
            self.fault_banner.setText(
                f"⚡ Answered by the proxy's fault rule: {record.fault}; the upstream never saw it"
            )
            self.fault_banner.show()
        elif record.fault:
            self.fault_banner.setText(f"⚡ Answered by a fault rule: {record.fault}")
            self.fault_banner.show()
        else:
            self.fault_banner.hide()
        upstream = self._upstream_html(record, facts) if facts.reached else ""
        self.upstream_label.setText(upstream)
        self.upstream_label.setVisible(bool(upstream))
        self.reject_banner.setText(self._reject_html(facts))
        self.reject_banner.setVisible(bool(facts.problems))

        if record.okta_label:
            self.step_label.setText(record.okta_label)
            self.explanation_label.setText(record.okta_explanation or "")
            self.explanation_label.setVisible(bool(record.okta_explanation))
        else:
            self.step_label.setText("No Okta step")
            self.explanation_label.setText("This request was not labelled as an Okta step.")
            self.explanation_label.show()

        timeline = self._retry_html(record)
        self.retry_label.setText(timeline)
        self.retry_label.setVisible(bool(timeline))

        self.request_pane.show_message(record.request_headers, record.request_body)
        self.response_pane.show_message(record.response_headers, record.response_body)
        self.tabs.setTabText(0, f"Request ({_size(record.request_body)})")
        self.tabs.setTabText(1, f"Response ({_size(record.response_body)})")
        # A request without a body (GET, DELETE) is about its answer; otherwise the tab the
        # user picked last stays.
        if not record.request_body and record.response_body:
            self.tabs.setCurrentIndex(1)
        else:
            self.tabs.setCurrentIndex(self._preferred_tab)
        self.stack.setCurrentIndex(1)

    def _header_html(self, record: RequestRecord) -> str:
        method = html.escape(record.method)
        target = html.escape(display_target(record))
        status = "dropped" if record.status <= 0 else str(record.status)
        reason = html.escape(reason_phrase(record.status))
        return (
            f'<span style="color:{_color(theme.method_color(record.method))}; '
            f'font-weight:600">{method}</span>&nbsp;&nbsp;'
            f'<span style="font-family:monospace">{target}</span>&nbsp;&nbsp;'
            f'<span style="color:{_color(theme.status_color(record.status))}; '
            f'font-weight:600">{status}&nbsp;{reason}</span>'
        )

    def _upstream_html(self, record: RequestRecord, facts: UpstreamFacts) -> str:
        """One line: what the upstream answered (or how it failed) and where the time went
        (upstream vs the proxy itself: fault latency, queueing, reading and writing)."""
        if facts.error:
            color = _color(theme.fault_color())
            answer = (
                f'<span style="color:{color}; font-weight:600">Your server failed: '
                f"{html.escape(facts.error)}</span>"
            )
        elif facts.status is not None:
            color = _color(theme.status_color(facts.status))
            reason = html.escape(reason_phrase(facts.status))
            answer = (
                f'Your server answered <span style="color:{color}; font-weight:600">'
                f"{facts.status}&nbsp;{reason}</span>"
            )
        else:
            answer = "Forwarded to your server"
        if facts.ms is not None:
            in_proxy = max(record.duration_ms - facts.ms, 0.0)
            answer += (
                f"&nbsp;&nbsp;·&nbsp;&nbsp;{facts.ms:,.1f} ms upstream, {in_proxy:,.1f} ms "
                "in the proxy"
            )
        if facts.status is not None and facts.status != record.status and not facts.error:
            answer += f"&nbsp;&nbsp;·&nbsp;&nbsp;Okta got {record.status}"
        return answer

    @staticmethod
    def _reject_html(facts: UpstreamFacts) -> str:
        if not facts.problems:
            return ""
        items = "".join(f"<li>{html.escape(p)}</li>" for p in facts.problems)
        return (
            f"<b>{REJECT_MARK} Okta would reject this answer</b>"
            f'<ul style="margin-left:-20px; margin-top:2px; margin-bottom:0">{items}</ul>'
        )

    def _retry_html(self, record: RequestRecord) -> str:
        """Where a throttled request stands in Okta's retry schedule (OKTA.md, "Errors, rate
        limits and retries"); empty for requests that were never answered 429."""
        extra = record.extra
        retry = extra.get("okta_retry")
        gives_up = bool(extra.get("okta_retry_gives_up"))
        next_in = extra.get("okta_next_retry_in_s")
        if record.status != 429 and retry is None:
            return ""
        attempt = (int(retry) if isinstance(retry, int) else 0) + 1
        attempt = max(1, min(attempt, MAX_ATTEMPTS))
        if gives_up:
            attempt = MAX_ATTEMPTS
        muted = _color(theme.muted_color())
        if record.status == 429:
            current = _color(theme.fault_color() if gives_up else theme.status_color(429))
        else:
            current = _color(theme.status_color(record.status))
        dots = []
        for n in range(1, MAX_ATTEMPTS + 1):
            if n < attempt:
                dots.append(f'<span style="color:{_color(theme.status_color(429))}">●</span>')
            elif n == attempt:
                dots.append(f'<span style="color:{current}">◉</span>')
            else:
                dots.append(f'<span style="color:{muted}">○</span>')
        steps = (
            f"<b>Retry timeline</b>&nbsp;&nbsp;{' '.join(dots)}&nbsp;&nbsp;"
            f"attempt {attempt} of {MAX_ATTEMPTS}" + (f" (retry {retry})" if retry else "")
        )
        if record.status == 429:
            if gives_up:
                now = (
                    f"Answered 429 to attempt {attempt}: Okta gives up after {MAX_ATTEMPTS} "
                    "attempts; the task fails and an admin must retry it."
                )
            else:
                header = _header(record.response_headers, "Retry-After")
                wait, why = retry_wait(attempt, header)
                seconds = float(next_in) if isinstance(next_in, int | float) else wait
                now = (
                    f"Answered 429: Okta retries in {_duration(seconds)} "
                    f"({html.escape(why)}), as retry {attempt}."
                )
        else:
            now = f"Retry {retry} was answered {record.status} {reason_phrase(record.status)}."
        return (
            f"{steps}<br>{now}<br>"
            f'<span style="color:{muted}; font-size:small">{html.escape(RETRY_RULE)}</span>'
        )

    def _remember_tab(self, index: int) -> None:
        if index >= 0:
            self._preferred_tab = index

    # --- actions ---------------------------------------------------------------------------------
    def current_body(self) -> str:
        pane = self.tabs.currentWidget()
        return pane.body_text if isinstance(pane, _MessagePane) else ""

    def copy_body(self) -> None:
        if self._record is None:
            return
        QGuiApplication.clipboard().setText(self.current_body())
        which = "request" if self.tabs.currentIndex() == 0 else "response"
        self.message.emit(f"Copied the {which} body")

    def copy_curl(self) -> None:
        if self._record is None:
            return
        QGuiApplication.clipboard().setText(to_curl(self._record))
        self.message.emit("Copied the request as a curl command (token as $TOKEN)")

    # --- look ------------------------------------------------------------------------------------
    def set_mono_font(self, font: QFont) -> None:
        self.request_pane.set_mono_font(font)
        self.response_pane.set_mono_font(font)

    def _apply_colors(self) -> None:
        fault = theme.fault_color()
        self.fault_banner.setStyleSheet(
            f"QLabel {{ background: {fault.name()}; color: white; font-weight: 600; "
            "border-radius: 4px; }"
        )
        self.meta_label.setStyleSheet(f"color: {theme.muted_color().name()}")
        wash = QColor(fault)
        wash.setAlphaF(0.22 if theme.is_dark() else 0.09)
        self.reject_banner.setStyleSheet(
            f"QLabel#rejectBanner {{ background: {wash.name(QColor.NameFormat.HexArgb)}; "
            f"border: 1px solid {fault.name()}; border-left: 5px solid {fault.name()}; "
            "border-radius: 4px; }"
        )
        self.empty_label.setStyleSheet(f"color: {theme.muted_color().name()}; font-size: 14px")

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and not self._refreshing:
            # Setting style sheets below sends palette changes of its own; ignore those.
            self._refreshing = True
            try:
                self._apply_colors()
                self.request_pane.refresh_colors()
                self.response_pane.refresh_colors()
                record, self._record = self._record, None
                if record is not None:
                    self.show_record(record, proxied=self._proxied)
            finally:
                self._refreshing = False
