"""The report (and the comparison of runs) as one self-contained HTML page: inline CSS, plots as base64 PNG
data URIs, no scripts.

Model output is data: every response, word, pattern and config value goes through ``html.escape``.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import yaml

from logicrl.analysis.examples import Example
from logicrl.analysis.tables import Row

if TYPE_CHECKING:
    from logicrl.analysis.compare import Comparison
    from logicrl.analysis.report import ReportData

Column = tuple[str, str, Callable[[Any], str]]

# Control characters (not tab/newline/CR) and lone surrogates: invalid in HTML text or not encodable as UTF-8.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")

CSS = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}img{max-width:100%;display:block;margin:1em 0}
pre{background:#f8f8f8;border:1px solid #e4e4e4;padding:.8em;white-space:pre-wrap;word-break:break-word;
max-height:30em;overflow:auto}.note{color:#666;font-size:.9em}.example{margin-bottom:1.5em}
"""


def num(digits: int) -> Callable[[Any], str]:
    return lambda v: "–" if v is None else f"{v:.{digits}f}"


def general(v: Any) -> str:
    """Four significant digits (metrics span 1e-4 KLs to 4096-token lengths)."""
    return "–" if v is None else f"{v:.4g}"


def pct(v: Any) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def text(v: Any) -> str:
    return "–" if v is None else str(v)


def table(rows: list[Row], columns: list[Column]) -> str:
    """An HTML table; every cell is formatted then escaped."""
    head = "".join(f"<th>{html.escape(title)}</th>" for title, _, _ in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(fmt(row.get(key)))}</td>" for _, key, fmt in columns) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def image(images: dict[str, bytes], name: str, alt: str) -> str:
    if name not in images:
        return ""
    data = base64.b64encode(images[name]).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


WITH_WITHOUT: list[Column] = [
    ("with (n)", "n_with", text), ("share", "share", pct), ("reward with", "reward_with", num(2)),
    ("without (n)", "n_without", text), ("reward without", "reward_without", num(2)),
    ("acc with", "acc_with", pct), ("acc without", "acc_without", pct),
    ("first bin share", "first_share", pct), ("last bin share", "last_share", pct),
]


def _setting(config: dict[str, Any], section: str, key: str) -> str:
    """``config[section][key]`` as text, "?" when the run config lacks it."""
    part = config.get(section)
    return str(part.get(key, "?")) if isinstance(part, dict) else "?"


def _header(data: ReportData) -> str:
    model = _setting(data.run_config, "model", "name")
    algorithm = _setting(data.run_config, "algorithm", "advantage")
    responses = sum(b.all.n for b in data.bins)
    scope = (f"{responses} {data.cfg.source} responses from {data.files_read} of {data.files_total} step"
             f" files (every {data.cfg.steps_every}), {len(data.bins)} bins of {data.bin_size} step(s)")
    config = yaml.safe_dump(data.run_config, sort_keys=False) if data.run_config else "(no config.yaml)"
    return (f"<h1>logicrl report: {html.escape(str(data.run_dir))}</h1>"
            f"<p>model <b>{html.escape(model)}</b>, advantage <b>{html.escape(algorithm)}</b>; "
            f"{html.escape(scope)}.</p>"
            f"<details><summary>run config</summary><pre>{html.escape(config)}</pre></details>")


def _curves(data: ReportData, images: dict[str, bytes]) -> str:
    metric_cols: list[Column] = [("metric", "metric", text), ("points", "points", text),
                                 ("first step", "first_step", text), ("first", "first", general),
                                 ("last step", "last_step", text), ("last", "last", general),
                                 ("min", "min", general), ("max", "max", general)]
    people_cols: list[Column] = [("people", "people", text), ("step", "step", text), ("accuracy", "acc", pct),
                                 ("format ok", "format_ok", pct), ("best accuracy", "best_acc", pct)]
    people = data.tables["val_people"]
    return ("<h2>Training curves</h2>" + table(data.tables["metrics"], metric_cols)
            + image(images, "curves", "training curves")
            + (("<h3>Validation by number of people (latest)</h3>" + table(people, people_cols)
                + image(images, "val_people", "validation accuracy by number of people")) if people else ""))


