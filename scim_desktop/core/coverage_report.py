"""Lifecycle coverage reports: the checklist (``core/coverage.py``) as JSON (the ``coverage``
command's ``--json``), Markdown (``--markdown``) and a self-contained HTML page (``--html``
and the window's Coverage tab), with the evidence requests.

Pure: the caller gives the timestamp and writes the text.
"""

from __future__ import annotations

import html
import re
from typing import Any

from scim_desktop.core.coverage import Evidence, ItemState, Status

__all__ = [
    "STATUS_COLORS",
    "evidence_json",
    "report_html",
    "report_json",
    "report_markdown",
    "summary",
]


def evidence_json(e: Evidence) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": e.record_id,
        "time": e.time,
        "method": e.method,
        "target": e.target,
        "status": e.status,
        "label": e.label,
        "ok": e.ok,
    }
    if e.reason:
        out["reason"] = e.reason
    if e.okta_effect:
        out["okta_effect"] = e.okta_effect
    if e.fix:
        out["fix"] = e.fix
    return out


def report_json(states: list[ItemState]) -> dict[str, Any]:
    """``{"items": [{"id", "title", "status", "evidence": [...], ...}]}`` (the CLI's --json)."""
    return {
        "items": [
            {
                "id": s.item.id,
                "title": s.item.title,
                "status": s.status,
                "evidence": [evidence_json(e) for e in s.evidence],
                "count": s.count,
                "reason": s.reason,
                "proof": s.item.proof,
                "okta_needs": s.item.okta_needs,
            }
            for s in states
        ]
    }


def summary(states: list[ItemState], sep: str = ", ") -> str:
    """``"12 of 33 covered, 1 failed, 14 not seen, 6 manual"`` (``sep`` between the parts)."""
    counts = {k: sum(1 for s in states if s.status == k) for k in _STATUS_ORDER}
    return sep.join(
        (
            f"{counts['covered']} of {len(states)} covered",
            f"{counts['failed']} failed",
            f"{counts['not_seen']} not seen",
            f"{counts['manual']} manual",
        )
    )


_STATUS_ORDER: tuple[Status, ...] = ("covered", "failed", "not_seen", "manual")
_STATUS_MARK = {"covered": "✅ covered", "failed": "❌ failed", "not_seen": "· not seen"}


#: What can start markup inside a line in CommonMark or GFM (emphasis, code, links and images,
#: raw HTML, entities, strikethrough, table cells); each may be backslash-escaped (CommonMark
#: §2.4). Report text never starts a line, so heading and list markers need no escape.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|&~])")


def _md(text: str) -> str:
    """Prose from traffic or files, safe in a Markdown table cell or list item: one line, and
    every character that could start markup, a link or raw HTML escaped, so a recorded
    ``<script>`` or ``[x](javascript:...)`` stays text in any renderer."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _md_code(text: str) -> str:
    """Text inside a code span (literal there; CommonMark §6.1): one line, no backtick to end
    the span, pipes escaped for GFM tables."""
    return " ".join(text.replace("|", "\\|").replace("`", "'").split())


def _mark(s: ItemState) -> str:
    if s.status == "manual":
        return "☐ manual"
    if s.item.manual:
        return "☑ ticked"
    return _STATUS_MARK[s.status]


def report_markdown(states: list[ItemState], generated: str, sources: tuple[str, ...] = ()) -> str:
    """A Markdown report: a timestamp (``generated``, given by the caller), the checklist as a
    table, and each item's evidence requests."""
    lines = [
        "# Okta lifecycle coverage",
        "",
        f"Generated {generated} by SCIM Desktop.",
    ]
    if sources:
        lines.append("Sessions: " + ", ".join(f"`{_md_code(s)}`" for s in sources) + ".")
    lines += [
        "",
        f"**{summary(states)}.**",
        "",
        "| Status | Item | Requests | What Okta needs |",
        "|---|---|---:|---|",
    ]
    for s in states:
        title = _md(s.item.title)
        if s.reason:
            title += f" ({_md(s.reason)})"
        lines.append(f"| {_mark(s)} | {title} | {s.count} | {_md(s.item.okta_needs)} |")
    lines += ["", "## Evidence", ""]
    for s in states:
        proof = _md(s.item.proof).rstrip(".")
        lines += [f"### {_md(s.item.title)} ({_mark(s)})", "", f"Proved by: {proof}."]
        if s.item.manual:
            lines.append("Traffic cannot prove this item; it is ticked by hand.")
        if not s.evidence:
            lines += [""] if s.item.manual else ["", "No requests.", ""]
            continue
        lines.append("")
        for e in s.evidence:
            verdict = "ok" if e.ok else f"FAILED: {_md(e.reason)}"
            lines.append(
                f"- `{_md_code(e.record_id)}` {_md(e.time)} "
                f"`{_md_code(e.method)} {_md_code(e.target)}` → {e.status}, "
                f"{_md(e.label)}: {verdict}"
            )
        if s.count > len(s.evidence):
            lines.append(f"- ... and {s.count - len(s.evidence)} more requests")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


