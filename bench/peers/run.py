"""Runs one peer drift detector over the car-loan data the way bench/detection_test.go
runs driftmon: the monitoring file in 5,000-row windows, each compared with the whole
reference file, the same eight columns with the same kinds. Writes one JSON document
(the `run` type of bench/detection_test.go) to --out.

    python run.py --tool evidently --out evidently.json   # Evidently DataDriftPreset
    python run.py --tool whylogs --out whylogs.json       # whylogs calculate_drift_scores

Each window is run twice: once timed (wall: time.perf_counter; CPU of the whole process:
time.process_time, which a busy machine disturbs less), once under tracemalloc for the
peak memory it traced above what was live before it (Python and NumPy allocations;
Arrow's own allocator is not traced, and the Parquet files are read before both passes).
The process's peak resident set (ru_maxrss) is reported as a whole.
"""

import argparse
import json
import resource
import sys
import time
import tracemalloc

import pandas as pd

NUMERIC = ["car_value", "debt_to_income_ratio", "driver_tenure", "loan_length", "y_pred_proba"]
CATEGORICAL = ["repaid_loan_on_prev_car", "salary_range", "size_of_downpayment"]
COLUMNS = NUMERIC + CATEGORICAL


def load(data_dir, name):
    df = pd.read_parquet(f"{data_dir}/{name}.parquet", columns=COLUMNS)
    for c in CATEGORICAL:
        # Booleans and strings alike as categories, as driftmon reads them.
        df[c] = df[c].astype(str)
    return df


class Evidently:
    """Evidently's DataDriftPreset with its defaults. With more than 1,000 reference
    rows it picks the normed Wasserstein distance (threshold 0.1) for numeric columns
    and the Jensen-Shannon distance (0.1) for categorical ones; a column drifts when its
    ValueDrift test fails."""

    def __init__(self):
        import evidently
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        self.version = evidently.__version__
        self.method = "DataDriftPreset defaults: normed Wasserstein (numeric), Jensen-Shannon (categorical), threshold 0.1"
        self._Dataset, self._Report, self._Preset = Dataset, Report, DataDriftPreset
        self._definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)

    def reference(self, df):
        # The dataset is a wrapper: Evidently computes the reference's statistics again
        # in every report.
        self._ref = self._Dataset.from_pandas(df, data_definition=self._definition)

    def window(self, df):
        cur = self._Dataset.from_pandas(df, data_definition=self._definition)
        snap = self._Report([self._Preset()], include_tests=True).run(reference_data=self._ref, current_data=cur)
        drifted = []
        for t in snap.dict()["tests"]:
            params = t["metric_config"]["params"]
            if params.get("type") == "evidently:metric_v2:ValueDrift" and t["status"] == "FAIL":
                drifted.append(params["column"])
        return sorted(drifted), []


class Whylogs:
    """whylogs' profiles and calculate_drift_scores with its defaults: KS on the KLL
    sketch for numeric columns, chi-square on frequent items for the others; p < 0.05 is
    DRIFT, 0.05–0.15 POSSIBLE_DRIFT (reported, not counted as a flag)."""

    def __init__(self):
        import whylogs
        from whylogs.viz.drift.column_drift_algorithms import calculate_drift_scores

        self.version = whylogs.__version__
        self.method = "calculate_drift_scores defaults: KS (numeric), chi-square (categorical), DRIFT at p < 0.05"
        self._why, self._scores = whylogs, calculate_drift_scores

    def reference(self, df):
        self._ref = self._why.log(pandas=df).view()

    def window(self, df):
        view = self._why.log(pandas=df).view()
        scores = self._scores(target_view=view, reference_view=self._ref, with_thresholds=True)
        drifted = sorted(c for c, s in scores.items() if s and s.get("drift_category") == "DRIFT")
        possible = sorted(c for c, s in scores.items() if s and s.get("drift_category") == "POSSIBLE_DRIFT")
        return drifted, possible


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", choices=["evidently", "whylogs"], required=True)
    ap.add_argument("--data", default="testdata/nannyml_car_loan")
    ap.add_argument("--window", type=int, default=5000)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    tool = {"evidently": Evidently, "whylogs": Whylogs}[args.tool]()
    ref = load(args.data, "reference")
    mon = load(args.data, "monitoring")
    windows = [(i, min(i + args.window, len(mon))) for i in range(0, len(mon), args.window)]

    # Warm up once (lazy imports, caches) so that the first window is not charged for it.
    t = time.perf_counter()
    tool.reference(ref)
    tool.window(mon.iloc[0 : args.window])
    warmup = time.perf_counter() - t

    t = time.perf_counter()
    tool.reference(ref)
    ref_seconds = time.perf_counter() - t

    out = []
    for first, end in windows:
        cur = mon.iloc[first:end]
        t, c = time.perf_counter(), time.process_time()
        drifted, possible = tool.window(cur)
        seconds, cpu = time.perf_counter() - t, time.process_time() - c
        out.append({"first": first, "end": end, "drifted": drifted, "possible": possible, "seconds": seconds, "cpu_seconds": cpu})

    tracemalloc.start()
    for w in out:
        cur = mon.iloc[w["first"] : w["end"]]
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        tool.window(cur)
        _, peak = tracemalloc.get_traced_memory()
        w["bytes"] = peak - base
    tracemalloc.stop()

    doc = {
        "tool": f"{args.tool} {tool.version}",
        "version": tool.version,
        "method": tool.method,
        # Evidently keeps no reference summary: wrapping the frame costs nothing and the
        # work is done in every window.
        "reference_seconds": ref_seconds if args.tool == "whylogs" else 0,
        "warmup_seconds": warmup,
        "memory_note": "peak bytes traced by tracemalloc during the window, above what was live before it",
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "python": sys.version.split()[0],
        "windows": out,
    }
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
