"""Gather the headline figures of every results file into ``benchmarks/results/summary.md``.

    python benchmarks/summarize.py            # write summary.md from results/*.json
    python benchmarks/summarize.py --rebuild  # also rewrite each suite's markdown from its JSON

Reads every ``results/*.json`` that holds a list of measurement records (``suite``, ``case``,
``implementation``, ``metric``, ``value``, ...), whichever script wrote it.
"""

import argparse
import json

import _common as C

OURS = ("AutoencoderTransformer", "SparseAutoencoder", "BernoulliRBMStack", "VAETransformer")


def load():
    files = {}
    for path in sorted(C.RESULTS.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            data = data.get("records", data.get("results", []))
        if isinstance(data, list) and data and isinstance(data[0], dict) and "metric" in data[0]:
            files[path.stem] = data
    return files


def speed_section(name, records):
    train = [r for r in records if r["metric"] == "train_samples_per_s"]
    first = records[0]
    out = [f"### Speed ({name}: {first['machine']}, torch threads {first.get('torch_threads')}, "
           f"load average {first.get('load_average_1min')})\n"]
    rows = []
    for case in dict.fromkeys(r["case"] for r in train):
        rs = {r["implementation"]: r for r in train if r["case"] == case}
        ours_name = next((n for n in ("AutoencoderTransformer", "BernoulliRBMStack") if n in rs), None)
        if ours_name is None:
            continue
        mine = rs[ours_name]["value"]
        for impl, r in rs.items():
            if impl == ours_name or impl in OURS:
                continue
            rows.append([case, f"{r['rows_timed']} x {r['epochs']}", ours_name, C.fmt(mine), impl,
                         C.fmt(r["value"]), f"**{mine / r['value']:.2f}x**"])
    if rows:
        out.append(C.md_table(["case", "rows x epochs", "ours", "samples/s", "anchor", "samples/s",
                               "ours / anchor"], rows))
    mem = [r for r in records if r["metric"] == "peak_host_rss_mb"]
    traced = {(r["case"], r["method"]): r["value"] for r in records
              if r["metric"] == "peak_traced_numpy_mb"}
    if mem:
        out.append("\nPeak memory of batched inference on a memory-mapped float32 input, each in a "
                   "fresh process (anonymous RSS above the level at entry, and NumPy allocations "
                   "traced by tracemalloc; both include the returned array):\n\n")
        out.append(C.md_table(["case", "method", "output MB", "peak RSS MB", "peak traced MB"],
                              [[r["case"], r["method"], C.fmt(r["output_mb"]), C.fmt(r["value"]),
                                C.fmt(traced.get((r["case"], r["method"])))] for r in mem]))
    return "\n".join(out) + "\n"


def outliers_section(name, records):
    if "_part_" in name:  # a piece of a run: its merged report is summarised instead
        return ""
    if all("split" in r for r in records):  # bench_outliers' multi-split protocol
        return outliers_splits_section(name, records)
    auc = [r for r in records if r["metric"] == "roc_auc"]
    if not auc:
        return ""
    fit = {(r["dataset"], r["implementation"]): r["value"] for r in records if r["metric"] == "fit_seconds"}
    sets = list(dict.fromkeys(r["dataset"] for r in auc))
    rows = []
    for impl in dict.fromkeys(r["implementation"] for r in auc):
        rs = [r for r in auc if r["implementation"] == impl]
        vals = [r["value"] for r in rs if r["value"] is not None]
        refs = [r["reference"] for r in rs if r.get("reference") is not None]
        total = sum(fit.get((r["dataset"], impl), 0.0) for r in rs)
        rows.append([impl, f"{sum(vals) / len(vals):.3f} ({len(vals)}/{len(rs)})" if vals else "—",
                     f"{sum(refs) / len(refs):.3f} ({len(refs)})" if refs else "",
                     C.fmt(total, 3)])
    out = [f"### Outliers ({name}: {len(sets)} ODDS sets, PyOD's protocol, defaults)\n",
           C.md_table(["implementation", "mean ROC-AUC (sets)", "PyOD 2024 published (sets)",
                       "total fit s"], rows)]
    means = {}
    for impl in dict.fromkeys(r["implementation"] for r in auc):
        rs = [r for r in auc if r["implementation"] == impl]
        if all(r["value"] is not None for r in rs):
            means[impl] = (sum(r["value"] for r in rs) / len(rs),
                           sum(fit.get((r["dataset"], impl), 0.0) for r in rs))
    ours = {k: v for k, v in means.items() if k in OURS}
    if ours and "pyod AutoEncoder" in means:
        best = max(ours, key=lambda k: ours[k][0])
        (m, t), (pm, pt) = ours[best], means["pyod AutoEncoder"]
        out.append(f"\nBest of ours at defaults: **{best}**, mean ROC-AUC {m:.3f} against PyOD's "
                   f"AutoEncoder {pm:.3f} in the same run ({'above' if m > pm else 'not above'}), "
                   f"total fit time {t:.1f} s against {pt:.1f} s ({t / pt:.2f} of it).\n")
    return "\n".join(out) + "\n"


def outliers_splits_section(name, records):
    import bench_outliers

    res = bench_outliers.summary(records)
    order = sorted(res["methods"], key=lambda m: res["rows"][m]["mean_rank"])
    rows = [[m, f"{res['rows'][m]['roc_auc']:.3f}", f"{res['rows'][m]['average_precision']:.3f}",
             f"{res['rows'][m]['mean_rank']:.2f}", C.fmt(res["rows"][m]["fit_seconds"], 3)]
            for m in order]
    out = [f"### Outliers ({name}: {len(res['datasets'])} ODDS sets x splits {res['splits']}, "
           "defaults)\n",
           C.md_table(["method", "mean ROC-AUC", "mean AP", "mean rank", "total fit s"], rows)]
    return "\n".join(out) + "\n"


def quality_section(name, records):
    rows = [[r["case"], r["implementation"], r["metric"], C.fmt(r["value"], 4),
             C.fmt(r.get("reference"), 4) if r.get("reference") is not None else ""]
            for r in records if r.get("suite") == "quality"]
    if not rows:
        return ""
    return f"### Quality ({name})\n\n" + C.md_table(
        ["case", "implementation", "metric", "value", "published"], rows) + "\n"


def rebuild(files):
    import bench_outliers
    import bench_speed

    for name, records in files.items():
        ctx = {k: records[0].get(k) for k in ("device", "machine", "versions", "torch_threads",
                                               "load_average_1min", "timestamp")}
        flags = f"--device {ctx['device']}" + (" --quick" if name.endswith("_quick") else "")
        if ctx.get("torch_threads") == 1:
            flags += " --threads 1"
        if name.startswith("speed_memory_"):
            text = bench_speed.markdown(records, ctx, "python benchmarks/bench_speed.py --skip-targets "
                                        f"--skip-mnist --skip-tabular {flags}")
        elif name.startswith("speed_targets_"):
            text = bench_speed.markdown(records, ctx, "python benchmarks/bench_speed.py --skip-mnist "
                                        f"--skip-tabular --skip-memory {flags}")
        elif name.startswith("speed_"):
            text = bench_speed.markdown(records, ctx, f"python benchmarks/run.py --suite speed {flags}")
        elif name.startswith("outliers_"):
            text = bench_outliers.markdown(records, ctx,
                                           f"python benchmarks/run.py --suite outliers {flags}")
        else:
            continue
        (C.RESULTS / f"{name}.md").write_text(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args(argv)
    files = load()
    if args.rebuild:
        rebuild(files)
    text = ("# Benchmark summary\n\nHeadline figures of every results file in this folder; each "
            "suite's own markdown file has the full tables and the exact command.\n\n")
    for name, records in files.items():
        suite = records[0].get("suite")
        if suite == "speed":
            text += speed_section(name, records)
        elif suite == "outliers":
            text += outliers_section(name, records)
        else:
            text += quality_section(name, records)
    C.RESULTS.mkdir(parents=True, exist_ok=True)
    (C.RESULTS / "summary.md").write_text(text)
    print(f"wrote {C.RESULTS / 'summary.md'}")


if __name__ == "__main__":
    main()
