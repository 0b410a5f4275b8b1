"""Inference events of a car-loan credit model, shaped as driftmon's config/example.yaml
reads them: event_id, ts (RFC 3339, UTC), model, model_version, and the model's inputs
under "features" and outputs under "prediction".

The three producers share it so that they send the same events in three encodings. In a
real service these values come from the request and the model; here they are drawn at
random, like the demo's traffic (internal/demo).
"""

import math
import random
import sys
import uuid
from datetime import datetime, timezone

MODEL = "car-loan"
MODEL_VERSION = "3.2.0"

SALARY_RANGES = ["0 - 20K €", "20K - 40K €", "40K - 60K €", "60K+ €"]
DOWNPAYMENTS = ["0%", "10%", "20%", "30%+"]


def make_event(rng: random.Random, now: datetime) -> dict:
    """Returns one inference event as a dict, its time now (timezone-aware, UTC)."""
    car_value = round(math.exp(10.2 + 0.45 * rng.gauss(0, 1)))
    loan_length = 12 + 6 * rng.randrange(9)
    dti = rng.random() * 0.9
    tenure = rng.expovariate(0.25)
    repaid_prev = rng.random() < 0.5
    z = -1.5 + 0.00004 * car_value + 0.02 * loan_length + 1.2 * dti - 0.1 * tenure
    if repaid_prev:
        z -= 0.5
    proba = 1 / (1 + math.exp(-z))
    return {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "ts": now,
        "model": MODEL,
        "model_version": MODEL_VERSION,
        "features": {
            "car_value": float(car_value),
            "debt_to_income_ratio": dti,
            "loan_length": loan_length,
            "driver_tenure": tenure,
            "salary_range": rng.choices(SALARY_RANGES, [0.20, 0.35, 0.35, 0.10])[0],
            "size_of_downpayment": rng.choice(DOWNPAYMENTS),
            "repaid_loan_on_prev_car": repaid_prev,
        },
        "prediction": {
            "y_pred_proba": round(proba, 4),
            "y_pred": int(proba >= 0.5),
        },
    }


def rfc3339(t: datetime) -> str:
    """Formats an aware datetime as RFC 3339 in UTC with milliseconds: 2026-12-05T21:30:00.123Z."""
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now() -> datetime:
    return datetime.now(timezone.utc)


class Sender:
    """Sends messages to a topic with a confluent-kafka Producer, waiting when its local
    queue is full, and records every message the broker did not acknowledge.

    The producer is idempotent (a retry after a lost acknowledgement does not log an
    event twice), waits for all in-sync replicas, and batches for 20 ms; conf adds to or
    overrides that."""

    def __init__(self, brokers: str, topic: str, conf=None):
        from confluent_kafka import Producer

        self.producer = Producer({
            "bootstrap.servers": brokers,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            **(conf or {}),
        })
        self.topic, self.failures = topic, []

    def _on_delivery(self, err, msg):
        if err is not None:
            self.failures.append(err)

    def send(self, value: bytes, key=None):
        while True:
            try:
                self.producer.produce(self.topic, key=key, value=value, on_delivery=self._on_delivery)
                break
            except BufferError:  # the local queue is full: wait for deliveries
                self.producer.poll(0.1)
        self.producer.poll(0)

    def finish(self, of: str, done: str) -> int:
        """Waits for every delivery and returns the exit status: 0 with done on stdout
        when everything was delivered, else 1 with what failed on stderr (of: "of 1000
        events")."""
        left = self.producer.flush(30)
        if left or self.failures:
            print(f"cannot send {len(self.failures) + left} {of}: {self.failures[:1]}", file=sys.stderr)
            return 1
        print(done)
        return 0


def parse_args(description: str, extra=None):
    """The producers' command line: brokers, topic, count (default 1000)."""
    import argparse

    p = argparse.ArgumentParser(description=description)
    p.add_argument("brokers", help="bootstrap servers, host:port[,host:port...]")
    p.add_argument("topic", help="topic driftmon's stream reads")
    p.add_argument("count", type=int, nargs="?", default=1000, help="events to send (default 1000)")
    if extra:
        extra(p)
    return p.parse_args()
