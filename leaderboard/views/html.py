"""The leaderboard as one self-contained HTML page: sortable tables, Pareto plots, run trails.

The page is mailed around and opened from disk on machines without network, so it carries
its CSS, script and charts inline and loads nothing. Result files are untrusted input: every
string from them is escaped, and the script reads only attributes the page itself wrote.
"""

from __future__ import annotations

import math
from html import escape

import numpy as np
import pandas as pd

from prunebench.leaderboard.board import Leaderboard, Track
from prunebench.leaderboard.matched import axis_of
from prunebench.leaderboard.views.columns import (
    CLAIM_HEADERS, FRONT, MATCHED, RULE, claim_cells, count, factor, matched_table, missing, on_front, page_order, percent, reference_line, source,
)
from prunebench.leaderboard.views.svg import Point, Series, SweepSeries, histogram, line_chart, scatter, sweep_chart

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#bcbd22", "#7f7f7f")
OTHER = "#9a9a9a"  # papers' rows of methods not measured here
MAX_TRAILS = 24  # trail charts per track (about 9 KB each): 10,000 runs would make a page of 90 MB

STYLE = """
:root { --ink: #1d2433; --muted: #5d6577; --line: #dde1e8; --accent: #1f6feb; --paper: #fbf7ee; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: #f4f6f9; }
header { background: #1d2433; color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: #c5cbd6; }
main { padding: 12px 28px 40px; }
nav { margin: 10px 0 4px; display: flex; flex-wrap: wrap; gap: 6px; }
nav a { background: #fff; border: 1px solid var(--line); border-radius: 14px; padding: 2px 10px; color: var(--accent); text-decoration: none; font-size: 13px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 18px; margin: 16px 0; }
h2 { margin: 0 0 2px; font-size: 17px; }
.ref { color: var(--muted); margin: 0 0 10px; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; margin: 4px 0 10px; color: var(--muted); font-size: 13px; }
.legend span::before { content: ""; display: inline-block; width: 10px; height: 10px; border-radius: 50%; background: var(--c); margin-right: 5px; }
.legend span.hollow::before { background: none; border: 2px solid var(--muted); border-radius: 0; transform: rotate(45deg) scale(.8); }
.legend span.dashed::before { width: 18px; height: 0; background: none; border-top: 2px dashed #b8860b; border-radius: 0; vertical-align: middle; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; width: 100%; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { position: sticky; top: 0; background: #eef1f6; text-align: left; cursor: pointer; user-select: none; font-weight: 600; }
th:hover { background: #e2e7f0; }
th[aria-sort="ascending"]::after { content: " ▲"; font-size: 10px; }
th[aria-sort="descending"]::after { content: " ▼"; font-size: 10px; }
td.num, th.num { text-align: right; }
td.wrap { white-space: normal; min-width: 160px; max-width: 340px; }
tbody.measured tr:nth-child(even) { background: #fafbfc; }
tr.front td:first-child { box-shadow: inset 3px 0 0 var(--accent); }
tr.front td.front { color: #b8860b; font-size: 15px; }
tbody.reported tr { background: var(--paper); color: #5b5446; font-style: italic; }
tbody.reported tr:first-child td { border-top: 2px solid #d9cfb6; }
svg { background: #fff; border: 1px solid var(--line); border-radius: 6px; }
svg .plot { fill: #fcfcfd; stroke: #c9ced8; }
svg .grid { stroke: #eceff3; }
svg .tick { font-size: 10px; fill: var(--muted); }
svg .label { font-size: 11px; fill: var(--ink); }
svg .title { font-size: 12px; font-weight: 600; fill: var(--ink); }
svg .front { fill: none; stroke: #b8860b; stroke-width: 1.5; stroke-dasharray: 4 3; }
svg .point { stroke: #fff; stroke-width: 1; }
svg .front-point { stroke: #b8860b; stroke-width: 2; }
svg .reported { fill: #fff; stroke-width: 1.6; }
svg .series { fill: none; stroke-width: 1.8; }
svg .error-bar { stroke-width: 1.4; }
svg .phase { stroke: #9aa3b2; stroke-dasharray: 3 3; }
svg .phase-label, svg .key { font-size: 10px; fill: var(--muted); }
svg .empty { font-size: 12px; fill: var(--muted); }
svg .bar { fill: #1f77b4; }
details { margin-top: 10px; }
summary { cursor: pointer; color: var(--accent); }
.trails { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 8px; }
figure { margin: 0; }
figcaption { font-size: 12px; color: var(--muted); max-width: 320px; overflow-wrap: anywhere; }
.error { color: #b42318; white-space: normal; }
footer { color: var(--muted); font-size: 12px; padding: 0 28px 24px; }
"""

