#!/usr/bin/env python3
"""A receiver of driftmon's retraining webhook: it verifies each request's Standard
Webhooks signature with the standardwebhooks package, then hands the drift to whatever
starts a retraining (here: it prints one JSON line).

    WEBHOOK_SECRET=whsec_... python3 webhook_receiver.py --port 8000

driftmon's side (config alerting.webhooks[]):

    - name: retrain
      url: http://this-host:8000/
      secret_file: /etc/driftmon/retrain-webhook-secret   # the same whsec_... secret

Answers: 204 to a verified drift (also to a webhook-id seen before: driftmon retries
until it gets a 2xx, so a retry must not start a second training), 401 when the
signature, the headers or the timestamp (5 minutes either way) are wrong, 400 when the
verified body is not a drift payload. driftmon does not retry a 4xx other than 408/429.
"""

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

MAX_BODY = 1 << 20


def start_retraining(payload: dict) -> None:
    """Replace with the call that starts your training job (Airflow, Argo, a CI pipeline)."""
    drifted = [c["feature"] for c in payload["drifted"]]
    print(json.dumps({
        "retrain": payload["model"],
        "model_version": payload["model_version"],
        "webhook_id": payload["id"],
        "window": payload["window"],
        "drifted": drifted,
    }), flush=True)


def handler(webhook: Webhook):
    seen = set()  # webhook-ids already handled; keep them in a database in production

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self.answer(413, "body too large")
            body = self.rfile.read(length)  # the raw bytes: the signature covers them exactly
            try:
                payload = webhook.verify(body, dict(self.headers.items()))
            except WebhookVerificationError as e:
                return self.answer(401, f"cannot verify webhook: {e}")
            except ValueError as e:  # verified, but not JSON
                return self.answer(400, f"cannot decode body: {e}")
            if not isinstance(payload, dict) or payload.get("type") != "driftmon.drift":
                return self.answer(400, "not a driftmon.drift payload")
            webhook_id = self.headers["webhook-id"]
            if webhook_id not in seen:
                seen.add(webhook_id)
                start_retraining(payload)
            self.answer(204)

        def answer(self, code: int, why: str = "") -> None:
            if why:
                print(f"{code}: {why}", file=sys.stderr, flush=True)
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):  # one line per delivery is printed above instead
            pass

    return Handler


def main() -> int:
    p = argparse.ArgumentParser(description="Verify driftmon's signed retraining webhooks.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="0: any free port")
    p.add_argument("--secret-file", help="file holding the whsec_ secret (default: $WEBHOOK_SECRET)")
    args = p.parse_args()
    if args.secret_file:
        with open(args.secret_file) as f:
            secret = f.read().strip()
    else:
        secret = os.environ.get("WEBHOOK_SECRET", "")
    if not secret:
        print("no secret: set WEBHOOK_SECRET or --secret-file", file=sys.stderr)
        return 2
    server = ThreadingHTTPServer((args.host, args.port), handler(Webhook(secret)))
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
