"""The checker's reports: text lines for the terminal, issue 15's JSON document, JUnit XML for a
CI pipeline, and a self-contained HTML page. Pure functions over a (redacted) :class:`Report`.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson

from scim_desktop.check.model import Check, Report, RequestLog
from scim_desktop.check.runner import source_text
from scim_desktop.server.events import escape_controls

#: How much of an answer body a text line quotes.
_QUOTE = 160


def _one_line(text: str, limit: int = _QUOTE) -> str:
    flat = " ".join(escape_controls(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def answered(request: RequestLog) -> str:
    """What the server answered one request, in a few words."""
    target = request.url.split("://", 1)[-1]
    target = "/" + target.split("/", 1)[1] if "/" in target else target
    head = f"{request.method} {target} -> "
    if request.status == 0:
        return head + f"no answer ({request.error})"
    body = request.response_body.strip()
    return head + f"{request.status}, " + (_one_line(body) if body else "empty body")


def check_lines(check: Check) -> list[str]:
    """One line per check; a failure adds what the server answered, what Okta does, the fix."""
    label = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}[check.status]
    head = f"{label}  {check.suite:<12}  {check.name}"
    if check.status == "pass":
        return [f"{head}  ({_one_line(check.detail, 120)})" if check.detail else head]
    if check.status == "skip":
        return [f"{head}: {check.detail}"]
    lines = [head]
    shown: int | None = None
    for f in check.findings or []:
        at = f.request if f.request is not None else len(check.requests) - 1
        if at != shown and 0 <= at < len(check.requests):
            lines.append(f"        server answered: {answered(check.requests[at])}")
            shown = at
        lines += [
            f"      - {f.what}",
            f"        Okta ({source_text(f)}): {f.okta_effect}",
            f"        fix: {f.fix}",
        ]
    if not check.findings:
        lines += [
            f"      - {check.detail}",
            f"        Okta: {check.okta_effect}",
            f"        fix: {check.fix}",
        ]
    return lines


def text_lines(report: Report) -> Iterator[str]:
    """The whole report as the terminal shows it, ending with issue 15's summary line."""
    for check in report.checks:
        yield from check_lines(check)
    if report.refused:
        yield refused_line(report)
    yield from cleanup_lines(report)
    if report.interrupted:
        yield "interrupted: the checks left were not run"
    yield f"time: {report.duration_s:.2f} s"
    yield report.summary()


def refused_line(report: Report) -> str:
    """One line for a run whose credential the server refused (``report.refused``)."""
    return (
        f"credential refused ({_one_line(report.refused, 120)}): the checks that need it "
        "were skipped; check --token, --basic or --header"
    )


def cleanup_lines(report: Report) -> list[str]:
    deleted = [line for line in report.cleanup if line.startswith("deleted ")]
    other = [line for line in report.cleanup if not line.startswith("deleted ")]
    lines = [f"cleanup: {line}" for line in other]
    if deleted:
        users = sum(1 for line in deleted if line.startswith("deleted user"))
        # Groups the groups suite deleted itself (its own check) are not counted here.
        counts = [(users, "user"), (len(deleted) - users, "group")]
        what = " and ".join(f"{n} {kind}{'' if n == 1 else 's'}" for n, kind in counts if n)
        lines.insert(0, f"cleanup: deleted {what} it created")
    return lines


def to_json_bytes(report: Report) -> bytes:
    return orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2) + b"\n"


def _requests_text(check: Check) -> str:
    out = []
    for r in check.requests:
        out.append(f"{r.method} {r.url}")
        out += [f"{k}: {v}" for k, v in r.headers.items()]
        if r.body:
            out.append(r.body)
        out.append(f"-> {r.status}" + (f" ({r.error})" if r.error else ""))
        if r.response_body:
            out.append(r.response_body)
        out.append("")
    return "\n".join(out)


