#!/usr/bin/env python3
"""Turns lab-bench.sh's raw measurements into the report: a Markdown table (also printed)
and a CSV, with medians per scenario, workload and variant, and the ratios vswitch /
kernel and vswitch / OVS; where the "ports" variant ran (vswitch's port layer with no
switch), a second table splits the gap to the kernel into port I/O and switch; where
a "vswitch-wN" variant ran (N workers) or a "vswitch-bpN" one (busy_poll_us = N), one
more sets it against vswitch's default.

Usage: report.py RAW.tsv META.tsv OUT.md OUT.csv
RAW lines:  scenario <TAB> variant <TAB> metric <TAB> value   (value "ERR" = failed run;
            metric "status" carries ok / why a variant did not run, "workers" how
            many workers the daemon said it started)
META lines: key <TAB> value   (date, cpu, cores, kernel, reps, tcp_t, ...)
"""

import collections
import csv
import statistics
import sys

SCENARIOS = {
    "l2": ("same host", "Linux bridge"),
    "overlay": ("VXLAN, 2 hosts", "kernel VXLAN + bridge"),
    "nat": ("NAT to outside", "kernel + iptables MASQUERADE"),
}
# metric -> (workload label, unit, higher is better)
METRICS = {
    "tcp1": ("TCP x1", "Gbit/s", True),
    "tcp4": ("TCP x4", "Gbit/s", True),
    "udp1400_kpps": ("UDP 1400 B", "kpps", True),
    "udp1400_gbps": ("UDP 1400 B", "Gbit/s", True),
    "rtt_us": ("ping RTT", "us", False),
}
VARIANTS = ["kernel", "ovs", "ovs-tso", "ports", "vswitch"]
# The main table's columns; "ports" and the "vswitch-wN" / "vswitch-bpN" variants have
# tables of their own.
MAIN = ["kernel", "ovs", "ovs-tso", "vswitch"]


def load(raw):
    vals = collections.defaultdict(list)
    status = {}
    for line in open(raw):
        s, v, m, x = line.rstrip("\n").split("\t")
        if m == "status":
            # One per repetition: a failure is kept (and reported) over a later "ok".
            if status.get((s, v), "ok") == "ok":
                status[(s, v)] = x
        else:
            vals[(s, v, m)].append(x)
    return vals, status


def median(xs):
    nums = []
    for x in xs:
        try:
            nums.append(float(x))
        except ValueError:
            pass
    return (statistics.median(nums) if nums else None), len(nums), len(xs)


def fmt(x, unit):
    if x is None:
        return "-"
    return f"{x:.0f}" if unit in ("us", "kpps") else f"{x:.2f}"


def cell(cells, v, unit):
    """Variant v's median as shown in a table, with how many runs succeeded if not all."""
    med, ok, n = cells[v]
    text = fmt(med, unit)
    return text + f" ({ok}/{n} ok)" if n and ok < n else text


def ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else "-"


def spread(xs, unit):
    """'lowest-highest' of a variant's runs, for telling a difference from the noise."""
    nums = [float(x) for x in xs if x not in ("ERR", "")]
    return f"{fmt(min(nums), unit)}-{fmt(max(nums), unit)}" if nums else "-"


def variant_tables(rows, vals, others):
    """vswitch as configured by default against each vswitch-wN variant (N workers) and
    each vswitch-bpN variant (busy polling), per scenario and workload; for workers also
    the four-stream sums over the scenarios both ran: what that default is chosen by."""
    def said(variant):
        xs = sorted({x for (_, v, m), runs in vals.items()
                     if v == variant and m == "workers" for x in runs})
        return "/".join(xs) if xs else "?"
    lines = []
    for other in others:
        both = [(s, m, c) for s, m, c in rows if c["vswitch"][0] is not None
                and c[other][0] is not None]
        if not both:
            continue
        if other.startswith("vswitch-bp"):
            n = other[len("vswitch-bp"):]
            intro = (
                f"Busy polling: **vswitch** as by default (a worker sleeps when its ports "
                f"are idle) against **{other}**, the same with `[datapath] busy_poll_us = "
                f"{n}` (a worker keeps polling for {n} us after the last frame before it "
                "sleeps, so it occupies its CPU while frames come more often than that), "
                "alternating in the same run")
            column, short, sums = f"vswitch busy_poll_us = {n}", "busy", None
        else:
            n = other[len("vswitch-w"):]
            intro = (
                f"Workers: **vswitch** with its default number of workers (the daemon said: "
                f"{said('vswitch')}) against **{other}**, the same with `--workers {n}` (it "
                f"said: {said(other)}), alternating in the same run")
            column, short, sums = f"vswitch --workers {n}", n, [0.0, 0.0]
        lines += [
            "",
            intro + "; each cell is the median and, in brackets, the lowest and highest run.",
            "",
            f"| scenario | workload | vswitch (default) | {column} | default / {short} |",
            "|---|---|---|---|---|",
        ]
        for s, m, cells in both:
            label, unit, _ = METRICS[m]
            shown = [f"{cell(cells, v, unit)} ({spread(vals[(s, v, m)], unit)})"
                     for v in ("vswitch", other)]
            d, w = cells["vswitch"][0], cells[other][0]
            lines.append(f"| {s} | {label} {unit} | {shown[0]} | {shown[1]} | {ratio(d, w)} |")
            if m == "tcp4" and sums:
                sums[0] += d
                sums[1] += w
        if sums and sums[1]:
            lines += ["", f"TCP x4, sum over the scenarios: default {sums[0]:.2f}, "
                      f"`--workers {n}` {sums[1]:.2f} Gbit/s "
                      f"({(sums[0] / sums[1] - 1) * 100:+.1f} % for the default)."]
    return lines


