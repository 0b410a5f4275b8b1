package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/ingest"
	"github.com/driftmon/driftmon/internal/engine"
)

// source delivers batches of messages to a handler until ctx is done, and says
// whether it can.
type source interface {
	Run(ctx context.Context, h ingest.Handler) error
	Ready() error
}

// messageDecoder turns a batch of messages into an Arrow record of the rows that decoded and
// the messages that did not, with their reasons.
type messageDecoder interface {
	Decode(batch []ingest.Message) (arrow.Record, []ingest.Rejected)
}

// maxDecodeWorkers bounds the decoders of one stream.
const maxDecodeWorkers = 8

// batchDecoder decodes a batch's runs of one partition's messages, in parallel when
// there are several, sets the rejected ones aside (dead-letter topic, a sampled log
// line) and gives the runs back in the batch's order: a message may hold many rows
// (Arrow IPC), and every row must carry its partition. It is owned by one stream's
// goroutine.
type batchDecoder struct {
	// decs are the decoders, one per worker; the first also serves batches of one run.
	// Decoders keep state (buffers, the JSON decoder's guess of the next key), so each
	// worker has its own.
	decs    []messageDecoder
	dead    *ingest.DeadLetter // nil: rejected messages are only counted
	log     *slog.Logger
	runs    []decoded // scratch: a batch's decoded partition runs
	rows    []int32   // scratch: each row's partition
	lastLog time.Time
}

// decoded is one partition run of a batch, decoded. The receiver releases rec.
type decoded struct {
	run       []ingest.Message
	partition int32
	rec       arrow.Record
	rejected  []ingest.Rejected
}

// newReading builds what reads a live stream, in one process or as a cluster's worker:
// its engine, which refuses event times out of limits (engine.Engine.BoundEventTimes),
// the dialer to the brokers, and the decoders.
func newReading(cfg *config.Config, sc *config.Stream, log *slog.Logger) (*engine.Engine, *kafka.Dialer, *batchDecoder, error) {
	eng, err := engine.New(sc, log)
	if err != nil {
		return nil, nil, nil, err
	}
	eng.BoundEventTimes()
	dialer, err := KafkaDialer(cfg.Kafka)
	if err != nil {
		return nil, nil, nil, err
	}
	dec, err := newBatchDecoder(cfg, sc, eng.DecoderSpec(), dialer, log)
	if err != nil {
		return nil, nil, nil, err
	}
	return eng, dialer, dec, nil
}

// newBatchDecoder builds the decoders of sc (more than cores would only wait for each
// other) and its dead-letter writer.
func newBatchDecoder(cfg *config.Config, sc *config.Stream, spec ingest.Spec, dialer *kafka.Dialer, log *slog.Logger) (*batchDecoder, error) {
	d := &batchDecoder{decs: make([]messageDecoder, min(runtime.GOMAXPROCS(0), maxDecodeWorkers)), log: log}
	for i := range d.decs {
		var err error
		if d.decs[i], err = newDecoder(sc, spec); err != nil {
			return nil, err
		}
	}
	if dl := sc.DeadLetter; dl != nil {
		w, err := ingest.NewDeadLetter(ingest.DeadLetterOptions{Brokers: cfg.Kafka.Brokers, Topic: dl.Topic,
			SampleEvery: dl.SampleEvery, Dialer: dialer, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("dead_letter: %w", err)
		}
		d.dead = w
	}
	return d, nil
}

// decode decodes batch's partition runs and returns them in the batch's order. The
// result is valid until the next call.
func (d *batchDecoder) decode(batch []ingest.Message) []decoded {
	out := d.runs[:0]
	for start := 0; start < len(batch); {
		end := start + 1
		for end < len(batch) && batch[end].Partition == batch[start].Partition {
			end++
		}
		out = append(out, decoded{run: batch[start:end], partition: int32(batch[start].Partition)})
		start = end
	}
	d.runs = out
	if workers := min(len(d.decs), len(out)); workers <= 1 {
		for i := range out {
			out[i].rec, out[i].rejected = d.decs[0].Decode(out[i].run)
		}
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		for _, dec := range d.decs[:workers] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := int(next.Add(1) - 1); i < len(out); i = int(next.Add(1) - 1) {
					out[i].rec, out[i].rejected = dec.Decode(out[i].run)
				}
			}()
		}
		wg.Wait()
	}
	for _, r := range out {
		if len(r.rejected) == 0 {
			continue
		}
		if d.dead != nil {
			// Best effort: the copies are for people to look at; the counts, kept with
			// the checkpoint, are what is exact. WriteAll logs its failures.
			_ = d.dead.WriteAll(context.Background(), r.run, r.rejected)
		}
		if time.Since(d.lastLog) > 10*time.Second {
			d.lastLog = time.Now()
			d.log.Warn("messages rejected", "sample", r.rejected[0].Err, "in_batch", len(r.rejected))
		}
	}
	return out
}

