"""A report's plots as PNG files (matplotlib, the Agg renderer): funnel, curves, roll rates, arms, hours.

CPU work: callers run `write_plots` in a thread or a process, never on the event loop. Figures are
made with `matplotlib.figure.Figure` and an explicit Agg canvas, not pyplot: pyplot keeps every
figure in a global registry (a leak unless closed, and not safe from several threads), a bare
figure is freed with its last reference. A plot without data draws "no data yet" (it never raises).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dialer.core.balance import BUCKETS, OVER
from reports.metrics import BY_KEY
from reports.report import ALL, Cell, Report

NO_DATA = "no data yet"
MAX_FUNNEL_GROUPS = 7  # "all" and the six buckets; more side by side are unreadable: "all" alone
BUCKET_NAMES = [name for _, name in BUCKETS] + [OVER]
DPI = 100
Draw = Callable[[Figure, Report], str | None]  # draws into the figure, or says why there was nothing


def write_plots(report: Report, directory: Path) -> list[Path]:
    """funnel.png, curves.png, roll_rates.png, arms.png and hours.png in `directory` (made if
    missing); returns their paths in that order."""
    directory.mkdir(parents=True, exist_ok=True)
    return [_save(directory / f"{name}.png", title, draw, report) for name, title, draw in _PLOTS]


def _save(path: Path, title: str, draw: Draw, report: Report) -> Path:
    figure = Figure(figsize=(9, 5.5), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)  # the renderer, chosen here and not by a global backend setting
    figure.suptitle(f"{report.campaign}: {title}")
    empty = draw(figure, report)
    if empty is not None:
        figure.clear()
        figure.suptitle(f"{report.campaign}: {title}")
        figure.text(0.5, 0.5, empty, ha="center", va="center", fontsize=20, color="grey")
    figure.savefig(path, format="png")
    return path


# ------------------------------------------------------------------ funnel


FUNNEL_STAGES = ("attempted", "contacted", "right party", "promised", "kept")


def _funnel(figure: Figure, report: Report) -> str | None:
    bars = [b for b in report.funnel if b.attempted or b.promised]
    if len(bars) > MAX_FUNNEL_GROUPS:
        bars = [b for b in bars if b.group == ALL]
    if not bars:
        return NO_DATA
    ax = figure.subplots()
    height = 0.8 / len(bars)
    for i, b in enumerate(bars):
        values = (b.attempted, b.contacted, b.right_party, b.promised, b.kept)
        ys = [stage + i * height for stage in range(len(values))]
        drawn = ax.barh(ys, values, height=height, label=b.group)
        ax.bar_label(drawn, fmt="{:,.0f}", padding=2, fontsize=8)
    ax.set_yticks([s + 0.4 - height / 2 for s in range(len(FUNNEL_STAGES))], FUNNEL_STAGES)
    ax.invert_yaxis()
    ax.set_xlabel("accounts (kept: promises)")
    ax.legend(title=report.by or None)
    return None


# ------------------------------------------------------------------ curves


def _curves(figure: Figure, report: Report) -> str | None:
    points = [p for p in report.curves if p.late]
    if not points:
        return NO_DATA
    cure, recovery = figure.subplots(1, 2, sharex=True)
    by_currency: dict[str, list[tuple[int, float, float | None]]] = defaultdict(list)
    for p in sorted(points, key=lambda p: p.days_past_due):
        share = p.recovered_minor / p.overdue_minor if p.overdue_minor else None
        by_currency[p.currency].append((p.days_past_due, p.cured / p.late, share))
    for currency, line in by_currency.items():
        cure.plot([d for d, _, _ in line], [c for _, c, _ in line], label=currency)
        kept = [(d, r) for d, _, r in line if r is not None]
        recovery.plot([d for d, _ in kept], [r for _, r in kept], label=currency)
    _axes(cure, "cured (share of accounts that became late)", "days past due")
    _axes(recovery, "recovered (share of the amount overdue)", "days past due")
    recovery.legend(title="currency")
    return None


def _axes(ax: Axes, ylabel: str, xlabel: str) -> None:
    ax.set_ylabel(ylabel)
    ax.set_xlabel(xlabel)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)


# ------------------------------------------------------------------ roll rates


def _roll(figure: Figure, report: Report) -> str | None:
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for r in report.roll_matrix:
        counts[r.from_bucket, r.to_bucket] += r.accounts
    names = [n for n in BUCKET_NAMES if any(n in key for key in counts)]
    if not names or not any(counts.values()):
        return NO_DATA
    totals = {f: sum(n for (ff, _), n in counts.items() if ff == f) for f in names}
    shares = [[counts[f, t] / totals[f] if totals[f] else 0.0 for t in names] for f in names]
    ax = figure.subplots()
    image = ax.imshow(shares, cmap="Reds", vmin=0, vmax=1)
    for i, f in enumerate(names):
        for j, t in enumerate(names):
            if counts[f, t]:
                colour = "white" if shares[i][j] > 0.6 else "black"
                ax.text(j, i, f"{shares[i][j]:.0%}\n{counts[f, t]}", ha="center", va="center", color=colour)
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("bucket at the month's end")
    ax.set_ylabel("bucket at the month's start")
    months = sorted({r.month for r in report.roll_matrix})
    ax.set_title(f"share of accounts, months {months[0]:%Y-%m} to {months[-1]:%Y-%m} pooled", fontsize=10)
    figure.colorbar(image, ax=ax, label="share of the row's accounts")
    return None


# ------------------------------------------------------------------ arms


def _arms(figure: Figure, report: Report) -> str | None:
    if report.arms is None or not report.arms.rates:
        return f"{NO_DATA}: the campaign has no champion/challenger arms"
    cells = report.arms.rates
    metrics = list(dict.fromkeys(c.metric for c in cells))
    arms = list(dict.fromkeys(c.group for c in cells))
    ax = figure.subplots()
    width = 0.8 / len(arms)
    for i, arm in enumerate(arms):
        mine = {c.metric: c for c in cells if c.group == arm}
        xs = [m + i * width for m in range(len(metrics))]
        values = [_value(mine.get(k)) for k in metrics]
        errors = [[_below(mine.get(k)) for k in metrics], [_above(mine.get(k)) for k in metrics]]
        champion = arm == report.arms.champion and arm != "champion"
        label = f"{arm} (champion)" if champion else arm
        ax.bar(xs, values, width=width, yerr=errors, capsize=3, label=label)
    ax.set_xticks([m + 0.4 - width / 2 for m in range(len(metrics))], [BY_KEY[k].title for k in metrics])
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of assigned accounts (Wilson 95 %)")
    ax.set_title(
        "intention to treat: every assigned account counts; no error bar: too few for an interval",
        fontsize=10,
    )
    ax.legend()
    return None


def _value(cell: Cell | None) -> float:
    return 0.0 if cell is None or cell.value is None else min(cell.value, 1.0)


def _below(cell: Cell | None) -> float:
    return 0.0 if cell is None or cell.low is None else _value(cell) - cell.low


def _above(cell: Cell | None) -> float:
    return 0.0 if cell is None or cell.high is None else cell.high - _value(cell)


# ------------------------------------------------------------------ hours


HOUR_SERIES = ("calls", "contacted", "right_party", "texts")


def _hours(figure: Figure, report: Report) -> str | None:
    by_hour = {h.hour: h for h in report.hours}
    if not any(h.calls or h.texts for h in report.hours):
        return NO_DATA
    ax = figure.subplots()
    width = 0.8 / len(HOUR_SERIES)
    for i, name in enumerate(HOUR_SERIES):
        values: Sequence[int] = [getattr(by_hour[h], name) if h in by_hour else 0 for h in range(24)]
        ax.bar(
            [h + i * width - 0.4 + width / 2 for h in range(24)],
            values,
            width=width,
            label=name.replace("_", " "),
        )
    ax.set_xticks(range(24))
    ax.set_xlabel("hour of the day, the borrower's local time")
    ax.set_ylabel("calls and texts")
    ax.legend()
    return None


_PLOTS: tuple[tuple[str, str, Draw], ...] = (
    ("funnel", "attempted → contacted → right party → promise → kept", _funnel),
    ("curves", "cure and recovery by days past due", _curves),
    ("roll_rates", "roll rates, bucket to bucket, month to month", _roll),
    ("arms", "arms side by side", _arms),
    ("hours", "contacts by local hour", _hours),
)
