#!/usr/bin/env python3
"""A model service's inference log: one JSON event per Kafka message, with confluent-kafka.

    python3 producer_json.py 127.0.0.1:9092 credit-inferences 1000

driftmon reads it with config/example.yaml's stream (format: json, the default):

    event_time: ts
    model: model
    model_version: model_version
    features:  {car_value: {type: numeric}, ..., salary_range: {type: categorical}, ...}
    predictions: {y_pred_proba: {type: numeric}, y_pred: {type: categorical}}

Feature paths default to features.<name> and prediction paths to prediction.<name>.
"""

import json
import random
import sys


import credit_events


def main() -> int:
    args = credit_events.parse_args("Send credit-model inference events as JSON.")
    sender = credit_events.Sender(args.brokers, args.topic, {"compression.type": "zstd"})
    rng = random.Random()
    for _ in range(args.count):
        event = credit_events.make_event(rng, credit_events.now())
        event["ts"] = credit_events.rfc3339(event["ts"])
        value = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
        # Keyed by event id: events spread over the partitions, and a label for the
        # event (labels.event_id) can be keyed alike.
        sender.send(value, key=event["event_id"])
    return sender.finish(f"of {args.count} events", f"sent {args.count} JSON events to {args.topic}")


if __name__ == "__main__":
    sys.exit(main())
