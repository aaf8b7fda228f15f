"""The exposure report as one self-contained HTML file: the summary table and one inline
SVG plot per question, drawn by matplotlib (no JavaScript, no network, no external file).

matplotlib draws to SVG with a fixed hash salt and no date, so the same figures give the
same bytes. Every label a producer controls (subject, owner, resource, rule ids) is
escaped: by :func:`html.escape` in the page, by matplotlib's XML writer in the SVG.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from streams.engine.exposure import SENSITIVITY_ORDER, Exposure
from streams.engine.exposure_text import summary_rows

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["PLOTS", "render_html"]

_LABEL = 40  # longest label drawn; ids may be up to 512 characters


def _short(label: str) -> str:
    return label if len(label) <= _LABEL else label[:_LABEL - 1] + "…"


def _figure(height: float = 3.2) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(8, height), layout="constrained")


def _barh(axes: Axes, counts: Mapping[str, float], unit: str, limit: int = 15) -> bool:
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
    if not ranked or not any(value > 0 for _, value in ranked):
        return False
    names = [_short(name) for name, _ in reversed(ranked)]
    axes.barh(names, [value for _, value in reversed(ranked)], color="#3b6ea5")
    axes.set_xlabel(unit)
    return True


def _hours_per_day(exposure: Exposure) -> Figure | None:
    days = sorted(exposure.hours_by_day)
    if not days:
        return None
    figure = _figure()
    axes = figure.add_subplot()
    # Positions, not the day strings: matplotlib would guess those are dates and log so.
    axes.bar(range(len(days)), [exposure.hours_by_day[day] for day in days], color="#3b6ea5")
    axes.set_xticks(range(len(days)), days)
    axes.set_ylabel("grant-hours")
    axes.tick_params(axis="x", labelrotation=60, labelsize=7)
    return figure


def _counts(title: str, pick: Callable[[Exposure], Mapping[str, float]], unit: str,
            height: float = 3.6) -> Callable[[Exposure], Figure | None]:
    def draw(exposure: Exposure) -> Figure | None:
        figure = _figure(height)
        axes = figure.add_subplot()
        axes.set_title(title, fontsize=9)
        return figure if _barh(axes, pick(exposure), unit) else None
    return draw


def _env_sensitivity(exposure: Exposure) -> Figure | None:
    figure = _figure()
    envs, levels = figure.subplots(1, 2)
    order = {name: i for i, name in enumerate((*SENSITIVITY_ORDER, "unknown"))}
    by_level = dict(sorted(exposure.hours_by_sensitivity.items(),
                           key=lambda item: -order.get(item[0], 9)))
    drew = _barh(envs, exposure.hours_by_env, "grant-hours by environment")
    if by_level and any(by_level.values()):
        levels.barh(list(by_level), list(by_level.values()), color="#a55a3b")
        levels.set_xlabel("grant-hours by highest sensitivity")
        drew = True
    return figure if drew else None


def _ttl(exposure: Exposure) -> Figure | None:
    pairs = [(g.requested_ttl_s / 3600, g.granted_ttl_s / 3600, g.clamped)
             for g in exposure.grants if g.requested_ttl_s is not None]
    lives = [((g.end or g.expires) - g.start).total_seconds() / g.granted_ttl_s
             for g in exposure.grants if g.end is not None and g.granted_ttl_s > 0]
    if not pairs and not lives:
        return None
    figure = _figure()
    asked, lived = figure.subplots(1, 2)
    if pairs:
        for clamped, colour, label in ((False, "#3b6ea5", "as asked"),
                                       (True, "#c0392b", "clamped")):
            chosen = [(r, g) for r, g, c in pairs if c == clamped]
            if chosen:
                asked.scatter([r for r, _ in chosen], [g for _, g in chosen], s=14,
                              color=colour, label=label)
        top = max(max(r, g) for r, g, _ in pairs)
        asked.plot([0, top], [0, top], color="#999999", linewidth=0.8)
        asked.set_xlabel("requested TTL (h)")
        asked.set_ylabel("granted TTL (h)")
        asked.legend(fontsize=7)
    if lives:
        lived.hist(lives, bins=20, range=(0, max(1.0, max(lives))), color="#3b6ea5")
        lived.set_xlabel("life / granted TTL (ended grants)")
        lived.set_ylabel("grants")
    return figure


def _queue_age(exposure: Exposure) -> Figure | None:
    if not exposure.queue:
        return None
    figure = _figure()
    axes = figure.add_subplot()
    outcomes = sorted({outcome for _, _, outcome in exposure.queue})
    axes.hist([[age / 60 for _, age, o in exposure.queue if o == outcome]
               for outcome in outcomes], bins=20, stacked=True, label=outcomes)
    axes.set_xlabel("time escalated until decided (min); open: until the period's end")
    axes.set_ylabel("requests")
    axes.legend(fontsize=7)
    return figure


def _policies(exposure: Exposure) -> Figure | None:
    if not exposure.policies:
        return None
    origin = min(first for _, _, first, _, _ in exposure.policies)
    figure = _figure(1.2 + 0.35 * len(exposure.policies))
    axes = figure.add_subplot()
    for row, (version, sha, first, last, _) in enumerate(exposure.policies):
        start = (first - origin).total_seconds() / 86400
        width = max((last - first).total_seconds() / 86400, 0.02)
        axes.barh(row, width, left=start, height=0.5, color="#3b6ea5")
        axes.text(start, row + 0.32, _short(f"{version} ({sha[:8]})"), fontsize=7)
    axes.set_yticks([])
    axes.set_xlabel(f"days since {origin.isoformat()}: decisions made under each policy "
                    "(first to last)")
    return figure


PLOTS: tuple[tuple[str, str, Callable[[Exposure], Figure | None]], ...] = (
    ("hours-per-day", "Grant-hours per day (UTC)", _hours_per_day),
    ("hours-by-subject", "Who held access: grant-hours by subject",
     _counts("top 15 subjects", lambda e: e.hours_by_subject, "grant-hours")),
    ("hours-by-owner", "Grant-hours by accountable owner",
     _counts("top 15 owners", lambda e: e.hours_by_owner, "grant-hours", 3.0)),
    ("hours-by-env", "Grant-hours by environment and sensitivity", _env_sensitivity),
    ("ttl", "Requested vs granted TTL, and how long grants lived compared with it", _ttl),
    ("ended-by", "How grants ended (live: not ended by the period's end)",
     _counts("grants by the rule that ended them", lambda e: e.ended_by, "grants", 2.6)),
    ("decisions", "Decisions by action and rule",
     _counts("top 15 action/rule pairs",
             lambda e: {f"{a}/{r}": n for (a, r), n in e.rules.items()}, "decisions", 4.0)),
    ("queue", "Review queue: how long escalated requests waited, by outcome", _queue_age),
    ("locks", "Locks by cause", _counts("lock rule", lambda e: e.locks, "locks", 2.6)),
    ("policies", "Policy versions in force", _policies),
)
"""Each plot's id, caption and drawing (``None``: no data for it in the period)."""


