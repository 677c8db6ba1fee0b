#!/usr/bin/env python3
"""Draws lab-bench.sh's results as an SVG bar chart, with nothing but the standard library.

One panel per workload (TCP x1, TCP x4, UDP 1400 B, ping RTT); in each panel one group of
bars per scenario (the kernel's setup for that scenario, OVS, OVS with userspace TSO,
vswitch), each bar labelled with its value; a legend; and a caption saying on what
machine and when the figures were taken, since they mean nothing without it.

Usage: chart.py LATEST.csv META.tsv OUT.svg
"""

import csv
import math
import sys
from xml.sax.saxutils import escape

PANELS = [  # (workload, unit, title)
    ("TCP x1", "Gbit/s", "TCP, 1 stream (Gbit/s, higher is better)"),
    ("TCP x4", "Gbit/s", "TCP, 4 streams (Gbit/s, higher is better)"),
    ("UDP 1400 B", "kpps", "UDP 1400 B received (kpps, higher is better)"),
    ("ping RTT", "us", "ping round trip (\u00b5s, lower is better)"),
]
VARIANTS = [  # (variant, legend label, colour)
    ("kernel", "Linux kernel (bridge / VXLAN / MASQUERADE)", "#8c8c8c"),
    ("ovs", "Open vSwitch userspace (netdev)", "#4c78a8"),
    ("ovs-tso", "Open vSwitch userspace + TSO", "#9ecae9"),
    ("vswitch", "vswitch", "#f58518"),
]
SCENARIO_LABEL = {
    "l2": ("same host", "vs Linux bridge"),
    "overlay": ("VXLAN, 2 hosts", "vs kernel VXLAN"),
    "nat": ("NAT egress", "vs iptables NAT"),
}
FONT = "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\""
PANEL_W, PANEL_H = 560, 345
MARGIN_L, MARGIN_T, PLOT_H = 62, 44, 210


def nice_ticks(top):
    """Axis ticks from 0 to at least `top` in steps of 1, 2 or 5 times a power of ten."""
    if top <= 0:
        return [0, 1]
    raw = top / 5
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    n = math.ceil(top / step - 1e-9)
    return [i * step for i in range(n + 1)]


def tick_label(t, step):
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return f"{t:.{decimals}f}"


def fmt(x, unit):
    if unit in ("us", "kpps") or x >= 100:
        return f"{x:.0f}"
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def text(x, y, s, size=12, anchor="middle", weight="normal", fill="#222"):
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}" fill="{fill}" {FONT}>{escape(s)}</text>')


def panel(ox, oy, workload, unit, title, data):
    """One panel at (ox, oy); data: {scenario: {variant: value or None}}."""
    out = [text(ox + PANEL_W / 2, oy + 22, title, 14, weight="bold")]
    scenarios = [s for s in SCENARIO_LABEL if s in data] + [s for s in data if s not in SCENARIO_LABEL]
    x0, y0 = ox + MARGIN_L, oy + MARGIN_T
    plot_w = PANEL_W - MARGIN_L - 16
    if not scenarios:
        return out + [text(ox + PANEL_W / 2, y0 + PLOT_H / 2, "no data", 13, fill="#888")]
    vals = [v for s in scenarios for v in data[s].values() if v is not None]
    ticks = nice_ticks(max(vals) if vals else 1)
    top = ticks[-1]
    for t in ticks:
        y = y0 + PLOT_H - PLOT_H * t / top
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + plot_w}" y2="{y:.1f}" stroke="#e3e3e3"/>')
        out.append(text(x0 - 6, y + 4, tick_label(t, ticks[1]), 11, "end", fill="#555"))
    out.append(f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y0 + PLOT_H}" stroke="#444"/>')
    out.append(f'<line x1="{x0}" y1="{y0 + PLOT_H}" x2="{x0 + plot_w}" y2="{y0 + PLOT_H}" stroke="#444"/>')
    out.append(f'<text transform="translate({ox + 16},{y0 + PLOT_H / 2}) rotate(-90)" font-size="12" '
               f'text-anchor="middle" fill="#333" {FONT}>{escape(unit.replace("us", chr(181) + "s"))}</text>')
    group_w = plot_w / len(scenarios)
    bar_w = min(34, (group_w - 24) / len(VARIANTS))
    for gi, s in enumerate(scenarios):
        gx = x0 + gi * group_w + (group_w - bar_w * len(VARIANTS)) / 2
        for vi, (v, _, colour) in enumerate(VARIANTS):
            bx = gx + vi * bar_w
            val = data[s].get(v)
            if val is None:
                out.append(text(bx + bar_w / 2, y0 + PLOT_H - 4, "n/a", 9, fill="#999"))
                continue
            h = PLOT_H * val / top
            out.append(f'<rect x="{bx + 1:.1f}" y="{y0 + PLOT_H - h:.1f}" width="{bar_w - 2:.1f}" '
                       f'height="{h:.1f}" fill="{colour}"><title>{escape(f"{s} {v}: {val} {unit}")}</title></rect>')
            out.append(text(bx + bar_w / 2, y0 + PLOT_H - h - 4, fmt(val, unit), 10, fill="#333"))
        name, ref = SCENARIO_LABEL.get(s, (s, ""))
        cx = x0 + gi * group_w + group_w / 2
        out.append(text(cx, y0 + PLOT_H + 18, name, 12, weight="bold"))
        out.append(text(cx, y0 + PLOT_H + 33, ref, 11, fill="#555"))
        for li, line in enumerate(ratios(data[s], higher_is_better=unit != "us")):
            out.append(text(cx, y0 + PLOT_H + 49 + 13 * li, line, 10, fill="#b35806"))
    return out


