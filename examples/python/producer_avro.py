#!/usr/bin/env python3
"""A model service's inference log in Avro, Confluent wire format (magic byte, schema id,
Avro binary), with the schema registered in a schema registry by confluent-kafka's
AvroSerializer.

    python3 producer_avro.py 127.0.0.1:9092 credit-inferences 1000 --registry http://127.0.0.1:8081

driftmon reads it with the same stream as the JSON producer's plus:

    format: avro
    schema_registry: {urls: ["http://127.0.0.1:8081"]}

driftmon fetches each schema id once (GET /schemas/ids/{id}) and follows the same dotted
paths through the records: features.car_value, prediction.y_pred_proba. The timestamp is
a timestamp-millis long; booleans and ints read as categories "true"/"false", "0"/"1".
"""

import random
import sys

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

import credit_events

SCHEMA = """
{
  "type": "record", "name": "InferenceEvent", "namespace": "com.example.credit",
  "fields": [
    {"name": "event_id", "type": "string"},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "model", "type": "string"},
    {"name": "model_version", "type": "string"},
    {"name": "features", "type": {"type": "record", "name": "Features", "fields": [
      {"name": "car_value", "type": "double"},
      {"name": "debt_to_income_ratio", "type": "double"},
      {"name": "loan_length", "type": "int"},
      {"name": "driver_tenure", "type": "double"},
      {"name": "salary_range", "type": "string"},
      {"name": "size_of_downpayment", "type": "string"},
      {"name": "repaid_loan_on_prev_car", "type": "boolean"}
    ]}},
    {"name": "prediction", "type": {"type": "record", "name": "Prediction", "fields": [
      {"name": "y_pred_proba", "type": "double"},
      {"name": "y_pred", "type": "int"}
    ]}}
  ]
}
"""


def main() -> int:
    args = credit_events.parse_args(
        "Send credit-model inference events as Confluent Avro.",
        lambda p: p.add_argument("--registry", required=True, help="schema registry URL"),
    )
    registry = SchemaRegistryClient({"url": args.registry})
    # Registers SCHEMA under the subject <topic>-value on first use (TopicNameStrategy).
    serialize = AvroSerializer(registry, SCHEMA, conf={"auto.register.schemas": True})
    ctx = SerializationContext(args.topic, MessageField.VALUE)
    sender = credit_events.Sender(args.brokers, args.topic, {"compression.type": "zstd"})
    rng = random.Random()
    for _ in range(args.count):
        event = credit_events.make_event(rng, credit_events.now())
        value = serialize(event, ctx)  # fastavro writes the aware datetime as epoch millis
        sender.send(value, key=event["event_id"])
    return sender.finish(f"of {args.count} events", f"sent {args.count} Avro events to {args.topic}")


if __name__ == "__main__":
    sys.exit(main())
