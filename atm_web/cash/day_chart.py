"""The end-of-day chart: transactions per local hour, stacked by teller, drawn as SVG on the server (no script, so
within the app's CSP; inline in the page, it prints with it)."""
from markupsafe import Markup, escape

# Colours told apart by people with the commoner colour-vision deficiencies (Okabe-Ito), each >= 3:1 on white.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#785EF0", "#A6761D", "#555555", "#E69F00"]
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 260, 40, 40, 16


def chart(per_hour: dict[str, list[int]], names: dict[str, str]) -> Markup:
    """per_hour: actor -> 24 counts; names: actor -> what the legend shows."""
    actors = list(per_hour)
    totals = [sum(per_hour[a][h] for a in actors) for h in range(24)]
    peak = max([*totals, 1])
    step = max(1, -(-peak // 4))  # four gridlines, whole numbers
    top = step * 4
    plot_w, plot_h = WIDTH - LEFT - 10, HEIGHT - BOTTOM - TOP
    bar_w = plot_w / 24
    summary = ", ".join(f"{names[a]} {sum(per_hour[a])}" for a in actors) or "no transactions"
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT + 24 * ((len(actors) + 3) // 4)}" role="img" '
             f'aria-labelledby="chart-title chart-desc" xmlns="http://www.w3.org/2000/svg">',
             '<title id="chart-title">Transactions per hour by teller</title>',
             f'<desc id="chart-desc">Transactions per hour of the business day, stacked by teller: '
             f'{escape(summary)}.</desc>']
    for i in range(5):
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#c5ced8"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{step * i}</text>')
    for hour in range(24):
        x = LEFT + hour * bar_w
        y = TOP + plot_h
        for index, actor in enumerate(actors):
            count = per_hour[actor][hour]
            if not count:
                continue
            h = plot_h * count / top
            y -= h
            parts.append(f'<rect x="{x + 2:.1f}" y="{y:.1f}" width="{bar_w - 4:.1f}" height="{h:.1f}" '
                         f'fill="{PALETTE[index % len(PALETTE)]}"><title>{escape(names[actor])}, '
                         f'{hour:02d}:00: {count}</title></rect>')
        if hour % 3 == 0:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" '
                         f'font-size="11">{hour:02d}:00</text>')
    for index, actor in enumerate(actors):
        x, y = LEFT + (index % 4) * 170, HEIGHT + 24 * (index // 4) - 4
        parts.append(f'<rect x="{x}" y="{y - 10}" width="12" height="12" fill="{PALETTE[index % len(PALETTE)]}"/>'
                     f'<text x="{x + 18}" y="{y}" font-size="12">{escape(names[actor])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