SCRIPT = """
function sortTable(th) {
  const table = th.closest("table");
  const column = th.cellIndex;
  const direction = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
  table.querySelectorAll("th").forEach(h => h.removeAttribute("aria-sort"));
  th.setAttribute("aria-sort", direction);
  const sign = direction === "ascending" ? 1 : -1;
  const numeric = th.classList.contains("num");
  const key = row => {
    const raw = row.cells[column].getAttribute("data-v");
    if (raw === null || raw === "") return null;
    return numeric ? parseFloat(raw) : raw.toLowerCase();
  };
  for (const body of table.tBodies) {  /* measured and reported rows never mix */
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const x = key(a), y = key(b);
      if (x === null || y === null) return (x === null) - (y === null);
      return (x < y ? -1 : x > y ? 1 : 0) * sign;
    });
    rows.forEach(row => body.appendChild(row));
  }
}
document.querySelectorAll("table.sortable th").forEach(th => {
  th.addEventListener("click", () => sortTable(th));
  th.addEventListener("keydown", event => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sortTable(th); } });
});
"""


def _colors(board: Leaderboard) -> dict[str, str]:
    """One colour per measured method, the same in every track."""
    methods = sorted({m for t in board.tracks for m in t.rows.loc[t.rows["kind"] == "measured", "method"]})
    return {method: PALETTE[i % len(PALETTE)] for i, method in enumerate(methods)}


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def _cell_value(value: object) -> str:
    """What the sorting script compares: a number as JS parses it, or text; blank sorts last."""
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return repr(float(value)) if math.isfinite(value) else ""
    return "" if missing(value) else str(value)


def _table(track: Track) -> str:
    columns = page_order()
    head = "".join(
        f'<th scope="col" tabindex="0" class="{"num" if c.numeric else "text"}" title="{_attr(c.title)}">{escape(c.header)}</th>' for c in columns
    )
    bodies = []
    for kind in ("measured", "reported"):
        rows = track.rows[track.rows["kind"] == kind]
        if rows.empty:
            continue
        lines = []
        for row in rows.to_dict("records"):  # plain dicts: a pandas row costs a millisecond
            css = "front" if on_front(row) else ""
            tooltip = " ".join(row["run_ids"]) if isinstance(row.get("run_ids"), list) else str(row.get("note") or "")
            cells = "".join(
                f'<td class="{"num" if c.numeric else "wrap"} {"front" if c.header == "front" else ""}" '
                f'data-v="{_attr(_cell_value(c.value(row)))}">{escape(c.text(row))}</td>'
                for c in columns
            )
            lines.append(f'<tr class="{css}" title="{_attr(tooltip)}">{cells}</tr>')
        bodies.append(f'<tbody class="{kind}">{"".join(lines)}</tbody>')
    return f'<div class="scroll"><table class="sortable"><thead><tr>{head}</tr></thead>{"".join(bodies)}</table></div>'


def _tip(row: pd.Series) -> str:
    """A point's tooltip: the row, its top-1 with the 95 % t-interval and n, and where it landed."""
    cost = ", ".join(part for part in (factor(row["compression_rate"]), count(row["macs"]) and f"{count(row['macs'])} MACs") if part)
    name = " ".join(part for part in (str(row["method"]), str(row.get("key_hparams") or "")) if part)
    interval = "" if missing(row.get("top1_ci95")) else f" ± {100 * row['top1_ci95']:.2f}"
    seeds = "" if missing(row.get("top1_n")) else f" (95 % t, n {row['top1_n']:.0f})"
    return f"{name} ({source(row)}): top-1 {percent(row['top1'])}{interval} %{seeds} at {cost}"


def _error(row: pd.Series) -> float:
    """A point's error bar in percentage points: half its top-1 interval (nan: none)."""
    return math.nan if missing(row.get("top1_ci95")) else 100 * float(row["top1_ci95"])


def _plots(track: Track, colors: dict[str, str]) -> str:
    points_by_axis: dict[str, list[Point]] = {"compression_rate": [], "macs": []}
    for row in track.rows.to_dict("records"):
        if missing(row["top1"]):
            continue
        reported = row["kind"] == "reported"
        for column, points in points_by_axis.items():
            if not missing(row[column]):
                color = colors.get(row["method"], OTHER)
                points.append(Point(float(row[column]), 100 * float(row["top1"]), color, _tip(row), reported, on_front(row), _error(row)))
    return (
        scatter(points_by_axis["compression_rate"], "top-1 against compression", "compression rate (×, log)", "top-1 %")
        + scatter(points_by_axis["macs"], "top-1 against MACs", "MACs per input (log)", "top-1 %")
        + _speed_plots(track, colors)
    )


