"""The journey map page: one column per stage, one row per measure of the journey_map mart, per persona.

Every persona's map is drawn beforehand; radio buttons and CSS alone switch between them (no code runs on the
data). Hidden maps keep the page's width (visibility, not display), so their emotion curves are drawn at the
right size. Names from the data are escaped with esc (HTML) and plotly_text (the curve's hover text).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd
import plotly.graph_objects as go

from cjm_analytics.names import Entity
from cjm_analytics.report.formatting import esc, fmt_int, fmt_num, fmt_pct, missing, number, plotly_text
from cjm_analytics.report.html import chart_html
from cjm_analytics.report.marts import Marts
from cjm_analytics.report.theme import BLUE, MUTED_TEXT, TEMPLATE, rgba

ALL_TYPE = "all"
# ({Plural}: Entity.say; the mart's persona of type all is "all customers", shown in the entity's word.)
PERSONA_TYPE_LABELS = {"all": "All {plural}", "first_touch_channel": "First-touch channel",
                       "last_touch_channel": "Last-touch channel", "cohort_week": "Cohort week",
                       "cohort_month": "Cohort month"}
NOT_CONFIGURED = '<span class="jm-none">not configured</span>'
CURVE_HEIGHT = 170
# The map's own styles (only this page needs them). Colour is never the only cue: lost is ▼ and red, completed ✓
# and blue, significance is a word. A hidden map is laid out at full width (visibility) but takes no height.
_CSS = """
.jm-radio { position: absolute; opacity: 0; width: 1px; height: 1px; }
.jm-picker { border: 1px solid var(--line); border-radius: 6px; padding: .4rem .8rem .6rem; margin: 0 0 1rem; }
.jm-picker legend { font-weight: 600; padding: 0 .3rem; }
.jm-type { margin: .3rem 0; line-height: 2.1; }
.jm-type-name { color: var(--muted); margin-right: .3rem; }
.jm-picker label { display: inline-block; border: 1px solid var(--line); border-radius: 999px; padding: 0 .7rem;
  margin: 0 .15rem; cursor: pointer; white-space: nowrap; line-height: 1.8; background: #fff; }
.jm-maps { position: relative; }
.jm-map { position: absolute; top: 0; left: 0; right: 0; visibility: hidden; height: 0; overflow: hidden; }
.jm-table { table-layout: fixed; width: 100%; }
.jm-table col.jm-label-col { width: 9rem; }
.jm-table th[scope=row] { font-weight: 600; background: var(--bg); position: sticky; left: 0; z-index: 1; }
.jm-table td { font-size: .86rem; overflow-wrap: anywhere; }
.jm-table td.jm-curve { padding: 0; }
.jm-table td.jm-curve .chart { border: 0; margin: 0; padding: 0; }
.jm-hint { display: block; font-weight: 400; color: var(--muted); font-size: .75rem; }
.jm-list { margin: 0; padding-left: 1.1rem; }
.jm-list li { margin: .1rem 0; }
.jm-big { font-size: 1.2rem; font-weight: 600; }
.jm-ci, .jm-muted { color: var(--muted); }
.jm-lost { color: var(--bad); font-weight: 600; }
.jm-done { color: var(--good); font-weight: 600; }
.jm-sig { font-weight: 600; color: var(--accent); }
.jm-none { color: var(--muted); font-style: italic; }
.jm-goal, .jm-after { font-size: .72rem; font-weight: 400; border: 1px solid var(--line); border-radius: 4px;
  padding: 0 .3rem; color: var(--muted); }
.jm-small { color: var(--bad); }
.jm-who { margin: .2rem 0 .4rem; }
.jm-rank { font-weight: 700; }
"""


def _hours(value: object) -> str:
    """A duration in hours as minutes, hours or days, whichever reads best."""
    h = number(value)
    if h is None:
        return "—"
    if h < 1:
        return f"{h * 60:,.0f} min"
    if h < 48:
        return f"{h:,.1f} h"
    return f"{h / 24:,.1f} days"


def _interval(low: object, high: object, fmt: Callable[[object], str], sep: str = "–") -> str:
    return "" if missing(low) or missing(high) else f' <span class="jm-ci">[{fmt(low)}{sep}{fmt(high)}]</span>'


def _pct_ci(r: pd.Series) -> str:
    return f"{esc(fmt_pct(r['value']))}{_interval(r['ci_low'], r['ci_high'], fmt_pct)}"


def _q(value: object) -> str:
    n = number(value)
    return "—" if n is None else "q<0.001" if n < 0.001 else f"q={n:.3f}"


class _Persona:
    """The rows of one persona, looked up by measure and stage.

    The positions of each (measure, stage) are found in one pass: a map asks ~60 lookups per persona, and a
    boolean mask over the rows for each cost more than drawing the rest of the site (0.5 CPU s of ~1 s).
    """

    def __init__(self, rows: pd.DataFrame) -> None:
        self.rows = rows
        self._at: dict[tuple[object, object], int] = {}  # the first row of each (measure, stage)
        for i, key in enumerate(zip(rows["measure"], rows["stage_order"], strict=True)):
            self._at.setdefault(key, i)
        self._ranked: dict[str, dict[object, list[pd.Series]]] = {}

    def one(self, measure: str, stage_order: int) -> pd.Series | None:
        at = self._at.get((measure, stage_order))
        return None if at is None else self.rows.iloc[at]

    def ranked(self, measure: str, stage_order: int) -> list[pd.Series]:
        if measure not in self._ranked:  # every stage's rows of the measure at once, each stage's by rank
            # Stable: rows of one rank (there are none: ranks are row numbers) would keep the mart's order.
            rows = self.rows[self.rows["measure"] == measure].sort_values(["stage_order", "rank"], kind="stable")
            by_stage: dict[object, list[pd.Series]] = {}
            for _, r in rows.iterrows():
                by_stage.setdefault(r["stage_order"], []).append(r)
            self._ranked[measure] = by_stage
        return self._ranked[measure].get(stage_order, [])


def _list(items: Sequence[str]) -> str:
    return "<ol class=\"jm-list\">" + "".join(f"<li>{i}</li>" for i in items) + "</ol>" if items else "—"


def _emotion_figure(p: _Persona, stages: list[tuple[int, str]]) -> go.Figure | None:
    """The mean survey score (0–1) at each stage, with its interval, as a curve across the map's columns."""
    xs: list[int] = []
    ys: list[float | None] = []
    lows: list[float | None] = []
    highs: list[float | None] = []
    texts: list[str] = []
    for i, (order, name) in enumerate(stages):
        r = p.one("emotion_mean_score", order)
        value = None if r is None else number(r["value"])
        # A stage without answers is a gap in the curve, not a point at 0 or a line drawn across it.
        xs.append(i)
        ys.append(value)
        low, high = (None, None) if r is None else (number(r["ci_low"]), number(r["ci_high"]))
        lows.append(None if value is None or low is None else value - low)
        highs.append(None if value is None or high is None else high - value)
        texts.append("" if r is None else f"<b>{plotly_text(name)}</b><br>mean score {fmt_num(r['value'], 2)}"
                     f" (0 = worst, 1 = best)<br>{fmt_int(r['customers'])} answers")
    if all(y is None for y in ys):
        return None
    fig = go.Figure(go.Scatter(
        x=xs, y=ys, mode="lines+markers", connectgaps=False, line={"color": BLUE, "width": 3},
        marker={"size": 9, "color": BLUE, "symbol": "circle"}, hovertext=texts, hoverinfo="text",
        error_y={"type": "data", "symmetric": False, "array": highs, "arrayminus": lows,
                 "color": rgba(BLUE, 0.45), "thickness": 1.5, "width": 4},
    ))
    # x spans the stage columns exactly (each column one unit wide, points at their centres), so the curve sits
    # under the table's stage headers.
    fig.update_layout(
        template=TEMPLATE, height=CURVE_HEIGHT, showlegend=False, margin={"l": 0, "r": 0, "t": 8, "b": 8},
        xaxis={"range": [-0.5, len(stages) - 0.5], "visible": False, "fixedrange": True},
        yaxis={"range": [-0.05, 1.05], "tickvals": [0, 0.5, 1], "ticktext": ["0", "0.5", "1"],
               "tickfont": {"size": 10, "color": MUTED_TEXT}, "fixedrange": True, "ticks": "", "side": "left"},
    )
    return fig


def _row(label: str, cells: Sequence[str], hint: str = "") -> str:
    hint_html = f'<span class="jm-hint">{esc(hint)}</span>' if hint else ""
    return (f'<tr><th scope="row">{esc(label)}{hint_html}</th>'
            + "".join(f"<td>{c}</td>" for c in cells) + "</tr>\n")


def _persona_map(index: int, p: _Persona, stages: list[tuple[int, str]], goal_order: int, surveys: bool,
                 support: bool, entity: Entity, sessions_off: bool) -> str:
    """One persona's map: its table of stages and measures, with the emotion curve in its own row."""
    before = [o < goal_order for o, _ in stages]
    last_order = stages[-1][0]

    def cells(fn: Callable[[int, bool], str]) -> list[str]:
        return [fn(order, pre) for (order, _), pre in zip(stages, before, strict=True)]

    def reached(order: int, _: bool) -> str:
        r = p.one("reached", order)
        return "—" if r is None else f'<span class="jm-big">{esc(fmt_int(r["value"]))}</span>'

    def goes_on(order: int, pre: bool) -> str:
        if order == last_order:
            return '<span class="jm-muted">last stage</span>'
        r = p.one("conversion_to_next", order)
        return "—" if r is None else _pct_ci(r)

    def ends(order: int, pre: bool) -> str:
        r = p.one("lost" if pre else "completed", order)
        if r is None:
            return "—"
        if pre:
            return f'<span class="jm-lost">▼ {esc(fmt_int(r["value"]))} lost</span>'
        return f'<span class="jm-done">✓ {esc(fmt_int(r["value"]))} completed</span>'

    def stay(order: int, _: bool) -> str:
        med, p90 = p.one("time_in_stage_median_hours", order), p.one("time_in_stage_p90_hours", order)
        if med is None or p90 is None:
            return "—"
        return (f"median {esc(_hours(med['value']))}<br><span class=\"jm-muted\">p90 {esc(_hours(p90['value']))}"
                f" · {esc(fmt_int(med['customers']))} moved on</span>")

    def shares(measure: str) -> Callable[[int, bool], str]:
        def cell(order: int, _: bool) -> str:
            ranked = p.ranked(measure, order)
            if measure == "channel_mix" and [r["label"] for r in ranked] == ["(no channel)"]:
                return '<span class="jm-muted">no channel in the data</span>'
            return _list([f"{esc(r['label'])} <b>{esc(fmt_pct(r['value'], 0))}</b>" for r in ranked])
        return cell

    def emotion(order: int, _: bool) -> str:
        parts = []
        scales: tuple[tuple[str, str, Callable[[object], str]], ...] = (
            ("emotion_mean_score", "score", lambda v: fmt_num(v, 2)),
            ("nps", "NPS", lambda v: fmt_num(v, 0)),
            ("csat_mean", "CSAT", lambda v: fmt_num(v, 1)))
        for measure, name, fmt in scales:
            r = p.one(measure, order)
            if r is not None:
                parts.append(f"{name} <b>{esc(fmt(r['value']))}</b>{_interval(r['ci_low'], r['ci_high'], fmt, ', ')}"
                             f' <span class="jm-muted">n={esc(fmt_int(r["customers"]))}</span>')
        return "<br>".join(parts) if parts else '<span class="jm-muted">no answers</span>'

    def pain(order: int, pre: bool) -> str:
        if not pre:
            return '<span class="jm-muted">after the goal: journeys that end here are completed</span>'
        lost = p.one("lost", order)
        if lost is None or not number(lost["value"]):
            return f'<span class="jm-muted">no {entity.singular} lost here</span>'
        last = p.ranked("lost_last_touchpoint", order)
        out = [f"<span class=\"jm-muted\">lost {entity.plural} did last:</span>" + _list(
            [f"{esc(r['label'])} <b>{esc(fmt_pct(r['value'], 0))}</b>" for r in last])]
        for measure, name, configured in (("lost_support_share", "contacted support", support),
                                          ("lost_low_score_share", "low survey score", surveys)):
            r = p.one(measure, order)
            value = NOT_CONFIGURED if not configured else "—" if r is None else _pct_ci(r)
            out.append(f"{name}: {value}")
        return "<br>".join(out)

    def moments(order: int, pre: bool) -> str:
        if not pre:
            return '<span class="jm-muted">after the goal</span>'
        rows = p.ranked("moment_of_truth", order)
        if not rows and bool(p.rows["too_small"].iloc[0]):
            return '<span class="jm-muted">persona too small to test</span>'
        if not rows:
            return f'<span class="jm-muted">no touchpoint held and lacked by enough {entity.plural} to test</span>'
        items = []
        for r in rows:
            sure = bool(r["significant"]) if not missing(r["significant"]) else False
            mark = ('<span class="jm-sig">significant</span>' if sure
                    else '<span class="jm-muted">not significant</span>')
            arrow = "▲" if (number(r["value"]) or 0) > 1 else "▼"
            items.append(f"{esc(r['label'])}: {arrow} odds ×<b>{esc(fmt_num(r['value'], 2))}</b>"
                         f"{_interval(r['ci_low'], r['ci_high'], lambda v: fmt_num(v, 2), ', ')}<br>"
                         f'<span class="jm-muted">{esc(fmt_pct(r["rate_with"], 0))} with vs '
                         f"{esc(fmt_pct(r['rate_without'], 0))} without go on · {esc(_q(r['q_value']))}</span>"
                         f" {mark}")
        return _list(items)

    def opportunity(order: int, pre: bool) -> str:
        if not pre:
            return '<span class="jm-muted">after the goal</span>'
        r = p.one("opportunity", order)
        if r is None:
            return '<span class="jm-muted">no significant driver</span>'
        return (f'<span class="jm-rank">#{esc(fmt_int(r["rank"]))}</span> ≈ <b>{esc(fmt_int(r["value"]))}</b> '
                f"{entity.plural}{_interval(r['ci_low'], r['ci_high'], fmt_int)}<br>"
                f'<span class="jm-muted">if the {esc(fmt_int(r["customers"]))} lost had the odds of those with '
                f"{esc(r['label'])}</span>")

    curve = _emotion_figure(p, stages) if surveys else None
    if not surveys:
        curve_cell = f'<td colspan="{len(stages)}">{NOT_CONFIGURED} (no surveys in analysis.surveys)</td>'
    elif curve is None:
        curve_cell = f'<td colspan="{len(stages)}"><span class="jm-muted">no survey answers</span></td>'
    else:
        curve_cell = f'<td colspan="{len(stages)}" class="jm-curve">{chart_html(curve, f"jm-curve-{index}")}</td>'
    heads = "".join(
        f'<th scope="col">{esc(name)}'
        + (' <span class="jm-goal">goal</span>' if order == goal_order else
           ' <span class="jm-after">after goal</span>' if order > goal_order else "")
        + "</th>" for order, name in stages)
    return (
        f'<div class="table-wrap"><table class="jm-table" style="min-width:{9 + 11 * len(stages)}rem">\n'
        f'<colgroup><col class="jm-label-col">{"<col>" * len(stages)}</colgroup>\n'
        f'<thead><tr><th scope="col">stage</th>{heads}</tr></thead>\n<tbody>\n'
        + _row(entity.Plural, cells(reached), "reached the stage or a later one")
        + _row("Go on", cells(goes_on), "to the next stage [95% interval]")
        + _row("Journeys ending here", cells(ends))
        + _row("Time in stage", cells(stay), "first event here to the first at a later stage")
        + _row("Top actions", cells(shares("top_touchpoint")), f"share of the stage's {entity.plural}")
        + _row("Channels", cells(shares("channel_mix")),
               # Sessions off: a journey is one session, whose channel is the journey's first.
               f"share of the stage's {entity.plural}, by the channel of their first event (sessions: off)"
               if sessions_off else "share of the stage's sessions")
        + f'<tr><th scope="row">Emotion<span class="jm-hint">mean survey score, 0–1</span></th>{curve_cell}</tr>\n'
        + _row("Scores", cells(emotion) if surveys else [NOT_CONFIGURED] * len(stages),
               "[95% interval], n answers")
        + _row("Pain points", cells(pain))
        + _row("Moments of truth", cells(moments), "touchpoints that most change going on")
        + _row("Opportunity", cells(opportunity), "ranked: lost × the best significant lift")
        + "</tbody></table></div>"
    )


def _type_label(persona_type: str, entity: Entity) -> str:
    # A type from the config (a property's name) is shown as written, never read as a template.
    return entity.say(PERSONA_TYPE_LABELS[persona_type]) if persona_type in PERSONA_TYPE_LABELS else persona_type


def _persona_name(persona_type: str, persona: str, entity: Entity) -> str:
    """A persona as the page names it: the mart's value, but everyone ("all customers") in the entity's word."""
    return f"all {entity.plural}" if persona_type == ALL_TYPE else persona


def _persona_header(p: _Persona, goal: str, entity: Entity) -> str:
    first = p.rows.iloc[0]
    size, small = first["persona_size"], bool(first["too_small"]) if not missing(first["too_small"]) else False
    conv = p.rows[p.rows["measure"] == "persona_conversion"]
    name = _persona_name(str(first["persona_type"]), str(first["persona"]), entity)
    text = f"<b>{esc(name)}</b>: {esc(fmt_int(size))} journey {entity.plural}"
    if small:
        text += ' · <span class="jm-small">too small to read: figures are shown, but vary a lot by chance</span>'
    if not conv.empty:
        c = conv.iloc[0]
        # A persona too small to read is never tested (compare_segments): it gets no verdict, not "no difference".
        verdict = ("" if missing(c["q_value"]) else
                   f" ({'differs from the rest' if bool(c['significant']) else 'no clear difference from the rest'},"
                   f" {esc(_q(c['q_value']))})")
        text += (f" · reach {esc(goal)}: {_pct_ci(c)} vs {esc(fmt_pct(c['rate_without']))} for the rest"
                 f"{verdict}")
    return f'<p class="jm-who">{text}</p>'


def journey_map_body(marts: Marts) -> str:
    """The map of every persona, the first (all customers) shown, with the selector above."""
    jm, e = marts.journey_map, marts.entity
    if jm is None or jm.empty:
        return '<p class="empty">This warehouse has no journey map yet: run <code>cjm run</code> to build it.</p>'
    flags = jm[jm["measure"].str.endswith("_configured")].set_index("measure")["value"]
    surveys, support = bool(flags.get("surveys_configured", 0)), bool(flags.get("support_configured", 0))
    rows = jm[jm["stage_order"].notna()]
    stage_rows = rows[rows["measure"] == "reached"].drop_duplicates("stage_order").sort_values("stage_order")
    stages = [(int(r["stage_order"]), str(r["stage"])) for r in stage_rows.to_dict("records")]
    completed = rows[rows["measure"] == "completed"]["stage_order"]
    goal_order = int(completed.min()) if not completed.empty else stages[-1][0]
    goal = dict(stages).get(goal_order, "")
    personas = [(str(t), str(n), g) for (t, n), g in rows.groupby(["persona_type", "persona"], sort=False)]
    # All customers first, then each persona type in the config's order (as the mart lists them), largest first.
    personas.sort(key=lambda x: (x[0] != ALL_TYPE, -int(x[2]["persona_size"].iloc[0]), x[1]))
    types = list(dict.fromkeys(t for t, _, _ in personas))
    radios, maps, rules = [], [], []
    picker = []
    for t in types:
        labels = []
        for i, (pt, name, group) in enumerate(personas):
            if pt != t:
                continue
            small = bool(group["too_small"].iloc[0])
            size = fmt_int(group["persona_size"].iloc[0])
            radios.append(f'<input type="radio" name="jm-persona" id="jm-p{i}" class="jm-radio"'
                          f'{" checked" if i == 0 else ""}>')
            labels.append(f'<label for="jm-p{i}">{esc(_persona_name(pt, name, e))} <span class="jm-muted">{esc(size)}'
                          f'{" · too small" if small else ""}</span></label>')
            rules.append(f"#jm-p{i}:checked ~ .jm-maps .jm-p{i} {{ position: static; visibility: visible; "
                         f"height: auto; overflow: visible; }}\n"
                         f"#jm-p{i}:checked ~ .jm-picker label[for=jm-p{i}] {{ background: var(--accent); "
                         f"color: #fff; border-color: var(--accent); }}\n"
                         f"#jm-p{i}:focus-visible ~ .jm-picker label[for=jm-p{i}] {{ outline: 2px solid "
                         f"var(--accent); outline-offset: 2px; }}\n"
                         f"#jm-p{i}:checked ~ .jm-picker label[for=jm-p{i}] .jm-muted {{ color: #dce8f3; }}")
            p = _Persona(group)
            maps.append(f'<section class="jm-map jm-p{i}" aria-label="journey map: {esc(_persona_name(pt, name, e))}">'
                        f"{_persona_header(p, goal, e)}"
                        f"{_persona_map(i, p, stages, goal_order, surveys, support, e, marts.sessions_off)}"
                        "</section>")
        picker.append(f'<div class="jm-type"><span class="jm-type-name">{esc(_type_label(t, e))}:'
                      f"</span> {' '.join(labels)}</div>")
    return f"""<p class="note">One column per stage, one row per measure, for all journey {e.plural} or one
persona (choose below). Red ▼ marks {e.plural} lost before the goal ({esc(goal)}); after it, a journey that ends
is completed (✓), never lost. Intervals are 95%. A moment of truth is a touchpoint of the stage: the {e.plural}
who had it before reaching the next stage went on with higher (▲) or lower (▼) odds than those who did not
(the odds ratio; Fisher's exact or chi-square test, Benjamini–Hochberg corrected: q &lt; 0.05 is significant).
It shows association, not cause. A stage's opportunity is its lost {e.plural} × (the rate with − the rate
without) of its strongest significant ▲ touchpoint, ranked by the low end of its interval. Definitions:
docs/marts.md.</p>
<style>
{_CSS}{"".join(rules)}
</style>
<div class="jm">
{"".join(radios)}
<fieldset class="jm-picker"><legend>Persona</legend>
{"".join(picker)}
</fieldset>
<p class="scroll-hint">Wider than the screen: scroll the map sideways (the row names stay).</p>
<div class="jm-maps">
{"".join(maps)}
</div>
</div>"""