// setAside dead-letters the messages whose rows the engine refused (a wrong clock, a
// model past the limit). Rows map to messages when each message that decoded gave one
// row (JSON, Avro); an Arrow IPC message gives many, and its refused rows are only
// counted.
func (d *batchDecoder) setAside(r decoded, refused []engine.Refusal) {
	if d.dead == nil || len(refused) == 0 || int(r.rec.NumRows()) != len(r.run)-len(r.rejected) {
		return
	}
	letters := make([]ingest.Rejected, 0, len(refused))
	row, msg, rej := 0, 0, 0
	for _, f := range refused {
		for ; ; msg++ {
			if rej < len(r.rejected) && r.rejected[rej].Index == msg {
				rej++
				continue
			}
			if row == f.Row {
				break
			}
			row++
		}
		letters = append(letters, ingest.Rejected{Index: msg, Reason: f.Reason,
			Err: fmt.Errorf("refused: %s (streams[].limits)", f.Reason)})
	}
	_ = d.dead.WriteAll(context.Background(), r.run, letters)
}

// partitions returns r's rows' partitions (all r's), in a buffer valid until the next
// call.
func (d *batchDecoder) partitions(r decoded) []int32 {
	rows := d.rows[:0]
	for range r.rec.NumRows() {
		rows = append(rows, r.partition)
	}
	d.rows = rows
	return rows
}

// done releases what the last batch kept, so that no message or record stays alive
// until the next batch.
func (d *batchDecoder) done() { clear(d.runs) }

// close closes the dead-letter writer.
func (d *batchDecoder) close() {
	if d.dead != nil {
		d.dead.Close()
	}
}

// newDecoder is the one switch from a stream's format to its decoder.
func newDecoder(sc *config.Stream, spec ingest.Spec) (messageDecoder, error) {
	spec.MaxMessageBytes = sc.MaxMessageBytes
	mem := memory.DefaultAllocator
	switch sc.Format {
	case "avro":
		r := sc.SchemaRegistry
		opts := []sr.ClientOpt{sr.URLs(r.URLs...)}
		if r.Username != "" {
			opts = append(opts, sr.BasicAuth(r.Username, r.Password))
		}
		client, err := sr.NewClient(opts...)
		if err != nil {
			return nil, fmt.Errorf("schema_registry: %w", err)
		}
		return ingest.NewAvroDecoder(spec, client, mem)
	case "arrow_ipc":
		return ingest.NewArrowIPCDecoder(spec, mem)
	default:
		return ingest.NewJSONDecoder(spec, mem)
	}
}

// KafkaDialer is how every connection to the brokers is made: with the configured TLS
// and SASL, or plainly.
func KafkaDialer(k config.Kafka) (*kafka.Dialer, error) {
	var sec ingest.Security
	if t := k.TLS; t != nil {
		tc, err := ingest.TLSConfig(t.CAFile, t.CertFile, t.KeyFile, t.ServerName, t.InsecureSkipVerify)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls: %w", err)
		}
		sec.TLS = tc
	}
	if a := k.SASL; a != nil {
		m, err := ingest.SASLMechanism(ingest.SASLOptions{Mechanism: a.Mechanism, Username: a.Username, Password: a.Password,
			OAuth: ingest.OAuthOptions{TokenEndpoint: a.TokenEndpoint, ClientID: a.ClientID, ClientSecret: a.ClientSecret,
				ClientAuthMethod: a.ClientAuthMethod, Scope: a.Scope, Extensions: a.Extensions, TokenFile: a.TokenFile},
			Region: a.Region})
		if err != nil {
			return nil, fmt.Errorf("kafka.sasl: %w", err)
		}
		sec.SASL = m
	}
	return ingest.Dialer(sec)
}