def _speed_plots(track: Track, colors: dict[str, str]) -> str:
    """Top-1 against measured speedup, one chart per device the track's rows were timed on:
    speeds from different devices never share an axis."""
    timed = track.rows[(track.rows["kind"] == "measured") & track.rows["top1"].notna()]
    timed = timed[timed["speed_on"].notna() & timed["speedup"].notna()] if "speed_on" in timed else timed.iloc[0:0]
    if timed.empty:
        return ""  # nothing timed in this track (papers' rows, older records): no empty chart
    charts = []
    for device, rows in timed.groupby("speed_on", sort=True):
        points = [Point(float(row["speedup"]), 100 * float(row["top1"]), colors.get(row["method"], OTHER),
                        f"{_tip(row)}, {factor(row['speedup'])} measured", error=_error(row)) for row in rows.to_dict("records")]  # fmt: skip
        charts.append(scatter(points, f"top-1 against measured speedup · {device}", "speedup against dense (×, log)", "top-1 %"))
    return "".join(charts)


def _legend(track: Track, colors: dict[str, str]) -> str:
    methods = list(dict.fromkeys(track.rows.loc[track.rows["kind"] == "measured", "method"]))
    items = [f'<span style="--c: {colors[m]}">{escape(m)}</span>' for m in methods]
    if (track.rows["kind"] == "reported").any():
        items.append('<span class="hollow">reported by a paper</span>')
    if (track.rows["kind"] == "measured").any():
        items.append('<span class="dashed">Pareto front</span>')
    return f'<div class="legend">{"".join(items)}</div>'


