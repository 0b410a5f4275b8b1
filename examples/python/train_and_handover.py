#!/usr/bin/env python3
"""The end of a training job: write what the model was trained on, with the model's own
predictions on it, as Parquet; summarise it into a driftmon reference profile with
`driftmon baseline`; and hand the profile over, so that the new version's windows are
judged against the data it was trained on:

- by driftmon's API, for one model version: PUT
  /api/v1/models/{model}/versions/{version}/reference with the API's token (the
  environment's DRIFTMON_API_TOKEN). driftmon keeps it (in its state file, or in a
  cluster in the cluster topic) and judges the version's next windows against it:

    DRIFTMON_API_TOKEN=... python3 train_and_handover.py --driftmon ./driftmon \
        -c driftmon.yaml --api http://driftmon:8080 --model car-loan --version 3.3.0

- or as a file where the config looks for it: streams[].reference.per_version
  ("refs/{model}/{version}.profile", read when the version first appears) or
  streams[].reference.baseline (read when driftmon starts):

    python3 train_and_handover.py --driftmon ./driftmon -c driftmon.yaml \
        --out /shared/driftmon/refs/car-loan/3.3.0.profile

driftmon reads columns named like the stream's features and predictions (flat columns:
Parquet struct columns are skipped). Here the training data is drawn at random, as the
producers' events are; in a real job it is the frame the model was fitted on.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request

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


def hand_over(api: str, model: str, version: str, stream: str, profile: str) -> dict:
    """PUTs the profile to driftmon's API as the reference of (model, version) and returns
    driftmon's answer: what the version is judged against now."""
    url = "{}/api/v1/models/{}/versions/{}/reference".format(
        api.rstrip("/"), urllib.parse.quote(model, safe=""), urllib.parse.quote(version, safe=""))
    if stream:
        url += "?stream=" + urllib.parse.quote(stream, safe="")
    with open(profile, "rb") as f:
        body = f.read()
    req = urllib.request.Request(url, data=body, method="PUT", headers={
        "Authorization": "Bearer " + os.environ.get("DRIFTMON_API_TOKEN", ""),
        "Content-Type": "application/octet-stream",
    })
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as e:
        # driftmon says why in {"error": "..."}: a wrong token, a profile of other
        # features than the stream's, an unknown stream.
        detail = e.read().decode(errors="replace").strip()
        raise SystemExit(f"driftmon refused the reference ({e.code}): {detail}") from None


def main() -> int:
    p = argparse.ArgumentParser(description="Build and hand over a driftmon reference profile.")
    p.add_argument("--driftmon", default="driftmon", help="the driftmon binary")
    p.add_argument("-c", dest="config", default="driftmon.yaml", help="driftmon's config")
    p.add_argument("--stream", help="the stream the model's events are on (default: the config's only one)")
    p.add_argument("--rows", type=int, default=20000)
    p.add_argument("--out", help="where driftmon's config expects the profile (.profile)")
    p.add_argument("--api", help="driftmon's HTTP address (http://driftmon:8080): hand the profile over by its API")
    p.add_argument("--model", help="the model the profile is the reference of (with --api)")
    p.add_argument("--version", help="the model version the profile is the reference of (with --api)")
    args = p.parse_args()
    if not args.out and not args.api:
        p.error("say where the profile goes: --out, --api, or both")
    if args.api and not (args.model and args.version):
        p.error("--api needs --model and --version")

    with tempfile.TemporaryDirectory() as tmp:
        train = os.path.join(tmp, "train.parquet")
        pq.write_table(training_frame(args.rows), train)
        # Written next to the target and renamed over it, so that driftmon never reads
        # half a profile.
        target = args.out or os.path.join(tmp, "reference.profile")
        partial = target + ".partial.profile"
        cmd = [args.driftmon, "baseline", "-c", args.config, "--input", train, "-o", partial]
        if args.stream:
            cmd += ["--stream", args.stream]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"driftmon baseline failed ({done.returncode}):\n{done.stderr}", file=sys.stderr)
            return 1
        os.replace(partial, target)
        if args.out:
            # driftmon reads reference.per_version when the version first appears, and
            # reference.baseline when it starts.
            print(f"reference profile of {args.rows} training rows at {args.out}")
        if args.api:
            answer = hand_over(args.api, args.model, args.version, args.stream, target)
            print(f"handed over: {answer['reference']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