def _words(data: ReportData, images: dict[str, bytes]) -> str:
    return ("<h2>Thinking words</h2><p class=note>Share of responses containing each word (whole word, "
            "any case), and the mean reward and accuracy of responses with vs without it.</p>"
            + table(data.tables["words"], [("word", "word", text), *WITH_WITHOUT])
            + image(images, "words", "thinking word frequency")
            + image(images, "words_score", "reward with vs without"))


def _mixing(data: ReportData, images: dict[str, bytes]) -> str:
    row = {"feature": f"non-Latin script (share > {data.cfg.mixing_threshold:g})", **data.tables["mixing"]}
    cols: list[Column] = [("responses", "feature", text), *WITH_WITHOUT,
                          ("mean unit share", "mean_mixing", pct)]
    return "<h2>Language mixing</h2>" + table([row], cols) + image(images, "mixing", "language mixing")


def _behaviours(data: ReportData, images: dict[str, bytes]) -> str:
    cols: list[Column] = [("behaviour", "behaviour", text), *WITH_WITHOUT, ("verdict", "verdict", text),
                          ("rise R", "rise", num(2)), ("max jump J", "jump", num(2)),
                          ("J / R", "suddenness", num(2)), ("aha step", "aha_step", text)]
    patterns = "".join(f"<li><b>{html.escape(name)}</b>: <code>{html.escape(' | '.join(p))}</code></li>"
                       for name, p in data.cfg.behaviours.items())
    cfg = data.cfg
    w = cfg.aha_window
    rule = (f"R = mean of the last {w} bins − mean of the first {w}; J = largest rise between {w} adjacent "
            f"bins and the {w} before them; sudden when R ≥ {cfg.min_rise:g} and J/R ≥ {cfg.sudden_share:g} "
            "(an 'aha' step), gradual when J/R is smaller.")
    return ("<h2>Reflective behaviours</h2>" + table(data.tables["behaviours"], cols)
            + f"<p class=note>{html.escape(rule)}</p>" + image(images, "behaviours", "reflective behaviours")
            + f"<details><summary>patterns (case-insensitive regexes)</summary><ul>{patterns}</ul></details>")


def _length(data: ReportData, images: dict[str, bytes]) -> str:
    r = data.tables["length_acc_r"]
    note = "" if r is None else f"<p>Pearson r between mean length and accuracy across bins: {r:.2f}</p>"
    return "<h2>Response length vs accuracy</h2>" + note + image(images, "length", "length vs accuracy")


def printable(value: str) -> str:
    """``value`` with control characters and lone surrogates replaced by U+FFFD."""
    return _UNPRINTABLE.sub("\ufffd", value)


def example_html(example: Example) -> str:
    r, f = example.response, example.features
    facts = " · ".join([
        f"step {r.step}", f"puzzle {r.puzzle_id or '?'}", f"{r.n_people or '?'} people",
        f"reward {r.reward:g}",
        "solved" if r.solved else "not solved", f"format {'ok' if r.format_ok else 'failed'}",
        f"answer {r.answer_status or '?'}", f"{r.length} tokens" + (" (truncated)" if r.truncated else ""),
        f"words: {', '.join(sorted(f.words)) or '–'}",
        f"behaviours: {', '.join(sorted(f.behaviours)) or '–'}",
        f"non-Latin share {f.mixing:.2f}",
    ])
    cut = (f"<p class=note>(first {len(example.text)} of {len(r.response)} characters)</p>"
           if example.cut else "")
    return (f"<div class=example><h3>{html.escape(example.label)}</h3><p class=note>{html.escape(facts)}</p>"
            f"<pre>{html.escape(printable(example.text))}</pre>{cut}</div>")


