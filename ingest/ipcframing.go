package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// checkIPCFraming walks the message framing of an IPC stream (continuation marker,
// metadata length, metadata, body), checks that every length stays within b, that
// nothing follows the end-of-stream marker and that each message's metadata is a sound
// flatbuffer (verifyIPCMetadata), before the IPC reader, which trusts all of that and
// allocates whatever the lengths say, sees the bytes. It returns the metadata of the
// first message, the schema.
func checkIPCFraming(b []byte) (schemaMeta []byte, err error) {
	n := 0
	for i := 0; i < len(b); {
		if len(b)-i < 4 {
			return nil, fmt.Errorf("truncated message prefix at byte %d", i)
		}
		metaLen := int64(int32(binary.LittleEndian.Uint32(b[i:])))
		i += 4
		if metaLen == -1 { // continuation marker 0xFFFFFFFF, then the length
			if len(b)-i < 4 {
				return nil, fmt.Errorf("truncated message length at byte %d", i)
			}
			metaLen = int64(int32(binary.LittleEndian.Uint32(b[i:])))
			i += 4
		}
		if metaLen == 0 { // end of stream
			if i != len(b) {
				return nil, fmt.Errorf("%d bytes after the end-of-stream marker", len(b)-i)
			}
			break
		}
		if metaLen < 0 || metaLen > int64(len(b)-i) {
			return nil, fmt.Errorf("metadata length %d at byte %d exceeds the message", metaLen, i-4)
		}
		meta := b[i : i+int(metaLen)]
		bodyLen, ok := verifyIPCMetadata(meta)
		if !ok {
			return nil, fmt.Errorf("corrupt message metadata at byte %d", i)
		}
		if n == 0 {
			schemaMeta = meta
		}
		i += int(metaLen)
		if bodyLen < 0 || bodyLen > int64(len(b)-i) {
			return nil, fmt.Errorf("body length %d at byte %d exceeds the message", bodyLen, i)
		}
		i += int(bodyLen)
		n++
	}
	if n == 0 {
		return nil, errors.New("no schema message")
	}
	return schemaMeta, nil
}

// ipcFrames serves the IPC messages of one stream held in memory to ipc.Reader,
// metadata and body as views of the stream's bytes: ipc's own message reader copies
// both into new buffers. The framing was checked by checkIPCFraming.
type ipcFrames struct {
	b   []byte
	i   int
	msg *ipc.Message
}

// Message returns the next message, valid until the next call, or io.EOF after the
// last one (or the end-of-stream marker).
func (r *ipcFrames) Message() (*ipc.Message, error) {
	r.Release()
	b := r.b
	if len(b)-r.i < 4 {
		return nil, io.EOF
	}
	metaLen := int64(int32(binary.LittleEndian.Uint32(b[r.i:])))
	r.i += 4
	if metaLen == -1 {
		if len(b)-r.i < 4 {
			return nil, io.ErrUnexpectedEOF
		}
		metaLen = int64(int32(binary.LittleEndian.Uint32(b[r.i:])))
		r.i += 4
	}
	if metaLen == 0 {
		return nil, io.EOF
	}
	if metaLen < 0 || metaLen > int64(len(b)-r.i) {
		return nil, fmt.Errorf("metadata length %d exceeds the message", metaLen)
	}
	meta := b[r.i : r.i+int(metaLen)]
	r.i += int(metaLen)
	bodyLen, ok := verifyIPCMetadata(meta)
	if !ok || bodyLen < 0 || bodyLen > int64(len(b)-r.i) {
		return nil, errors.New("corrupt message metadata")
	}
	body := b[r.i : r.i+int(bodyLen)]
	r.i += int(bodyLen)
	r.msg = ipc.NewMessage(memory.NewBufferBytes(meta), memory.NewBufferBytes(body))
	return r.msg, nil
}

// Retain does nothing: the frames live as long as the decoder.
func (r *ipcFrames) Retain() {}

// Release releases the current message.
func (r *ipcFrames) Release() {
	if r.msg != nil {
		r.msg.Release()
		r.msg = nil
	}
}
