"""The claims scorecard of every study, as the Snakemake report shows it first.

:func:`write_scorecard` joins the studies' ``claims.csv`` into one ``claims.csv`` and renders
it twice: a standalone HTML page (a report result, opened full-width in the report's viewer)
and an HTML fragment that ``report/workflow.rst`` embeds in the report's landing page. Both
state each study's data source, scale and verdict counts and the software versions that
trained the members and evaluated the claims; every number comes from the CSVs.

The papers' claims (``origin`` "paper") and depthlab's own consistency checks (``origin``
"project", e.g. a net against its kernel regression where the paper states nothing) are kept
apart: the joined CSV lists every paper claim first, then the project checks (each group in
study order), and the page shows them as two tables, each counted on its own. A paper claim's
row shows the paper's words (``quote``) and their place (``where``) beside the criterion the
project checks them with.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from depthlab.claims import (
    COLUMNS,
    ORIGINS,
    PAPER_CLAIM,
    PROJECT_CHECK,
    VERDICTS,
    read_claims,
    verdict_counts,
)
from depthlab.provenance import atomic_output

__all__ = ["scorecard_frame", "scorecard_html", "software_summary", "write_scorecard"]

_VERDICT_STYLE = {
    "holds": ("#166534", "#dcfce7"),
    "fails": ("#991b1b", "#fee2e2"),
    "not resolved at this scale": ("#374151", "#e5e7eb"),
}
_PACKAGES = ("depthlab", "python", "torch", "numpy", "scipy", "xarray", "h5py", "snakemake")

_CSS = """
.depthlab-scorecard { font-family: system-ui, sans-serif; font-size: 13px; color: #111827;
  max-width: none; }
.depthlab-scorecard h2 { font-size: 18px; margin: 0 0 6px 0; }
.depthlab-scorecard table { border-collapse: collapse; margin: 6px 0 12px 0; }
.depthlab-scorecard th, .depthlab-scorecard td { border: 1px solid #d1d5db; padding: 3px 6px;
  text-align: left; vertical-align: top; }