def main():
    raw, meta_path, out_md, out_csv = sys.argv[1:5]
    meta = dict(line.rstrip("\n").split("\t", 1) for line in open(meta_path) if "\t" in line)
    vals, status = load(raw)
    # vswitch with a set number of workers ("vswitch-w1", ...) or busy polling
    # ("vswitch-bp10000"), in the order first seen
    others = list(dict.fromkeys(v for (_, v) in status
                                if v.startswith(("vswitch-w", "vswitch-bp"))))
    variants = VARIANTS + others
    scenarios = [s for s in SCENARIOS if any(k[0] == s for k in status)]

    rows = []  # (scenario, metric, {variant: (median, ok, n)})
    for s in scenarios:
        for m in METRICS:
            cells = {v: median(vals.get((s, v, m), [])) for v in variants}
            if any(c[2] for c in cells.values()):
                rows.append((s, m, cells))

    with open(out_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["scenario", "reference", "workload", "unit", "higher_is_better",
                    "variant", "median", "runs_ok", "runs"])
        for s, m, cells in rows:
            label, unit, up = METRICS[m]
            for v in variants:
                med, ok, n = cells[v]
                if n:
                    w.writerow([s, SCENARIOS[s][1], label, unit, int(up), v,
                                "" if med is None else f"{med:.4g}", ok, n])

    lines = [
        "# vswitch lab bench",
        "",
        f"- date: {meta.get('date', '?')}; CPU: {meta.get('cpu', '?')}, "
        f"{meta.get('cores', '?')} cores; kernel {meta.get('kernel', '?')}",
        f"- vswitch {meta.get('vswitch', '?')}; Open vSwitch {meta.get('ovs', '-')} "
        f"(userspace datapath, `datapath_type=netdev`); iperf3 {meta.get('iperf3', '?')}",
        f"- method: median of {meta.get('reps', '?')} runs per figure (the runs alternate "
        f"between the variants, each on a fresh setup); TCP `iperf3 -t "
        f"{meta.get('tcp_t', '?')}` (receiver side), one stream and `-P 4`; UDP `iperf3 -u "
        f"-b 0 -l 1400 -t {meta.get('udp_t', '?')}` (packets received per second); ping "
        f"`-c {meta.get('pings', '?')} -i 0.01` average. Client, server and switch share the "
        "machine's cores; nothing is pinned.",
        "- variants: **kernel** = the scenario's kernel setup (column header of each block); "
        "**OVS** = Open vSwitch userspace datapath, container veths with `tx off` (without "
        "userspace TSO OVS cannot forward partial-checksum super-frames); **OVS+TSO** = the "
        "same with `other_config:userspace-tso-enable=true` and offloads on; **vswitch** = "
        "this project. Ratios are vswitch / other: above 1x is better for throughput, "
        "below 1x is better for RTT. `-` = not run or failed (see below).",
    ]
    if meta.get("note"):
        lines += [f"- **note: {meta['note']}**"]
    lines += [
        "",
        "| scenario | reference | workload | kernel | OVS | OVS+TSO | vswitch "
        "| vswitch / kernel | vswitch / OVS | vswitch / OVS+TSO |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s, m, cells in rows:
        label, unit, _ = METRICS[m]
        med = {v: cells[v][0] for v in variants}
        lines.append(
            f"| {s} ({SCENARIOS[s][0]}) | {SCENARIOS[s][1]} | {label} {unit} | "
            + " | ".join(cell(cells, v, unit) for v in MAIN)
            + f" | {ratio(med['vswitch'], med['kernel'])} | {ratio(med['vswitch'], med['ovs'])}"
            f" | {ratio(med['vswitch'], med['ovs-tso'])} |")
    split = [(s, m, cells) for s, m, cells in rows if cells["ports"][2]]
    if split:
        lines += [
            "",
            "Where the gap to the kernel is: **ports** = vswitch's AF_PACKET ports with no "
            "switch, one thread forwarding every frame from one veth to the other "
            "(`vswitch/examples/port_forward.rs`); in the overlay, the same ports with "
            "vswitch's split and coalescing between one container veth and one VXLAN peer "
            "on each host (`vswitch/examples/vtep_forward.rs`). kernel -> ports is the cost "
            "of any userspace hop here (kernel copies per frame, a thread wakeup per "
            "direction on each host, and in the overlay the split and coalescing); "
            "ports -> vswitch is the switch itself (worker loop and pipeline).",
            "",
            "| scenario | workload | kernel | ports | vswitch | ports / kernel "
            "| vswitch / ports | vswitch / kernel |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for s, m, cells in split:
            label, unit, _ = METRICS[m]
            shown = " | ".join(cell(cells, x, unit) for x in ("kernel", "ports", "vswitch"))
            k, p, v = (cells[x][0] for x in ("kernel", "ports", "vswitch"))
            lines.append(
                f"| {s} | {label} {unit} | {shown} | {ratio(p, k)} | {ratio(v, p)} | {ratio(v, k)} |")
    lines += variant_tables(rows, vals, others)
    # "ports" exists for l2 and overlay only: its absence elsewhere is not worth a line.
    notes = [f"- {s} / {v}: {why}" for (s, v), why in sorted(status.items())
             if why != "ok" and not (v == "ports" and why.startswith("not available"))]
    if notes:
        lines += ["", "Variants without figures:", ""] + notes
    lines += ["", "![benchmark chart](latest.svg)", ""]
    text = "\n".join(lines)
    with open(out_md, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
