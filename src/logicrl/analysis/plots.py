"""PNG plots of a run (matplotlib, Agg canvas, no pyplot state): each function returns PNG bytes or None.

Every figure is built with ``matplotlib.figure.Figure`` (which renders through the Agg canvas), so no
display, global backend or open-figure registry is involved and figures are freed with their object.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from matplotlib import colormaps
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from logicrl.analysis.aggregate import Bin
from logicrl.analysis.run import Metrics
from logicrl.analysis.tables import Row, share_series
from logicrl.analysis.trend import Trend

if TYPE_CHECKING:
    from logicrl.analysis.compare import Curve

# (panel title, [(kind, metric key, legend label)]); a panel is drawn when any of its keys was logged.
CURVE_PANELS: tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...] = (
    ("reward", (("train", "reward/mean", "train (±std)"), ("val", "val/reward", "validation"))),
    ("accuracy", (("train", "acc", "train"), ("val", "val/acc", "validation"))),
    ("format ok", (("train", "format_ok", "train"), ("val", "val/format_ok", "validation"))),
    ("answer status (share)", tuple(("train", f"answer/{s}", s) for s in ("correct", "wrong", "unparseable",
                                                                        "missing"))),
    ("response length (tokens)", (("train", "length/mean", "mean"), ("train", "length/max", "max"),
                                  ("val", "val/length", "validation mean"))),
    ("share cut at the length cap", (("train", "length/clipped", "train"),)),
    ("KL to the reference", (("train", "kl", "train"),)),
    ("entropy", (("train", "entropy", "train"),)),
)


def run_colors(count: int) -> list[str]:
    """``count`` distinct colours, one per run: matplotlib's ten (``C0``–``C9``) up to 10 runs, tab20 up to 20,
    then evenly spaced along turbo (never a colour twice, as ``C{i % 10}`` would from the 11th run on)."""
    if count <= 10:
        return [f"C{i}" for i in range(count)]
    if count <= 20:
        return [to_hex(colormaps["tab20"](i)) for i in range(count)]
    return [to_hex(colormaps["turbo"](i / (count - 1))) for i in range(count)]


def to_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average over up to ``window`` points (the first points average fewer)."""
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v - (values[i - window] if i >= window else 0.0)
        out.append(acc / min(i + 1, window))
    return out