#: What XML 1.0 cannot hold, escaped or not (§2.2 Char): most C0 controls, surrogates, U+FFFE
#: and U+FFFF. A server's answer may carry any of them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml(text: str) -> str:
    """``text`` with what XML 1.0 cannot hold shown as ``\\xNN`` / ``\\uNNNN``."""
    return _NOT_XML.sub(
        lambda m: f"\\x{ord(m[0]):02x}" if m[0] < " " else f"\\u{ord(m[0]):04x}", text
    )


def to_junit(report: Report) -> bytes:
    """JUnit XML: one testsuite per suite, one testcase per check (a failure carries Okta's
    effect, the fix and the exchanges; a skip its reason)."""
    root = ET.Element(
        "testsuites",
        name="scim-desktop check",
        tests=str(len(report.checks)),
        failures=str(report.failed),
        skipped=str(report.skipped),
        errors="0",
        time=f"{report.duration_s:.3f}",
    )
    suites: dict[str, ET.Element] = {}
    for check in report.checks:
        suite = suites.get(check.suite)
        if suite is None:
            mine = [c for c in report.checks if c.suite == check.suite]
            suite = ET.SubElement(
                root,
                "testsuite",
                name=check.suite,
                tests=str(len(mine)),
                failures=str(sum(c.status == "fail" for c in mine)),
                skipped=str(sum(c.status == "skip" for c in mine)),
                errors="0",
                time=f"{sum(c.duration_s for c in mine):.3f}",
            )
            suites[check.suite] = suite
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"scim-desktop.check.{check.suite}",
            name=_xml(check.name),  # an entitlement endpoint's name comes from the server
            time=f"{check.duration_s:.3f}",
        )
        if check.status == "fail":
            failure = ET.SubElement(case, "failure", message=_xml(check.detail), type="okta")
            text = f"Okta: {check.okta_effect}\nFix: {check.fix}\n\n{_requests_text(check)}"
            failure.text = _xml(text)
        elif check.status == "skip":
            ET.SubElement(case, "skipped", message=_xml(check.detail))
        elif check.requests:
            ET.SubElement(case, "system-out").text = _xml(_requests_text(check))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em; color: #1d2430; }
table { border-collapse: collapse; width: 100%; }
td, th { border-bottom: 1px solid #dde2ea; padding: .4em .6em; text-align: left;
  vertical-align: top; }
.pass { color: #18794e; font-weight: 600; } .fail { color: #c9252d; font-weight: 600; }
.skip { color: #8a6d00; font-weight: 600; }
pre { background: #f5f7fa; padding: .6em; overflow-x: auto; font-size: 12px; }
details { margin-top: .3em; }
"""


def to_html(report: Report, generated: datetime | None = None) -> str:
    """A self-contained HTML page: the summary, one row per check, each failure's Okta effect
    and fix, and every check's exchanges folded away."""
    when = (generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC")
    e = html.escape
    rows = []
    for c in report.checks:
        info = e(c.detail)
        if c.status == "fail":
            info += f"<br><b>Okta:</b> {e(c.okta_effect)}<br><b>Fix:</b> {e(c.fix)}"
        if c.requests:
            info += f"<details><summary>{len(c.requests)} request(s)</summary><pre>"
            info += e(_requests_text(c)) + "</pre></details>"
        rows.append(
            f'<tr><td class="{c.status}">{c.status.upper()}</td><td>{e(c.suite)}</td>'
            f"<td>{e(c.name)}</td><td>{info}</td></tr>"
        )
    cleanup = "".join(f"<li>{e(line)}</li>" for line in report.cleanup)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>scim-desktop check: {e(report.url)}</title><style>{_CSS}</style></head><body>"
        f"<h1>Okta SCIM check</h1><p>{e(report.url)}, {e(when)}, "
        f"{report.duration_s:.1f} s. <b>{e(report.summary())}</b></p>"
        "<table><tr><th>Result</th><th>Suite</th><th>Check</th><th>Detail</th></tr>"
        + "".join(rows)
        + "</table>"
        + (f"<h2>Cleanup</h2><ul>{cleanup}</ul>" if cleanup else "")
        + "</body></html>\n"
    )
