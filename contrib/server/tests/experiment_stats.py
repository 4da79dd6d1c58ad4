"""An experiment's results recomputed from the raw events with statsmodels
and scipy, independently of the server: the reference tests/experiments.rs
compares `GET /v1/admin/experiments/{flag}` with.

    python experiment_stats.py EVENTS.jsonl SPEC.json
    python experiment_stats.py --check EVENTS.jsonl RESULTS.json

EVENTS.jsonl: what `flagyard admin events --all` prints (one `{"id",
"receivedAt", "event"}` per line). SPEC.json: the experiment as the server
answers it (`flag`, `metrics`, `control`, `start`, `stop`) plus `weights`
(the configured split, variant -> weight); prints one JSON object.

With --check, RESULTS.json is what `flagyard experiment results FLAG --json`
prints: the experiment and split are read from it, every figure in it is
compared with the reference, and the script prints how many agree (to a
relative 1e-7) or each that differs, exiting 1 then.
"""

import json
import sys

import numpy as np
from scipy import stats
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)


def main():
    args = sys.argv[1:]
    check = args[:1] == ["--check"]
    if check:
        args = args[1:]
    events_path, spec_path = args[0], args[1]
    with open(spec_path) as f:
        spec = json.load(f)
    results = None
    if check:
        results = spec
        spec = dict(results["experiment"])
        spec["control"] = results["control"]
        spec["weights"] = results["sampleRatio"]["expected"]
    out = reference(events_path, spec)
    if not check:
        print(json.dumps(out))
        return
    agree, differ = compare(results, out)
    for line in differ:
        print(line)
    print(f"{agree} figures agree with statsmodels and scipy, {len(differ)} differ")
    sys.exit(1 if differ else 0)


def compare(results, ref):
    """Every figure of the server's results against the reference."""
    agree, differ = 0, []

    def same(what, got, want):
        nonlocal agree
        if want is None:
            return
        if got is not None and abs(got - want) <= 1e-7 * max(abs(want), 1e-3):
            agree += 1
        else:
            differ.append(f"{what}: server {got}, reference {want}")

    same("excluded", results["excluded"], ref["excluded"])
    for metric in results["metrics"]:
        for v in metric["variants"]:
            want = ref["metrics"][metric["name"]].get(v["variant"])
            if want is None:
                continue
            at = f'{metric["name"]}/{v["variant"]}/'
            for field in ("users", "converted", "total", "mean"):
                same(at + field, v.get(field), want.get(field))
            for field in ("rateCi", "meanCi"):
                for i in (0, 1):
                    if want.get(field) is not None:
                        same(f"{at}{field}[{i}]", (v.get(field) or [None, None])[i], want[field][i])
            versus, mine = want.get("versus"), v.get("versusControl") or {}
            if versus is None:
                continue
            for field in ("absolute", "relative", "pValue"):
                same(at + field, mine.get(field), versus.get(field))
            for field in ("absoluteCi", "relativeCi"):
                for i in (0, 1):
                    if versus.get(field) is not None:
                        same(f"{at}{field}[{i}]", (mine.get(field) or [None, None])[i], versus[field][i])
    srm = results["sampleRatio"]
    same("sampleRatio/chiSquare", srm.get("chiSquare"), ref["sampleRatio"]["chiSquare"])
    same("sampleRatio/pValue", srm.get("pValue"), ref["sampleRatio"]["pValue"])
    return agree, differ


def reference(events_path, spec):
    flag, control = spec["flag"], spec["control"]
    start, stop = spec["start"], spec.get("stop")
    metrics = {m["name"]: m["kind"] for m in spec["metrics"]}

    def covers(at):
        return at >= start and (stop is None or at < stop)

    first = {}  # key -> (at, variant)
    seen = {}  # key -> set of variants
    tracks = {}  # key -> [(name, at, value)]
    with open(events_path) as f:
        for line in f:
            event = json.loads(line)["event"]
            key = event.get("targetingKey")
            if key is None or not covers(event["at"]):
                continue
            if event["kind"] == "exposure" and event["flag"] == flag and "variant" in event:
                seen.setdefault(key, set()).add(event["variant"])
                if key not in first or event["at"] < first[key][0]:
                    first[key] = (event["at"], event["variant"])
            elif event["kind"] == "tracking" and event["name"] in metrics:
                tracks.setdefault(key, []).append(
                    (event["name"], event["at"], event.get("value"))
                )

    users = {}  # variant -> [key]
    excluded = 0
    for key, (_, variant) in first.items():
        if len(seen[key]) > 1:
            excluded += 1
        else:
            users.setdefault(variant, []).append(key)

    def per_user(key, metric):
        at0 = first[key][0]
        counted = [t for t in tracks.get(key, []) if t[0] == metric and t[1] >= at0]
        return bool(counted), sum((t[2] or 0.0) for t in counted)

    out = {"excluded": excluded, "variants": {}, "metrics": {}}
    for variant, keys in users.items():
        out["variants"][variant] = len(keys)
    for metric, kind in metrics.items():
        result = {}
        values = {}
        for variant, keys in users.items():
            parts = [per_user(k, metric) for k in keys]
            converted = sum(1 for c, _ in parts if c)
            n = len(keys)
            lo, hi = proportion_confint(converted, n, alpha=0.05, method="wilson")
            entry = {"users": n, "converted": converted, "rateCi": [lo, hi]}
            if kind == "value":
                xs = np.array([v for _, v in parts])
                values[variant] = xs
                entry["total"] = float(xs.sum())
                entry["mean"] = float(xs.mean())
                ci = stats.t.interval(0.95, n - 1, loc=xs.mean(), scale=stats.sem(xs))
                entry["meanCi"] = [float(ci[0]), float(ci[1])]
            result[variant] = entry
        c0, n0 = result[control]["converted"], result[control]["users"]
        for variant, entry in result.items():
            if variant == control:
                continue
            c1, n1 = entry["converted"], entry["users"]
            if kind == "conversion":
                _, p = proportions_ztest([c1, c0], [n1, n0])
                diff = confint_proportions_2indep(c1, n1, c0, n0, method="wald", compare="diff")
                ratio = confint_proportions_2indep(c1, n1, c0, n0, method="log", compare="ratio")
                entry["versus"] = {
                    "absolute": c1 / n1 - c0 / n0,
                    "absoluteCi": [float(diff[0]), float(diff[1])],
                    "relative": (c1 / n1) / (c0 / n0) - 1,
                    "relativeCi": [float(ratio[0]) - 1, float(ratio[1]) - 1],
                    "pValue": float(p),
                }
            else:
                a, b = values[variant], values[control]
                t = stats.ttest_ind(a, b, equal_var=False)
                ci = t.confidence_interval(0.95)
                entry["versus"] = {
                    "absolute": float(a.mean() - b.mean()),
                    "absoluteCi": [float(ci.low), float(ci.high)],
                    "relative": float(a.mean() / b.mean() - 1),
                    "pValue": float(t.pvalue),
                }
        out["metrics"][metric] = result

    weights = spec["weights"]
    total = sum(weights.values())
    names = sorted(weights)
    observed = [len(users.get(v, [])) for v in names]
    expected = [sum(observed) * weights[v] / total for v in names]
    chi = stats.chisquare(observed, expected)
    out["sampleRatio"] = {"chiSquare": float(chi.statistic), "pValue": float(chi.pvalue)}
    return out


if __name__ == "__main__":
    main()