def auto_window(points: int) -> int:
    """The report's smoothing window: 1 (raw) below 20 points, then max(5, points // 20): a 50-step run of
    32 rollouts a step is too noisy step by step to show when learning starts."""
    return max(5, points // 20) if points >= 20 else 1


def _plot_series(ax, xs: list[float], ys: list[float], label: str, color: str | None = None,
                 window: int | None = None) -> None:
    """Raw line; when smoothed (``window`` > 1, default `auto_window`), a faint raw line plus the trailing
    moving average."""
    window = auto_window(len(ys)) if window is None else window
    if window > 1:
        (line,) = ax.plot(xs, ys, alpha=0.25, linewidth=0.8, color=color)
        ax.plot(xs, smooth(ys, window), color=line.get_color(), label=f"{label} (smoothed)")
    else:
        ax.plot(xs, ys, marker="o" if len(ys) < 30 else None, markersize=3, label=label, color=color)


def panel_figure(panels: int) -> tuple[Figure, list]:
    """A figure of ``panels`` axes, 2 columns (3 above 4 panels), filled row by row."""
    cols = 3 if panels > 4 else 2
    rows = -(-panels // cols)
    fig = Figure(figsize=(5 * cols, 3.4 * rows))
    return fig, [fig.add_subplot(rows, cols, i + 1) for i in range(panels)]


def curves_png(metrics: Metrics) -> bytes | None:
    """Training curves: one panel per group of logged metrics (train and validation together)."""
    panels = [(title, [s for s in series if metrics.series(s[1], s[0])[1]]) for title, series in CURVE_PANELS]
    panels = [(title, series) for title, series in panels if series]
    if not panels:
        return None
    fig, axes = panel_figure(len(panels))
    for ax, (title, series) in zip(axes, panels):
        for kind, key, label in series:
            xs, ys = metrics.series(key, kind)
            _plot_series(ax, xs, ys, label)
            if key == "reward/mean":
                _, std = metrics.series("reward/std")
                if len(std) == len(ys):
                    low, high = [m - s for m, s in zip(ys, std)], [m + s for m, s in zip(ys, std)]
                    ax.fill_between(xs, low, high, alpha=0.15)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return to_png(fig)


def val_people_png(metrics: Metrics, people: list[int]) -> bytes | None:
    """Validation accuracy per number of people over training."""
    if not people:
        return None
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    for n in people:
        xs, ys = metrics.series(f"val/acc/{n}ppl", "val")
        ax.plot(xs, ys, marker="o", markersize=3, label=f"{n} people")
    ax.set(title="validation accuracy by number of people", xlabel="step", ylabel="accuracy",
           ylim=(-0.02, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return to_png(fig)


def shares_png(bins: list[Bin], kind: str, names: list[str], title: str,
               trends: dict[str, Trend] | None = None) -> bytes | None:
    """Per-bin share of responses with each feature; dashed lines mark "aha" steps of sudden rises."""
    if not bins:
        return None
    fig = Figure(figsize=(8, 4.2))
    ax = fig.add_subplot()
    xs = [b.x for b in bins]
    for name in names:
        ys = share_series(bins, kind, name)
        color = ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=name)[0].get_color()
        trend = (trends or {}).get(name)
        if trend is not None and trend.step is not None:
            ax.axvline(trend.step, color=color, linestyle="--", alpha=0.7)
    ax.set(title=title, xlabel="step", ylabel="share of responses", ylim=(-0.02, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return to_png(fig)


def with_without_png(rows: list[Row], name_key: str, title: str) -> bytes | None:
    """Mean reward of responses with vs without each feature (bars), labelled with the counts."""
    if not any(row["n_with"] + row["n_without"] for row in rows):
        return None
    fig = Figure(figsize=(max(6, 0.9 * len(rows) + 2), 4))
    ax = fig.add_subplot()
    positions = range(len(rows))
    for offset, side, color in ((-0.2, "with", "tab:blue"), (0.2, "without", "tab:gray")):
        heights = [row[f"reward_{side}"] or 0.0 for row in rows]
        bars = ax.bar([p + offset for p in positions], heights, width=0.4, color=color, label=side)
        ax.bar_label(bars, labels=[f"n={row[f'n_{side}']}" for row in rows], fontsize=6)
    ax.set_xticks(list(positions), [str(row[name_key]) for row in rows], rotation=30, ha="right")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set(title=title, ylabel="mean reward")
    ax.legend(fontsize=7)
    return to_png(fig)


def mixing_png(bins: list[Bin]) -> bytes | None:
    """Share of responses that mix scripts, and the mean non-Latin unit share, per bin."""
    if not bins:
        return None
    fig = Figure(figsize=(8, 4))
    ax = fig.add_subplot()
    xs = [b.x for b in bins]
    _plot_series(ax, xs, share_series(bins, "mixed"), "responses with non-Latin script")
    mean_share = [b.mixing_sum / b.all.n if b.all.n else 0.0 for b in bins]
    _plot_series(ax, xs, mean_share, "mean non-Latin unit share")
    ax.set(title="language mixing", xlabel="step", ylabel="share", ylim=(-0.02, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return to_png(fig)


def length_png(rows: list[Row]) -> bytes | None:
    """Left: mean length (all, solved, unsolved) and accuracy over steps. Right: accuracy vs length."""
    if not rows:
        return None
    fig = Figure(figsize=(12, 4.2))
    ax, scatter_ax = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    xs = [(row["first_step"] + row["last_step"]) / 2 for row in rows]
    marker = "o" if len(rows) < 30 else None  # a few bins (one, after a 1-step run) are seen as points
    for key, label in (("length", "all"), ("length_solved", "solved"), ("length_unsolved", "not solved")):
        points = [(x, row[key]) for x, row in zip(xs, rows) if row[key] is not None]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker=marker, markersize=3, label=f"length, {label}")
    ax.set(title="response length and accuracy", xlabel="step", ylabel="mean tokens")
    twin = ax.twinx()
    twin.plot(xs, [row["acc"] for row in rows], color="black", linestyle=":", marker=marker, markersize=3,
              label="accuracy")
    twin.set(ylabel="accuracy", ylim=(-0.02, 1.02))
    ax.legend(fontsize=7, loc="upper left")
    twin.legend(fontsize=7, loc="upper right")
    dots = scatter_ax.scatter([row["length"] for row in rows], [row["acc"] for row in rows], c=xs,
                              cmap="viridis", s=14)
    fig.colorbar(dots, ax=scatter_ax, label="step")
    scatter_ax.set(title="accuracy vs mean length (one dot per bin)", xlabel="mean tokens", ylabel="accuracy")
    scatter_ax.grid(alpha=0.3)
    fig.tight_layout()
    return to_png(fig)


def time_unit(seconds: float) -> tuple[str, float]:
    """(unit, seconds per unit) that keeps an axis up to ``seconds`` readable."""
    if seconds >= 7200:
        return "h", 3600.0
    return ("min", 60.0) if seconds >= 120 else ("s", 1.0)


def compare_curves_png(curves: dict[str, dict[str, Curve]], colors: dict[str, str], axis: str) -> bytes | None:
    """One panel per metric, one colour per run (raw, and smoothed over ``curve.window`` points as the report
    smooths), over ``axis`` "step" or "time" (training time; points without a known time are left out)."""
    if not curves:
        return None
    longest = max((s for by_run in curves.values() for c in by_run.values() for s in c.seconds if s is not None),
                  default=0.0)
    unit, per_unit = time_unit(longest)
    fig, axes = panel_figure(len(curves))
    for ax, (title, by_run) in zip(axes, curves.items()):
        for label, c in by_run.items():
            if axis == "step":
                xs, ys = list(c.steps), c.values
            else:
                points = [(s / per_unit, v) for s, v in zip(c.seconds, c.values) if s is not None]
                xs, ys = [x for x, _ in points], [y for _, y in points]
            if ys:
                _plot_series(ax, xs, ys, label, color=colors[label], window=c.window)
        ax.set(title=title, xlabel="step" if axis == "step" else f"training time ({unit})")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return to_png(fig)
