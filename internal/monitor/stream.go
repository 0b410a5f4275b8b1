package monitor

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/ingest"
)

// source delivers batches of messages until ctx is done, and says whether it can.
type source interface {
	Run(ctx context.Context, handle func(ctx context.Context, batch []ingest.Message) error) error
	Ready() error
}

// stream is one configured stream: its Kafka source, its decoder and its engine, all
// owned by the stream's goroutine.
type stream struct {
	cfg    *config.Stream
	log    *slog.Logger
	src    source
	dec    *ingest.JSONDecoder
	engine *Engine

	// Counters, written by the stream's goroutine once per batch and read by Stats.
	mu       sync.Mutex
	events   int64
	rejected map[ingest.Reason]int64
	lastLog  time.Time
}

func newStream(cfg *config.Config, sc *config.Stream, log *slog.Logger) (*stream, error) {
	engine, err := NewEngine(sc, log)
	if err != nil {
		return nil, err
	}
	dec, err := ingest.NewJSONDecoder(engine.DecoderSpec(), memory.DefaultAllocator)
	if err != nil {
		return nil, err
	}
	src, err := ingest.NewKafka(ingest.KafkaOptions{
		Brokers:       cfg.Kafka.Brokers,
		Topic:         sc.Topic,
		GroupID:       cfg.Kafka.GroupID,
		StartAtLatest: cfg.Kafka.StartOffset == "latest",
		Logger:        log,
	})
	if err != nil {
		return nil, err
	}
	return &stream{cfg: sc, log: log, src: src, dec: dec, engine: engine, rejected: map[ingest.Reason]int64{}}, nil
}

// handle decodes one batch and returns the results of the windows it closed.
func (s *stream) handle(batch []ingest.Message) []Result {
	rec, rejected := s.dec.Decode(batch)
	defer rec.Release()
	s.count(rec.NumRows(), rejected)
	return s.engine.Process(rec)
}

// count adds a batch's decoded rows and rejected messages (per reason) to the stream's
// counters, and logs a sample of the rejections at most every ten seconds.
func (s *stream) count(rows int64, rejected []ingest.Rejected) {
	s.mu.Lock()
	s.events += rows
	for _, r := range rejected {
		s.rejected[r.Reason]++
	}
	s.mu.Unlock()
	if len(rejected) > 0 && time.Since(s.lastLog) > 10*time.Second {
		s.lastLog = time.Now()
		s.log.Warn("messages rejected", "sample", rejected[0].Err, "in_batch", len(rejected))
	}
}

// Stats are a stream's counters since start.
type Stats struct {
	// Events is how many messages were decoded into rows.
	Events int64
	// Rejected counts the messages that could not be decoded, by reason.
	Rejected map[string]int64
}

func (s *stream) stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Events: s.events, Rejected: make(map[string]int64, len(s.rejected))}
	for r, n := range s.rejected {
		st.Rejected[string(r)] = n
	}
	return st
}
