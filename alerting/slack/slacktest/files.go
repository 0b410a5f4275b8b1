package slacktest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// MaxFileSize is the largest upload the fake accepts. Slack takes far
// larger files; driftmon's charts are a few KB, so more means a bug.
const MaxFileSize = 5 << 20

// uploadPath prefixes the upload URLs files.getUploadURLExternal hands out;
// the file ID follows it.
const uploadPath = "/upload/"

var pngMagic = []byte("\x89PNG\r\n\x1a\n")

// File is one file shared by files.completeUploadExternal.
type File struct {
	// ID is the file ID files.getUploadURLExternal returned, Name the
	// filename it was asked for, Title the one given on completion.
	ID, Name, Title string
	// Data is the uploaded content, a PNG.
	Data []byte
	// Channel is the channel_id it was shared to and ThreadTS the thread
	// it was posted in ("" outside a thread).
	Channel, ThreadTS string
}

// Files returns the files shared by files.completeUploadExternal, in
// order; uploads that were never completed are not included.
func (s *Server) Files() []File {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]File, len(s.files))
	for i, f := range s.files {
		out[i] = f
		out[i].Data = bytes.Clone(f.Data)
	}
	return out
}

// form reads the form of a files.* call (at most 1 MiB) and checks its token;
// false when it answered the call already: invalid_arguments for a form it cannot
// read, else as authorized.
func (s *Server) form(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		apiError(w, "invalid_arguments")
		return false
	}
	return s.authorized(w, r)
}

// authorized answers not_authed or invalid_auth unless the form token or
// the bearer token is accepted.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	token := r.PostFormValue("token")
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && token == "" {
		token = bearer
	}
	switch {
	case token == "":
		apiError(w, "not_authed")
		return false
	case s.token != "" && token != s.token:
		apiError(w, "invalid_auth")
		return false
	}
	return true
}

// uploadURL is files.getUploadURLExternal: it reserves a file ID and
// returns where to upload its content.
func (s *Server) uploadURL(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	name := r.PostFormValue("filename")
	length, err := strconv.Atoi(r.PostFormValue("length"))
	switch {
	case name == "":
		apiError(w, "invalid_arguments")
		return
	case err != nil || length <= 0:
		apiError(w, "invalid_length")
		return
	case length > MaxFileSize:
		apiError(w, "file_too_large")
		return
	}
	s.mu.Lock()
	s.seq++
	id := fmt.Sprintf("F%08d", s.seq)
	s.uploads[id] = &File{ID: id, Name: name, Data: nil}
	s.mu.Unlock()
	writeJSON(w, map[string]any{"ok": true, "upload_url": s.srv.URL + uploadPath + id, "file_id": id})
}

// upload receives the content of a reserved file as multipart field
// "file", the way slack-go posts it, and accepts only a PNG of at most
// MaxFileSize bytes and of the announced length.
func (s *Server) upload(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	f, ok := s.uploads[id]
	s.mu.Unlock()
	if !ok {
		http.Error(w, "unknown upload", http.StatusNotFound)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxFileSize+1<<20)
	part, _, err := r.FormFile("file")
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "file too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "multipart field \"file\" missing", http.StatusBadRequest)
		return
	}
	defer part.Close()
	data, err := io.ReadAll(io.LimitReader(part, MaxFileSize+1))
	switch {
	case err != nil:
		http.Error(w, "cannot read upload", http.StatusBadRequest)
		return
	case len(data) > MaxFileSize:
		http.Error(w, "file too large", http.StatusRequestEntityTooLarge)
		return
	case !bytes.HasPrefix(data, pngMagic):
		http.Error(w, "not a PNG", http.StatusUnsupportedMediaType)
		return
	}
	s.mu.Lock()
	f.Data = data
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "OK - %d", len(data))
}

// completeUpload is files.completeUploadExternal: it shares uploaded files
// to channel_id, in the thread of thread_ts when set, which must be a
// message of that channel.
func (s *Server) completeUpload(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	var summaries []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if err := json.Unmarshal([]byte(r.PostFormValue("files")), &summaries); err != nil || len(summaries) == 0 {
		apiError(w, "invalid_arguments")
		return
	}
	channel, threadTS := r.PostFormValue("channel_id"), r.PostFormValue("thread_ts")
	if channel == "" && threadTS != "" {
		apiError(w, "channel_not_found")
		return
	}

	s.mu.Lock()
	if threadTS != "" && !s.hasMessage(channel, threadTS) {
		s.mu.Unlock()
		apiError(w, "invalid_thread_ts")
		return
	}
	var done []File
	for _, sum := range summaries {
		f, ok := s.uploads[sum.ID]
		if !ok || f.Data == nil {
			s.mu.Unlock()
			apiError(w, "file_not_found")
			return
		}
		done = append(done, File{ID: f.ID, Name: f.Name, Title: sum.Title, Data: f.Data, Channel: channel, ThreadTS: threadTS})
	}
	files := make([]map[string]any, len(done))
	for i, f := range done {
		delete(s.uploads, f.ID)
		if f.Title == "" {
			f.Title = f.Name
			done[i].Title = f.Name
		}
		files[i] = map[string]any{"id": f.ID, "title": f.Title}
	}
	s.files = append(s.files, done...)
	if s.out != nil {
		where := "#" + strings.TrimPrefix(channel, "#")
		if threadTS != "" {
			where += " (reply in thread " + threadTS + ")"
		}
		for _, f := range done {
			fmt.Fprintf(s.out, "── Slack %s ──\n[image: %s (%d KB PNG)]\n\n", where, f.Title, (len(f.Data)+1023)/1024)
		}
	}
	s.mu.Unlock()
	writeJSON(w, map[string]any{"ok": true, "files": files})
}

// hasMessage reports whether ts is a message posted to channel; s.mu must
// be held.
func (s *Server) hasMessage(channel, ts string) bool {
	for _, m := range s.messages {
		if m.TS == ts && m.Channel == channel && !m.Updated {
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
