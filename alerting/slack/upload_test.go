package slack

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"strings"
	"testing"

	slackapi "github.com/slack-go/slack"

	"github.com/driftmon/driftmon/alerting"
	"github.com/driftmon/driftmon/alerting/slack/slacktest"
)

// withDistributions is carLoanAlert with the binned distributions the
// monitor attaches to its changes.
func withDistributions() alerting.Alert {
	a := carLoanAlert()
	a.Drifted[0].Distribution = &alerting.Distribution{
		Labels:    []string{"<20K €", "20-40K €", "40-60K €", "60K+ €"},
		Reference: []float64{0.22, 0.38, 0.30, 0.10},
		Current:   []float64{0.08, 0.26, 0.35, 0.31},
	}
	a.Drifted[1].Distribution = &alerting.Distribution{
		Edges:     []float64{0, 20000, 30000, 40000, 50000, 60000, 90000},
		Reference: []float64{0.15, 0.35, 0.25, 0.12, 0.08, 0.05},
		Current:   []float64{0.05, 0.15, 0.2, 0.25, 0.2, 0.15},
	}
	return a
}

func TestUploadChartIntoThread(t *testing.T) {
	var out bytes.Buffer
	srv := slacktest.NewServer(slacktest.Options{Token: testToken, Out: &out})
	t.Cleanup(srv.Close)
	n, err := New(fast(Options{Token: testToken, Channel: "C0DRIFT", APIURL: srv.URL()}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a := withDistributions()
	ts, err := n.Open(ctx, fire(a))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.UploadChart(ctx, "C0DRIFT", ts, a); err != nil {
		t.Fatalf("UploadChart: %v", err)
	}

	files := srv.Files()
	if len(files) != 1 {
		t.Fatalf("%d files shared, want 1", len(files))
	}
	f := files[0]
	if f.Channel != "C0DRIFT" || f.ThreadTS != ts {
		t.Errorf("shared to %q thread %q, want C0DRIFT thread %q", f.Channel, f.ThreadTS, ts)
	}
	if want := "Distributions: car-loan v3"; f.Title != want {
		t.Errorf("title %q, want %q", f.Title, want)
	}
	if want := "drift-" + a.ID + ".png"; f.Name != want {
		t.Errorf("filename %q, want %q", f.Name, want)
	}
	if _, err := png.Decode(bytes.NewReader(f.Data)); err != nil {
		t.Errorf("uploaded file is not a PNG: %v", err)
	}
	if !strings.Contains(out.String(), "(reply in thread "+ts+") ──\n[image: Distributions: car-loan v3 (") {
		t.Errorf("transcript lacks the image in the thread:\n%s", out.String())
	}
}

func TestUploadChartWithoutDistributionsIsNoop(t *testing.T) {
	srv := newServer(t)
	n, err := New(fast(Options{Token: testToken, Channel: "C0DRIFT", APIURL: srv.URL()}))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.UploadChart(context.Background(), "C0DRIFT", "1.000001", carLoanAlert()); err != nil {
		t.Errorf("UploadChart without distributions = %v, want nil", err)
	}
	if r := srv.Requests(); r != 0 {
		t.Errorf("%d requests, want none", r)
	}
}

func TestUploadChartRejected(t *testing.T) {
	srv := newServer(t)
	ctx := context.Background()
	good, err := New(fast(Options{Token: testToken, Channel: "C0DRIFT", APIURL: srv.URL()}))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := good.Open(ctx, fire(carLoanAlert()))
	if err != nil {
		t.Fatal(err)
	}

	wrongToken, err := New(fast(Options{Token: "xoxb-wrong", Channel: "C0DRIFT", APIURL: srv.URL()}))
	if err != nil {
		t.Fatal(err)
	}
	webhook, err := New(fast(Options{WebhookURL: srv.WebhookURL()}))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		n          *Notifier
		channel    string
		ts         string
		wantReason string
	}{
		{"bad token", wrongToken, "C0DRIFT", ts, "invalid_auth"},
		{"webhook mode", webhook, "", ts, "unsupported"},
		{"unknown thread", good, "C0DRIFT", "1.999999", "invalid_thread_ts"},
		{"thread of another channel", good, "C0OTHER", ts, "invalid_thread_ts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.n.UploadChart(ctx, tt.channel, tt.ts, withDistributions())
			var perr *alerting.PermanentError
			if !errors.As(err, &perr) || perr.Reason != tt.wantReason {
				t.Errorf("UploadChart = %v, want PermanentError %s", err, tt.wantReason)
			}
		})
	}
	if f := srv.Files(); len(f) != 0 {
		t.Errorf("%d files shared, want none", len(f))
	}
}

// TestFakeChecksUploads drives slacktest with slack-go directly, for what
// UploadChart never sends.
func TestFakeChecksUploads(t *testing.T) {
	srv := newServer(t)
	client := slackapi.New(testToken, slackapi.OptionAPIURL(srv.URL()))
	ctx := context.Background()

	_, err := client.UploadFileContext(ctx, slackapi.UploadFileParameters{
		Filename: "notes.txt", Content: "not an image", FileSize: 12, Channel: "C0DRIFT",
	})
	var sc slackapi.StatusCodeError
	if !errors.As(err, &sc) || sc.Code != 415 {
		t.Errorf("uploading text = %v, want HTTP 415", err)
	}

	_, err = client.GetUploadURLExternalContext(ctx, slackapi.GetUploadURLExternalParameters{FileName: "big.png", FileSize: slacktest.MaxFileSize + 1})
	if err == nil || !strings.Contains(err.Error(), "file_too_large") {
		t.Errorf("announcing %d bytes = %v, want file_too_large", slacktest.MaxFileSize+1, err)
	}

	_, err = client.CompleteUploadExternalContext(ctx, slackapi.CompleteUploadExternalParameters{
		Files: []slackapi.FileSummary{{ID: "F404", Title: "x"}}, Channel: "C0DRIFT",
	})
	if err == nil || !strings.Contains(err.Error(), "file_not_found") {
		t.Errorf("completing an unknown file = %v, want file_not_found", err)
	}
	if f := srv.Files(); len(f) != 0 {
		t.Errorf("%d files shared, want none", len(f))
	}
}