def _number(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else math.nan


def _phase_marks(trail: list[dict]) -> list[tuple[float, str]]:
    marks, previous = [], None
    for entry in trail:
        if entry.get("phase") != previous:
            marks.append((float(entry.get("epoch", 0)) - 0.5, str(entry.get("phase"))))
            previous = entry.get("phase")
    return marks


def _trails(track: Track) -> str:
    """The trails of the track's first MAX_TRAILS runs in table order (the Pareto front first):
    a grid of thousands of runs keeps a page that opens in seconds; every trail stays in its
    run's result.json."""
    figures, total = [], 0
    for row in track.rows[track.rows["kind"] == "measured"].to_dict("records"):
        for run in row["trails"]:
            total += 1
            if len(figures) == MAX_TRAILS:
                continue
            trail = [e for e in run["trail"] if isinstance(e.get("epoch"), (int, float))]
            epochs = [float(e["epoch"]) for e in trail]
            series = [
                Series("density %", "#1f77b4", epochs, [100 * _number(e.get("density")) for e in trail]),
                Series("val top-1 %", "#d62728", epochs, [100 * _number(e.get("val_top1")) for e in trail]),
            ]
            chart = line_chart(series, f"{row['method']} · seed {run['seed']}", "epoch", "%", _phase_marks(trail))
            figures.append(f"<figure>{chart}<figcaption>{escape(str(run['run_id']))}</figcaption>{_layers(run.get('layers') or [])}"
                           f"{_histograms(run.get('histograms') or [])}</figure>")
    if not figures:
        return ""
    shown = _plural(total, "run") if total == len(figures) else f"the first {len(figures)} of {total} runs in table order; the others in their result.json"
    return f'<details open><summary>Trails: density and validation top-1 by epoch ({shown})</summary><div class="trails">{"".join(figures)}</div></details>'


def _layers(layers: list[dict]) -> str:
    """Per-layer facts of one run: kept output channels and weights of each prunable layer."""
    if not layers:
        return ""
    head = "".join(f"<th>{h}</th>" for h in ("layer", "kind", "channels", "weights", "density", "MACs"))
    rows = "".join(
        f"<tr><td>{escape(str(layer['name']))}</td><td>{escape(str(layer['kind']))}</td>"
        f"<td>{layer['out_channels']}/{layer['out_channels_dense']}</td><td>{layer['weights_nonzero']}/{layer['weights_dense']}</td>"
        f"<td>{layer['weights_nonzero'] / max(1, layer['weights_dense']):.3f}</td><td>{layer['macs']}/{layer['macs_dense']}</td></tr>"
        for layer in layers
    )
    return f'<details class="layers"><summary>Layers ({len(layers)})</summary><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></details>'


def _histograms(histograms: list[dict]) -> str:
    """The distributions the method reported at the end of pruning (PSP's |alpha|), one chart each."""
    if not histograms:
        return ""
    charts = "".join(histogram(h["edges"], h["counts"], h["name"], "value", h.get("threshold")) for h in histograms)
    return f'<details class="histograms" open><summary>Histograms ({len(histograms)})</summary>{charts}</details>'


def _failed(board: Leaderboard) -> str:
    if board.failed.empty:
        return ""
    rows = "".join(
        f"<tr><td>{escape(str(r.run_id))}</td><td>{escape(str(r.method))}</td><td>{escape(str(r.model))}</td>"
        f'<td>{escape(str(r.dataset))}</td><td>{escape(str(r.seed))}</td><td class="error">{escape(str(r.error))}</td></tr>'
        for r in board.failed.itertuples()
    )
    head = "".join(f'<th tabindex="0">{h}</th>' for h in ("run", "method", "model", "data set", "seed", "reason"))
    return f'<section id="failed"><h2>Failed runs (not ranked)</h2><div class="scroll"><table class="sortable"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div></section>'


def _sweeps(track: Track, colors: dict[str, str]) -> str:
    """Each pruning method's settings as a line of top-1 over compression (MACs reduction on a
    structured track), with 95 % t-intervals as error bars, and the matched-point table."""
    structured = track.key.granularity == "structured"
    column = axis_of(structured)
    measured = track.rows[(track.rows["kind"] == "measured") & (track.rows["granularity"] != "none")]
    series = []
    for method, rows in measured.groupby("method", sort=False):
        points = [(float(row[column]), 100 * float(row["top1"]), _error(row), _tip(row)) for row in rows.to_dict("records")]
        series.append(SweepSeries(str(method), colors.get(str(method), OTHER), points))
    if not series:
        return ""
    axis = "MACs reduction (×, log)" if structured else "compression rate (×, log)"
    chart = sweep_chart(series, "each method's sweep: top-1 with 95 % intervals", axis, "top-1 %")
    table = ""
    if track.matched:
        headers, rows = matched_table(track.matched)
        head = "".join(f'<th tabindex="0">{escape(h)}</th>' for h in headers)
        body = "".join("<tr>" + "".join(f'<td class="{"num" if i else ""}">{escape(v)}</td>' for i, v in enumerate(row)) + "</tr>" for row in rows)
        table = f'<div class="matched"><h3>Matched operating points</h3><p class="ref">{escape(MATCHED)}</p><table class="sortable"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    return f'<div class="plots">{chart}{table}</div>'


def _claims(board: Leaderboard) -> str:
    """The claims summary: every paper row shown that has a status, and the rule that gave it."""
    claims = board.claims()
    if not claims:
        return ""
    head = "".join(f'<th tabindex="0">{escape(h)}</th>' for h in CLAIM_HEADERS)
    rows = "".join(f'<tr class="{escape(c["status"])}">' + "".join(f"<td>{escape(cell)}</td>" for cell in claim_cells(c)) + "</tr>" for c in claims)
    return (f'<section id="claims"><h2>Claims: did each paper row reproduce?</h2><p class="ref">{escape(RULE)}</p>'
            f'<div class="scroll"><table class="sortable"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div></section>')  # fmt: skip


def _skipped(board: Leaderboard) -> str:
    if not board.problems:
        return ""
    items = "".join(f"<li>{escape(line)}</li>" for line in board.problems)
    return f'<section id="skipped"><h2>Skipped records</h2><ul>{items}</ul></section>'


def render(board: Leaderboard) -> str:
    colors = _colors(board)
    sections = []
    for i, track in enumerate(board.tracks):
        sections.append(
            f'<section class="track" id="track-{i}"><h2>{escape(track.key.label)}</h2>'
            f'<p class="ref">{escape(reference_line(track.rows, track.reference))}</p>'
            f'<div class="plots">{_plots(track, colors)}</div>{_legend(track, colors)}{_table(track)}{_sweeps(track, colors)}{_trails(track)}</section>'
        )
    nav = "".join(f'<a href="#track-{i}">{escape(t.key.label)}</a>' for i, t in enumerate(board.tracks))
    order = f"sorted by {board.sort}" if board.sort else "Pareto front of top-1 and compression first, then by top-1"
    counts = f"{_plural(len(board.tracks), 'track')} · {len(board.failed)} failed · {len(board.problems)} skipped"
    summary = f"{escape(board.source)} · {counts} · {escape(order)}"
    empty = "" if board.tracks else "<section><p>No finished runs to rank.</p></section>"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>prunebench leaderboard</title><style>{STYLE}</style></head><body>"
        f"<header><h1>prunebench leaderboard</h1><p>{summary}</p></header>"
        f"<main><nav>{nav}</nav>{empty}{''.join(sections)}{_failed(board)}{_skipped(board)}{_claims(board)}</main>"
        f"<footer>★ / bold outline: {escape(FRONT)}. Error bars: the 95 % t-interval over the seeds. "
        "Cream rows and hollow diamonds: numbers reported by the papers, never averaged with measured runs. "
        "Δ columns: percentage points against the track's dense reference (papers' rows: against their own baseline). "
        "Dense runs are the reference of both granularity tracks of their model. Click a column header to sort.</footer>"
        f"<script>{SCRIPT}</script></body></html>\n"
    )