.depthlab-scorecard th { background: #f3f4f6; }
.depthlab-scorecard td.num { text-align: right; white-space: nowrap;
  font-variant-numeric: tabular-nums; }
.depthlab-scorecard .verdict { font-weight: 600; white-space: nowrap; border-radius: 4px;
  padding: 1px 6px; }
.depthlab-scorecard .small { color: #4b5563; font-size: 12px; }
.depthlab-scorecard .notes { color: #4b5563; font-size: 11px; min-width: 16em; }
.depthlab-scorecard td.statement { min-width: 18em; }
.depthlab-scorecard td.criterion { min-width: 13em; }
.depthlab-scorecard td.quote { min-width: 16em; font-style: italic; }
.depthlab-scorecard h3 { font-size: 15px; margin: 10px 0 4px 0; }
.depthlab-scorecard .scroll { overflow-x: auto; max-width: 100%; }
.depthlab-scorecard .mono { font-family: ui-monospace, monospace; font-size: 11px; }
"""
# The report's landing page shows the workflow description in a narrow column beside the
# rule graph, vertically centred; with the scorecard in it, give it the full width, align it
# to the top (so a long table scrolls instead of being cut) and put the rule graph below.
# Plain CSS on the report app's layout classes: if they change, the table still renders.
_LANDING_CSS = """
div.h-screen:has(#claims-scorecard) { align-items: flex-start; justify-content: flex-start; }
div.gap-3:has(#claims-scorecard) { flex-direction: column; min-width: 0; }
div.gap-3:has(#claims-scorecard) > div { max-width: 100%; min-width: 0; }
.prose:has(#claims-scorecard) { max-width: none; }
"""


def scorecard_frame(claims: Mapping[str, str | Path]) -> pd.DataFrame:
    """The claims of every study (``{study: claims.csv}``): the paper claims of every study
    (in the given study order, each study's rows in its own order), then the project checks
    the same way."""
    frames = [read_claims(path) for path in claims.values()]
    if not frames:
        return pd.DataFrame(columns=list(COLUMNS))
    frame = pd.concat(frames, ignore_index=True)[list(COLUMNS)]
    bad = sorted(set(frame["origin"]) - set(ORIGINS))
    if bad:
        raise ValueError(f"claims: unknown origin(s) {bad}; rows are one of {list(ORIGINS)}")
    rank = frame["origin"].map({o: i for i, o in enumerate(ORIGINS)})
    return frame.iloc[rank.argsort(kind="stable").to_numpy()].reset_index(drop=True)


def _versions(cell: str) -> list[dict[str, str]]:
    """Version dicts from a software_versions cell: one JSON object, or a JSON list of JSON
    object strings (a cube's training_software_versions)."""
    if not isinstance(cell, str) or not cell.strip():
        return []
    value = json.loads(cell)
    items = value if isinstance(value, list) else [value]
    return [json.loads(v) if isinstance(v, str) else v for v in items]


def software_summary(frame: pd.DataFrame) -> dict[str, dict[str, str]]:
    """``{"training": {pkg: versions}, "claims": {pkg: versions}}`` over all rows (several
    versions of one package are joined with " / ")."""
    out: dict[str, dict[str, str]] = {}
    for label, column in (("training", "training_software_versions"),
                          ("claims", "software_versions")):
        seen: dict[str, set[str]] = {}
        for cell in frame[column].drop_duplicates() if column in frame else []:
            for versions in _versions(cell):
                for pkg, ver in versions.items():
                    seen.setdefault(pkg, set()).add(str(ver))
        out[label] = {pkg: " / ".join(sorted(seen[pkg])) for pkg in _PACKAGES if pkg in seen}
    return out


def _fmt(value: float, digits: int = 4) -> str:
    if value is None or pd.isna(value):
        return "&ndash;"
    return f"{value:.{digits}g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def _badge(verdict: str) -> str:
    fg, bg = _VERDICT_STYLE[verdict]
    return (f'<span class="verdict" style="color:{fg};background:{bg}">'
            f"{html.escape(verdict)}</span>")


def _figure_cell(study: str, figure: str, figures: Mapping[str, str], links: bool) -> str:
    if not figure:
        return ""
    path = figures.get(f"{study}/{figure}")
    text = html.escape(figure)
    if not (links and path):
        return text
    # the report app's own navigation: show the figure's entry (caption, view button)
    target = quote(path, safe="/")
    return (f'<a href="javascript:void(window.app &amp;&amp; app.showResultInfo('
            f"decodeURIComponent(&quot;{target}&quot;)))\">{text}</a>")


def scorecard_html(frame: pd.DataFrame, *, figures: Mapping[str, str] | None = None,
                   kinds: Mapping[str, str] | None = None, fragment: bool = False) -> str:
    """The scorecard as HTML: a page, or (``fragment``) a ``<div>`` for the report's landing
    page whose figure names link to the report's figure entries."""
    figures = figures or {}
    kinds = kinds or {}
    parts = [f"<style>{_CSS}{_LANDING_CSS if fragment else ''}</style>",
             '<div class="depthlab-scorecard" id="claims-scorecard">',
             "<h2>Claims scorecard</h2>"]
    if frame.empty:
        parts.append("<p>No claims were checked (no study has claims).</p></div>")
        return _page("\n".join(parts)) if not fragment else "\n".join(parts)
    paper = frame[frame["origin"] == PAPER_CLAIM]
    project = frame[frame["origin"] == PROJECT_CHECK]
    parts.append('<p class="small totals" data-origin="paper">Paper claims: '
                 + _counts_text(paper) + ". Each row: one claim of the paper (its own words "
                 "and place) checked on the study's cube; values are means over seeds of "
                 "converged members only (diverged or capped runs never count), &plusmn; as "
                 "the uncertainty column says. Source: "
                 '<span class="mono">claims.csv</span> of each study.</p>')
    if len(project):
        parts.append('<p class="small totals" data-origin="project">Project checks '
                     "(depthlab's own consistency checks, not claims of the papers; counted "
                     "apart): " + _counts_text(project) + ".</p>")

    parts.append('<div class="scroll"><table class="studies"><thead><tr><th>study</th><th>kind</th>'
                 "<th>paper</th><th>data source</th><th>scale</th>"
                 + "".join(f"<th>{html.escape(v)}</th>" for v in VERDICTS)
                 + "<th>project checks</th></tr></thead><tbody>")
    for study, rows in frame.groupby("study", sort=False):
        counts = verdict_counts(rows[rows["origin"] == PAPER_CLAIM])
        n_project = int((rows["origin"] == PROJECT_CHECK).sum())
        parts.append(
            f'<tr data-study="{html.escape(study)}"><td>{html.escape(study)}</td>'
            f"<td>{html.escape(kinds.get(study, ''))}</td>"
            f"<td>{html.escape('; '.join(dict.fromkeys(rows['paper'])))}</td>"
            f"<td>{html.escape('; '.join(dict.fromkeys(rows['data_source'])))}</td>"
            f"<td>{html.escape('; '.join(dict.fromkeys(rows['scale'].astype(str))))}</td>"
            + "".join(f'<td class="num">{counts[v]}</td>' for v in VERDICTS)
            + f'<td class="num">{n_project}</td></tr>')
    parts.append("</tbody></table></div>")

    parts.append(_claims_table(paper, figures, fragment, quotes=True,
                               title="Claims of the papers"))
    if len(project):
        parts.append(_claims_table(project, figures, fragment, quotes=False,
                                   title="Project checks (not claims of the papers)"))

    software = software_summary(frame)
    for label, title in (("training", "trained with"), ("claims", "claims evaluated with")):
        if software.get(label):
            parts.append(f'<p class="small software" data-software="{label}">{title}: '
                         + ", ".join(f"{html.escape(p)} {html.escape(v)}"
                                     for p, v in software[label].items()) + "</p>")
    parts.append("</div>")
    body = "\n".join(parts)
    return body if fragment else _page(body)


def _counts_text(rows: pd.DataFrame) -> str:
    counts = verdict_counts(rows)
    return (", ".join(f"{_badge(v)} {counts[v]}" for v in VERDICTS)
            + f" of {len(rows)}")


def _claims_table(rows: pd.DataFrame, figures: Mapping[str, str], links: bool, *,
                  quotes: bool, title: str) -> str:
    """One table of rows (paper claims with the paper's words, or project checks)."""
    origin = PAPER_CLAIM if quotes else PROJECT_CHECK
    parts = [f'<h3 data-origin="{origin}">{html.escape(title)}</h3>',
             f'<div class="scroll"><table class="claims" data-origin="{origin}"><thead><tr>'
             "<th>study</th><th>claim</th><th>where</th>"
             + ("<th>the paper's words</th>" if quotes else "")
             + "<th>checked here</th><th>paper</th><th>measured</th>"
             "<th>&plusmn;</th><th>criterion</th><th>verdict</th><th>figure</th>"
             "<th>n</th><th>notes</th></tr></thead><tbody>"]
    for r in rows.itertuples(index=False):
        parts.append(
            f'<tr class="claim" data-study="{html.escape(r.study)}" '
            f'data-claim="{html.escape(r.claim_id)}" data-verdict="{html.escape(r.verdict)}" '
            f'data-origin="{html.escape(r.origin)}">'
            f'<td>{html.escape(r.study)}</td><td class="mono">{html.escape(r.claim_id)}</td>'
            f'<td>{html.escape(r.where)}</td>'
            + (f'<td class="quote">&ldquo;{html.escape(r.quote)}&rdquo;</td>'
               if quotes and r.quote else '<td class="quote"></td>' if quotes else "")
            + f'<td class="statement">{html.escape(r.statement)}</td>'
            f'<td class="num">{_fmt(r.paper_value)}</td>'
            f'<td class="num">{_fmt(r.measured)}</td>'
            f'<td class="num" title="{html.escape(r.uncertainty_kind)}">'
            f"{_fmt(r.uncertainty, 2)}</td>"
            f'<td class="small criterion">{html.escape(r.criterion)}</td>'
            f"<td>{_badge(r.verdict)}</td>"
            f"<td>{_figure_cell(r.study, r.figure, figures, links)}</td>"
            f'<td class="num" title="members used (excluded: {int(r.n_excluded)})">'
            f"{int(r.n_members)}</td>"
            f'<td class="notes">{html.escape(r.notes)}</td></tr>')
    parts.append("</tbody></table></div>")
    return "\n".join(parts)


def _page(body: str) -> str:
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>depthlab claims scorecard</title></head><body>\n"
            f"{body}\n</body></html>\n")


def write_scorecard(claims: Mapping[str, str | Path], *, csv_path: str | Path,
                    html_path: str | Path, fragment_path: str | Path,
                    figures: Mapping[str, str] | None = None,
                    kinds: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Join the studies' claims into ``csv_path`` and render the page and the fragment
    (each written atomically). ``figures`` maps ``"study/figure"`` to the figure's path as
    the report knows it (its PNG), for links from the landing page."""
    frame = scorecard_frame(claims)
    with atomic_output(csv_path) as tmp:
        frame.to_csv(tmp, index=False)
    for path, fragment in ((html_path, False), (fragment_path, True)):
        text = scorecard_html(frame, figures=figures, kinds=kinds, fragment=fragment)
        with atomic_output(path) as tmp:
            Path(tmp).write_text(text, encoding="utf-8")
    return frame