# --- HTML -----------------------------------------------------------------------------------------
#: One colour per status (the window's icons use the same).
STATUS_COLORS: dict[str, str] = {
    "covered": "#15803d",
    "failed": "#b91c1c",
    "not_seen": "#6b7280",
    "manual": "#b45309",
}
_HTML_MARK = {"covered": "✔ covered", "failed": "✘ failed", "not_seen": "○ not seen"}

_CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: #111827; margin: 2rem auto; max-width: 60rem; padding: 0 1.5rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .5rem; border-bottom: 1px solid #e5e7eb; }
h3 { font-size: 1rem; margin: 1.4rem 0 .3rem; }
.meta { color: #4b5563; margin: 0 0 1rem; }
.summary { font-size: 1.05rem; font-weight: 600; padding: .6rem .9rem; background: #f3f4f6;
  border-radius: 6px; }
.bar { display: flex; height: 10px; border-radius: 5px; overflow: hidden; margin: .5rem 0 1rem;
  background: #e5e7eb; }
.bar span { display: block; }
table { border-collapse: collapse; width: 100%; margin: .3rem 0 .8rem; }
th, td { text-align: left; vertical-align: top; padding: .3rem .5rem;
  border-bottom: 1px solid #e5e7eb; }
th { font-size: .8rem; text-transform: uppercase; letter-spacing: .03em; color: #6b7280; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.status { font-weight: 600; white-space: nowrap; }
.reason { color: #b91c1c; display: block; font-size: .9rem; }
.needs { color: #4b5563; }
code { font: 12px/1.4 ui-monospace, "SF Mono", Menlo, Consolas, monospace;
  overflow-wrap: anywhere; }
.ev td { font-size: .85rem; }
.fail td { background: #fef2f2; }
.effect { color: #374151; display: block; }
.fix { color: #065f46; display: block; }
.note { color: #6b7280; font-size: .9rem; }
footer { margin-top: 2.5rem; color: #9ca3af; font-size: .8rem; }
@media print {
  body { margin: 0; max-width: none; font-size: 11px; }
  h2 { break-after: avoid; }
  section.item { break-inside: avoid; }
  tr { break-inside: avoid; }
  .summary { background: none; border: 1px solid #d1d5db; }
  .bar, .fail td { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


def _h(text: object) -> str:
    """Text safe in HTML element content and in quoted attribute values."""
    return html.escape(str(text), quote=True)


def _html_mark(s: ItemState) -> str:
    if s.status == "manual":
        return "☐ manual"
    if s.item.manual:
        return "☑ ticked"
    return _HTML_MARK[s.status]


def _status_cell(s: ItemState) -> str:
    color = STATUS_COLORS["covered" if s.item.manual and s.ticked else s.status]
    return f'<td class="status" style="color:{color}">{_h(_html_mark(s))}</td>'


def _evidence_rows(s: ItemState) -> list[str]:
    rows = []
    for e in s.evidence:
        if e.ok:
            verdict = "ok"
        else:
            verdict = f'<span class="reason">{_h(e.reason)}</span>'
            if e.okta_effect:
                verdict += f'<span class="effect">Okta: {_h(e.okta_effect)}</span>'
            if e.fix:
                verdict += f'<span class="fix">Fix: {_h(e.fix)}</span>'
        rows.append(
            f'<tr class="{"ok" if e.ok else "fail"}"><td><code>{_h(e.record_id)}</code></td>'
            f"<td>{_h(e.time)}</td><td><code>{_h(e.method)} {_h(e.target)}</code></td>"
            f'<td class="num">{e.status}</td><td>{_h(e.label)}</td><td>{verdict}</td></tr>'
        )
    return rows


def report_html(states: list[ItemState], generated: str, sources: tuple[str, ...] = ()) -> str:
    """A self-contained HTML page (inline style, no scripts, no external resources; prints on
    paper as shown): the timestamp (``generated``, given by the caller), the summary, the
    checklist, and each item's evidence requests with what Okta does with a failing answer
    and the fix. Every text from traffic is escaped."""
    counts = {k: sum(1 for s in states if s.status == k) for k in _STATUS_ORDER}
    total = max(len(states), 1)
    bar = "".join(
        f'<span style="width:{100 * counts[k] / total:.2f}%;background:{STATUS_COLORS[k]}"></span>'
        for k in _STATUS_ORDER
        if counts[k]
    )
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Okta lifecycle coverage · {_h(generated)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Okta lifecycle coverage</h1>",
        f'<p class="meta">Generated {_h(generated)} by SCIM Desktop.',
    ]
    if sources:
        out.append(" Sessions: " + ", ".join(f"<code>{_h(src)}</code>" for src in sources) + ".")
    out += [
        "</p>",
        f'<p class="summary">{_h(summary(states, " · "))}</p>',
        f'<div class="bar" role="img" aria-label="{_h(summary(states))}">{bar}</div>',
        "<h2>Checklist</h2>",
        "<table><thead><tr><th>Status</th><th>Item</th><th>Requests</th>"
        "<th>What Okta needs</th></tr></thead><tbody>",
    ]
    for s in states:
        title = f'<a href="#{_h(s.item.id)}">{_h(s.item.title)}</a>'
        if s.reason:
            title += f'<span class="reason">{_h(s.reason)}</span>'
        out.append(
            f"<tr>{_status_cell(s)}<td>{title}</td><td class='num'>{s.count}</td>"
            f'<td class="needs">{_h(s.item.okta_needs)}</td></tr>'
        )
    out += ["</tbody></table>", "<h2>Evidence</h2>"]
    for s in states:
        color = STATUS_COLORS["covered" if s.item.manual and s.ticked else s.status]
        out += [
            f'<section class="item" id="{_h(s.item.id)}">',
            f'<h3>{_h(s.item.title)} <span class="status" style="color:{color}">'
            f"({_h(_html_mark(s))})</span></h3>",
            f'<p class="note">Proved by: {_h(s.item.proof)}. Okta needs: '
            f"{_h(s.item.okta_needs)}.</p>",
        ]
        if s.item.manual:
            out.append('<p class="note">Traffic cannot prove this item; it is ticked by hand.</p>')
        elif not s.evidence:
            out.append('<p class="note">No requests.</p>')
        else:
            out += [
                '<table class="ev"><thead><tr><th>Request</th><th>Time</th><th>Sent</th>'
                "<th>Status</th><th>Okta step</th><th>Verdict</th></tr></thead><tbody>",
                *_evidence_rows(s),
                "</tbody></table>",
            ]
            if s.count > len(s.evidence):
                more = s.count - len(s.evidence)
                out.append(f'<p class="note">… and {more} more requests.</p>')
        out.append("</section>")
    out += [
        "<footer>Expectations from Okta's documentation of its SCIM client and OIN test plan, "
        "as SCIM Desktop's OKTA.md records them.</footer>",
        "</body></html>",
    ]
    return "\n".join(out) + "\n"
