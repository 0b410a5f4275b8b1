"""Writes the Arrow IPC stream fixtures of arrowipc_test.go with pyarrow, so that the
decoder is tested on streams from another implementation than the Go one.

    python gen_pyarrow.py   # in this directory, with pyarrow installed
"""
import datetime as dt

import pyarrow as pa
import pyarrow.ipc as ipc

UTC = dt.timezone.utc


def write(name, batches, **options):
    with open(name, "wb") as f:
        with ipc.new_stream(f, batches[0].schema, options=ipc.IpcWriteOptions(**options)) as w:
            for b in batches:
                w.write_batch(b)


features = pa.struct([("car_value", pa.float64()), ("salary_range", pa.dictionary(pa.int8(), pa.string()))])
prediction = pa.struct([("y_pred_proba", pa.float32())])
nested = pa.record_batch(
    [
        pa.array([dt.datetime(2026, 11, 25, 10, 0, tzinfo=UTC), None, dt.datetime(2026, 11, 25, 10, 0, 1, 500000, tzinfo=UTC)],
                 pa.timestamp("us", tz="Europe/Paris")),
        pa.array(["car-loan", "car-loan", None], pa.large_string()),
        pa.array(["3.2.0", None, "3.3.0"], pa.string_view()),
        pa.array([{"car_value": 39811.0, "salary_range": "40K - 60K €"}, None,
                  {"car_value": None, "salary_range": "20K - 40K €"}], features),
        pa.array([{"y_pred_proba": 0.99}, {"y_pred_proba": 0.5}, None], prediction),
        pa.array([b"x", b"y", b"z"], pa.binary()),
    ],
    names=["ts", "model", "model_version", "features", "prediction", "blob"],
)
write("pyarrow_nested.arrows", [nested, nested.slice(1, 1)])
write("pyarrow_nested_zstd.arrows", [nested], compression="zstd")
write("pyarrow_nested_lz4.arrows", [nested], compression="lz4")

flat = pa.record_batch(
    [
        pa.array([1764064800, 1764064801], pa.int64()),
        pa.array(["car-loan", "car-loan"]),
        pa.array([39811, -3], pa.int32()),
        pa.array([True, False]),
        pa.array([0.25, None], pa.float64()),
    ],
    names=["ts", "model", "car_value", "salary_range", "y_pred_proba"],
)
write("pyarrow_flat.arrows", [flat])
