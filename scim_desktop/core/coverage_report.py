"""Lifecycle coverage reports: the checklist (``core/coverage.py``) as JSON (the ``coverage``
command's ``--json``), Markdown and a self-contained HTML page, with the evidence requests.

Pure: the caller gives the timestamp and writes the text.
"""

from __future__ import annotations

from typing import Any

from scim_desktop.core.coverage import Evidence, ItemState, Status

__all__ = ["evidence_json", "report_json", "report_markdown", "summary"]


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


def summary(states: list[ItemState]) -> str:
    """``"12 of 33 covered, 1 failed, 14 not seen, 6 manual"``."""
    counts = {k: sum(1 for s in states if s.status == k) for k in _STATUS_ORDER}
    return (
        f"{counts['covered']} of {len(states)} covered, {counts['failed']} failed, "
        f"{counts['not_seen']} not seen, {counts['manual']} manual"
    )


_STATUS_ORDER: tuple[Status, ...] = ("covered", "failed", "not_seen", "manual")
_STATUS_MARK = {"covered": "✅ covered", "failed": "❌ failed", "not_seen": "· not seen"}


def _md(text: str) -> str:
    """Text safe in a Markdown table cell or list item (no pipes, no line breaks)."""
    return " ".join(text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "'").split())


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
        lines.append("Sessions: " + ", ".join(f"`{_md(s)}`" for s in sources) + ".")
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
                f"- `{_md(e.record_id)}` {_md(e.time)} `{e.method} {_md(e.target)}` → "
                f"{e.status}, {_md(e.label)}: {verdict}"
            )
        if s.count > len(s.evidence):
            lines.append(f"- ... and {s.count - len(s.evidence)} more requests")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
