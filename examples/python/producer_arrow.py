#!/usr/bin/env python3
"""A batch scorer's inference log: each Kafka message one Arrow IPC stream (a schema and
one record batch of many events), with pyarrow.

    python3 producer_arrow.py 127.0.0.1:9092 credit-inferences 10000 --rows 1000

driftmon reads it with the same stream as the JSON producer's plus `format: arrow_ipc`.
The columns follow the JSON event: features and prediction are struct columns, which
driftmon follows by the same dotted paths (features.car_value); flat columns named
car_value, or "features.car_value", work too. ts is a timestamp column in UTC.
Arrow IPC is the cheapest format for driftmon to decode (bench/README.md), so a
producer that already holds its events in batches should send them this way.
"""

import random
import sys

import pyarrow as pa

import credit_events

SCHEMA = pa.schema([
    ("event_id", pa.string()),
    ("ts", pa.timestamp("ms", tz="UTC")),
    ("model", pa.string()),
    ("model_version", pa.string()),
    ("features", pa.struct([
        ("car_value", pa.float64()),
        ("debt_to_income_ratio", pa.float64()),
        ("loan_length", pa.int32()),
        ("driver_tenure", pa.float64()),
        ("salary_range", pa.dictionary(pa.int8(), pa.string())),
        ("size_of_downpayment", pa.string()),
        ("repaid_loan_on_prev_car", pa.bool_()),
    ])),
    ("prediction", pa.struct([
        ("y_pred_proba", pa.float64()),
        ("y_pred", pa.int8()),
    ])),
])


def encode(events: list) -> bytes:
    """Returns events as one Arrow IPC stream: the schema, one record batch, end of stream."""
    batch = pa.RecordBatch.from_pylist(events, schema=SCHEMA)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, SCHEMA) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def main() -> int:
    args = credit_events.parse_args(
        "Send credit-model inference events as Arrow IPC batches.",
        lambda p: p.add_argument("--rows", type=int, default=500, help="events per message (default 500)"),
    )
    sender = credit_events.Sender(args.brokers, args.topic, {
        # driftmon's default max_message_bytes is 1 MiB; keep --rows well under it.
        "message.max.bytes": 1 << 20,
    })
    rng = random.Random()
    sent = messages = 0
    while sent < args.count:
        n = min(args.rows, args.count - sent)
        events = [credit_events.make_event(rng, credit_events.now()) for _ in range(n)]
        sender.send(encode(events))
        sent += n
        messages += 1
    return sender.finish(f"of {messages} messages", f"sent {sent} events in {messages} Arrow IPC messages to {args.topic}")


if __name__ == "__main__":
    sys.exit(main())
