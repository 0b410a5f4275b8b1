// Package ingest turns inference events into Arrow records. It owns reading Kafka (a
// consumer group with partition-pinned readers and our own offsets: Kafka; TLS and SASL:
// Security, with SASLMechanism's PLAIN, SCRAM, OAUTHBEARER (OAuthBearer, which kafka-go
// lacks) and AWS_MSK_IAM (MSKIAM); the dead-letter topic: DeadLetter), decoding messages
// into the record schema a Spec describes (JSONDecoder, AvroDecoder for the Confluent
// wire format, ArrowIPCDecoder), and reading files for baselines and backtests
// (FileReader: Parquet, CSV, JSON lines). A message that cannot be decoded is rejected
// with a Reason; it never stops a batch or leaves part of a row behind.
//
// The files follow the decoders' parts: decoder.go holds what all three share,
// jsonscan.go, float.go and eventtime.go the JSON scanner and the number and time
// parsers every format agrees with; arrowconvert.go, ipcframing.go, flatbuffer.go and
// arena.go the Arrow IPC conversion, framing, metadata verifier and memory; avroprogram.go
// the compiled Avro schemas. file.go is FileReader, with one file per format: parquet.go,
// csv.go and jsonl.go.
//
// It imports no other driftmon package: decoding knows nothing of sketches, windows,
// detectors, alerting or anything under internal/.
package ingest
