#!/usr/bin/env python3
"""The end of a training job: write what the model was trained on, with the model's own
predictions on it, as Parquet; summarise it into a driftmon reference profile with
`driftmon baseline`; and hand the profile over to where driftmon's config names it
(streams[].reference.baseline), so that live windows are compared with the data of the
model that is serving.

    python3 train_and_handover.py --driftmon ./driftmon -c driftmon.yaml \
        --out /shared/driftmon/car-loan-3.2.0.profile

driftmon reads columns named like the stream's features and predictions (flat columns:
Parquet struct columns are skipped). Here the training data is drawn at random, as the
producers' events are; in a real job it is the frame the model was fitted on.
"""

import argparse
import os
import random
import subprocess
import sys
import tempfile

import pyarrow as pa
import pyarrow.parquet as pq

import credit_events


def training_frame(rows: int) -> pa.Table:
    """The training data and the model's predictions on it, one flat column per field."""
    rng = random.Random(1)
    events = [credit_events.make_event(rng, credit_events.now()) for _ in range(rows)]
    columns = {"ts": pa.array([e["ts"] for e in events], pa.timestamp("ms", tz="UTC"))}
    for part in ("features", "prediction"):
        for name in events[0][part]:
            columns[name] = pa.array([e[part][name] for e in events])
    return pa.table(columns)


def main() -> int:
    p = argparse.ArgumentParser(description="Build and hand over a driftmon reference profile.")
    p.add_argument("--driftmon", default="driftmon", help="the driftmon binary")
    p.add_argument("-c", dest="config", default="driftmon.yaml", help="driftmon's config")
    p.add_argument("--stream", help="the stream the model's events are on (default: the config's only one)")
    p.add_argument("--rows", type=int, default=20000)
    p.add_argument("--out", required=True, help="where driftmon's config expects the profile (.profile)")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        train = os.path.join(tmp, "train.parquet")
        pq.write_table(training_frame(args.rows), train)
        # Written next to the target and renamed over it, so that driftmon never reads
        # half a profile.
        partial = args.out + ".partial.profile"
        cmd = [args.driftmon, "baseline", "-c", args.config, "--input", train, "-o", partial]
        if args.stream:
            cmd += ["--stream", args.stream]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"driftmon baseline failed ({done.returncode}):\n{done.stderr}", file=sys.stderr)
            return 1
        os.replace(partial, args.out)
    print(f"reference profile of {args.rows} training rows at {args.out}")
    # driftmon reads reference.baseline when it starts: restart it (or roll the
    # Deployment) when a new model version goes live with this profile.
    return 0


if __name__ == "__main__":
    sys.exit(main())