def ratios(cells, higher_is_better):
    """Lines 'vswitch = 0.75x kernel', '1.20x best OVS' for one group; OVS is the better of
    its two variants."""
    vs = cells.get("vswitch")
    if not vs:
        return []
    parts = []
    if cells.get("kernel"):
        parts.append(f"{vs / cells['kernel']:.2f}x kernel")
    ovs = [cells[v] for v in ("ovs", "ovs-tso") if cells.get(v)]
    if ovs:
        best = max(ovs) if higher_is_better else min(ovs)
        parts.append(f"{vs / best:.2f}x best OVS")
    return ["vswitch = " + parts[0]] + parts[1:] if parts else []


def main():
    csv_path, meta_path, out_path = sys.argv[1:4]
    meta = dict(line.rstrip("\n").split("\t", 1) for line in open(meta_path) if "\t" in line)
    data = {}  # workload/unit -> scenario -> variant -> value
    for r in csv.DictReader(open(csv_path)):
        cell = data.setdefault((r["workload"], r["unit"]), {}).setdefault(r["scenario"], {})
        cell[r["variant"]] = float(r["median"]) if r["median"] else None

    cols = 2
    rows = math.ceil(len(PANELS) / cols)
    width = cols * PANEL_W + 20
    legend_y = 62
    top = legend_y + 26
    height = top + rows * PANEL_H + (82 if meta.get("note") else 64)
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           text(width / 2, 30, "vswitch against the Linux kernel and Open vSwitch, same machine, same run",
                18, weight="bold"),
           text(width / 2, 50, f"iperf3 and ping between network namespaces; median of "
                f"{meta.get('reps', '?')} runs per bar", 12, fill="#555")]
    # legend, centred
    item_w = [24 + 7 * len(label) for _, label, _ in VARIANTS]
    lx = (width - sum(item_w) - 18 * (len(VARIANTS) - 1)) / 2
    for (v, label, colour), w in zip(VARIANTS, item_w):
        svg.append(f'<rect x="{lx:.1f}" y="{legend_y}" width="14" height="14" fill="{colour}"/>')
        svg.append(text(lx + 20, legend_y + 12, label, 12, "start"))
        lx += w + 18
    for i, (workload, unit, title) in enumerate(PANELS):
        ox = 10 + (i % cols) * PANEL_W
        oy = top + (i // cols) * PANEL_H
        svg += panel(ox, oy, workload, unit, title, data.get((workload, unit), {}))
    caption = (f"Machine: {meta.get('cpu', '?')}, {meta.get('cores', '?')} cores, kernel "
               f"{meta.get('kernel', '?')}; {meta.get('date', '?')}. Client, server and switch share "
               "the cores.")
    caption2 = (f"vswitch {meta.get('vswitch', '?')}; Open vSwitch {meta.get('ovs', '-')} "
                f"(datapath_type=netdev); iperf3 {meta.get('iperf3', '?')}, TCP -t {meta.get('tcp_t', '?')} s. "
                "n/a = not run or failed (see latest.md).")
    if meta.get("note"):
        svg.append(text(width / 2, height - 52, "Note: " + meta["note"], 12, weight="bold", fill="#c0392b"))
    svg.append(text(width / 2, height - 34, caption, 12, fill="#333"))
    svg.append(text(width / 2, height - 16, caption2, 11, fill="#555"))
    svg.append("</svg>")
    with open(out_path, "w") as f:
        f.write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