def _svg(figure: Figure) -> str:
    import matplotlib as mpl

    out = io.StringIO()
    with mpl.rc_context({"svg.hashsalt": "jitwatch", "svg.fonttype": "none"}):
        figure.savefig(out, format="svg", metadata={"Date": None})
    text = out.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype: inline in HTML


_STYLE = """body{font-family:sans-serif;margin:2em;max-width:60em;color:#222}
table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;padding:.25em .5em;
text-align:left;vertical-align:top}figure{margin:1.5em 0}figure svg{width:100%;height:auto}
figcaption{font-weight:bold;margin-bottom:.3em}.empty{color:#777}"""


def render_html(exposure: Exposure, title: str) -> str:
    """The whole report page for ``exposure``."""
    parts = [f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
             f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1><table>"]
    parts += [f"<tr><th>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
              for label, value in summary_rows(exposure)]
    parts.append("</table>")
    for plot_id, caption, draw in PLOTS:
        figure = draw(exposure)
        body = (_svg(figure) if figure is not None
                else "<p class=empty>no data for this in the period</p>")
        parts.append(f'<figure id="plot-{plot_id}" data-drawn="{int(figure is not None)}">'
                     f"<figcaption>{html.escape(caption)}</figcaption>{body}</figure>")
    parts.append("</body></html>")
    return "\n".join(parts)
