package cluster

// The references handed over per model version (engine.Handover records), one key each
// in the cluster topic:
//
//	r/<stream>/<model>/<version>
//
// Any process writes them — the API's PUT and DELETE are answered by the leader and
// the followers alike — and the topic makes them durable before the call is answered.
// The leader's judge gives its engine those of its stream before every pass (Judge.Pass),
// and a new leader before it restores its state, so the leader judges each version
// against its reference, and so does the next one after a failover. A reference read
// from a reference.per_version file is written here too, by the leader that read it.

import (
	"context"
	"net/url"
)

const referencePrefix = "r/"

func referencesOf(stream string) string { return referencePrefix + url.PathEscape(stream) + "/" }

func referenceKey(stream, model, version string) string {
	return referencesOf(stream) + url.PathEscape(model) + "/" + url.PathEscape(version)
}

// PutReference stores record as the reference handed over for (model, version) of
// stream, and returns once the topic has it and this process has read it back (so that
// Reference answers with it).
func (l *Log) PutReference(ctx context.Context, stream, model, version string, record []byte) error {
	if err := l.Put(ctx, Record{Key: referenceKey(stream, model, version), Value: record}); err != nil {
		return err
	}
	return l.Sync(ctx)
}

// DeleteReference deletes the reference handed over for (model, version) of stream,
// and returns once this process has read the deletion back.
func (l *Log) DeleteReference(ctx context.Context, stream, model, version string) error {
	if err := l.Put(ctx, Record{Key: referenceKey(stream, model, version)}); err != nil {
		return err
	}
	return l.Sync(ctx)
}

// Reference returns the record of the reference handed over for (model, version) of
// stream, as this process has read it. Do not modify it.
func (l *Log) Reference(stream, model, version string) ([]byte, bool) {
	return l.Get(referenceKey(stream, model, version))
}

// References returns the records of every reference handed over for stream's versions,
// in key order. Do not modify them.
func (l *Log) References(stream string) [][]byte {
	var out [][]byte
	l.Scan(referencesOf(stream), func(_ string, v []byte) { out = append(out, v) })
	return out
}