def render_html(data: ReportData, images: dict[str, bytes]) -> str:
    """The whole page as one string."""
    if data.bins:
        body = "".join(part(data, images) for part in (_words, _mixing, _behaviours, _length))
        examples = "<h2>Example responses</h2>" + "".join(example_html(e) for e in data.examples)
    else:
        where = html.escape(str(data.run_dir / data.cfg.source))
        body = (f"<p class=note>No responses in {where}/: its {data.files_read} step files hold no rows.</p>"
                if data.files_read else f"<p class=note>No response logs in {where}/.</p>")
        examples = ""
    return page("logicrl report", f"{_header(data)}{_curves(data, images)}{body}{examples}")


def page(title: str, body: str) -> str:
    """A whole self-contained page: ``body`` (already HTML) under the shared CSS."""
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>{body}</body></html>\n")


def _value(value: Any) -> str:
    """A config value as text: strings as they are, everything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _cells(header: list[str], rows: list[list[str]]) -> str:
    """A table of ready-made text cells (``evaluate.tables`` rows)."""
    return table([dict(enumerate(row)) for row in rows], [(title, i, text) for i, title in enumerate(header)])


def _runs(comparison: Comparison) -> str:
    rows = []
    for ref in comparison.runs:
        config = comparison.configs[ref.label]
        steps = max((c.steps[-1] for by_run in comparison.curves.values() for label, c in by_run.items()
                     if label == ref.label), default=None)
        rows.append({"label": ref.label, "dir": str(ref.path), "model": _setting(config, "model", "name"),
                     "advantage": _setting(config, "algorithm", "advantage"), "steps": steps})
    cols: list[Column] = [("run", "label", text), ("directory", "dir", text), ("model", "model", text),
                          ("advantage", "advantage", text), ("last step", "steps", text)]
    return f"<h1>logicrl compare: {len(comparison.runs)} runs</h1>" + table(rows, cols)


def _diff(comparison: Comparison) -> str:
    labels = [ref.label for ref in comparison.runs]
    ignored = f" (not compared: {', '.join(comparison.ignored)})" if comparison.ignored else ""
    if not comparison.diff:
        return f"<h2>Config diff</h2><p class=note>The runs' configs are equal{html.escape(ignored)}.</p>"
    rows = [{"key": row["key"], **{i: _value(row["values"][label]) if label in row["values"] else "(absent)"
                                   for i, label in enumerate(labels)}} for row in comparison.diff]
    cols: list[Column] = [("key", "key", text), *((label, i, text) for i, label in enumerate(labels))]
    return (f"<h2>Config diff</h2><p class=note>The keys of config.yaml whose values differ{html.escape(ignored)}."
            "</p>" + table(rows, cols))


def _eval(comparison: Comparison) -> str:
    if comparison.eval_dir is None:
        return ""
    tables = "".join(f"<h3>{html.escape(title)}</h3>" + _cells(*t) for title, t in comparison.eval_tables)
    return f"<h2>Evaluation: {html.escape(str(comparison.eval_dir))}</h2>{tables}"


def render_compare_html(comparison: Comparison, images: dict[str, bytes]) -> str:
    """The page of ``logicrl compare``: the runs, curves over steps and over training time, the config diff,
    the eval tables."""
    windows = sorted({c.window for by_run in comparison.curves.values() for c in by_run.values()})
    stamped = ", ".join(html.escape(label) for label in comparison.stamped)
    timing = (" Runs without time/step (" + stamped + "): wall-clock time since their first log line, "
              "validation, checkpoints and pauses included.") if stamped else ""
    note = ("<p class=note>Smoothed: trailing moving average over "
            f"{', '.join(map(str, windows))} point(s) (1: raw). Training time: the running sum of the trainer's "
            f"time/step (validation, checkpoints and pauses left out).{timing}</p>") if windows else ""
    curves = (image(images, "curves_step", "curves over steps") + image(images, "curves_time",
                                                                           "curves over training time")
              if images else "<p class=note>No run logged these metrics.</p>")
    return page("logicrl compare", _runs(comparison) + "<h2>Curves</h2>" + note + curves + _diff(comparison)
                + _eval(comparison))
