package soak

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// deployment is driftmon as an operator runs it: one config, one state directory and
// one results file, started, killed and restarted as often as the campaign likes.
type deployment struct {
	name    string
	bin     string
	dir     string // config, results, logs
	state   string // the state directory (a tmpfs of its own when we may mount one)
	cfg     string
	results string
	env     []string            // secrets and the like, for every run
	cred    *syscall.Credential // run as this user (root's runs: so that chmod binds)
	runs    int

	mu     sync.Mutex
	cur    *run
	maxRSS int64 // KiB, the largest VmHWM of any run
	exits  []exit
}

// run is one driftmon process.
type run struct {
	n       int
	cmd     *exec.Cmd
	port    int
	log     string
	token   bool // started with DRIFTMON_API_TOKEN
	done    chan struct{}
	killed  bool // by us, with SIGKILL
	stopped bool // by us, with SIGTERM
}

// exit is how a run ended.
type exit struct {
	run      int
	killed   bool
	stopped  bool
	code     int
	signal   string
	panicked bool
	lastLog  string
}

func (d *deployment) group() string { return fmt.Sprintf("soak-%s-%d", d.name, d.runs) }

// start starts a run; withToken says whether it gets DRIFTMON_API_TOKEN.
func (d *deployment) start(withToken bool, apiToken string) (*run, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cur != nil {
		return nil, fmt.Errorf("BUG: %s run %d still running", d.name, d.cur.n)
	}
	d.runs++
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &run{n: d.runs, port: port, token: withToken, done: make(chan struct{}), log: filepath.Join(d.dir, fmt.Sprintf("run-%03d.log", d.runs))}
	logf, err := os.Create(r.log)
	if err != nil {
		return nil, err
	}
	trimPartialLine(d.results)
	cmd := exec.Command(d.bin, "run", "-c", d.cfg, "-log-level", "info", "-http", fmt.Sprintf("127.0.0.1:%d", port))
	env := []string{"PATH=/usr/bin:/bin", "DRIFTMON_RESULTS_FILE=" + d.results, "DRIFTMON_SOAK_GROUP=" + d.group()}
	env = append(env, d.env...)
	if withToken {
		env = append(env, "DRIFTMON_API_TOKEN="+apiToken)
	}
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: d.cred, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	r.cmd = cmd
	d.cur = r
	go func() {
		_ = cmd.Wait()
		logf.Close()
		d.recordExit(r)
		close(r.done)
	}()
	go d.sampleRSS(r)
	return r, nil
}

func (d *deployment) recordExit(r *run) {
	st := r.cmd.ProcessState
	e := exit{run: r.n, code: st.ExitCode()}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		e.signal = ws.Signal().String()
	}
	b, _ := os.ReadFile(r.log)
	e.panicked = bytes.Contains(b, []byte("\npanic: ")) || bytes.HasPrefix(b, []byte("panic: ")) ||
		bytes.Contains(b, []byte("fatal error: ")) || bytes.Contains(b, []byte("SIGSEGV"))
	e.lastLog = lastLines(string(b), 3)
	d.mu.Lock()
	e.killed, e.stopped = r.killed, r.stopped
	d.exits = append(d.exits, e)
	if d.cur == r {
		d.cur = nil
	}
	d.mu.Unlock()
}

// sampleRSS reads the run's peak resident set (VmHWM) from /proc twice a second.
func (d *deployment) sampleRSS(r *run) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		if kb := vmHWM(r.cmd.Process.Pid); kb > 0 {
			d.mu.Lock()
			d.maxRSS = max(d.maxRSS, kb)
			d.mu.Unlock()
		}
		select {
		case <-r.done:
			return
		case <-t.C:
		}
	}
}

func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// current returns the running run, or nil.
func (d *deployment) current() *run {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cur
}

// kill sends SIGKILL to the current run and waits for it; false when none ran.
func (d *deployment) kill() bool {
	d.mu.Lock()
	r := d.cur
	if r != nil {
		r.killed = true
		// Read the peak just before it goes.
		d.maxRSS = max(d.maxRSS, vmHWM(r.cmd.Process.Pid))
	}
	d.mu.Unlock()
	if r == nil {
		return false
	}
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
	return true
}

// stop sends SIGTERM and waits up to timeout; it returns the exit.
func (d *deployment) stop(timeout time.Duration) (exit, bool) {
	d.mu.Lock()
	r := d.cur
	if r != nil {
		r.stopped = true
	}
	d.mu.Unlock()
	if r == nil {
		return exit{}, false
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(timeout):
		d.kill()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.exits[len(d.exits)-1], true
}

// api calls the current run's HTTP API; errNotRunning when there is none.
func (d *deployment) api(method, path, token string, body io.Reader) (int, []byte, error) {
	r := d.current()
	if r == nil {
		return 0, nil, errNotRunning
	}
	req, err := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", r.port, path), body)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

var apiClient = &http.Client{Timeout: 5 * time.Second}

var errNotRunning = fmt.Errorf("driftmon is not running")

// streamStats is a stream's counters as /api/v1/streams serves them.
type streamStats struct {
	Events       int64            `json:"events"`
	DecodeErrors map[string]int64 `json:"decode_errors"`
}

// stats reads the streams' counters from the API, by stream name; they come from
// the checkpoint, so they span every run.
func (d *deployment) stats() (map[string]streamStats, error) {
	code, b, err := d.api("GET", "/api/v1/streams", "", nil)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /api/v1/streams: %d %s", code, b)
	}
	var body struct {
		Streams []struct {
			Name string `json:"name"`
			streamStats
		} `json:"streams"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		return nil, fmt.Errorf("GET /api/v1/streams: %w", err)
	}
	out := map[string]streamStats{}
	for _, s := range body.Streams {
		out[s.Name] = s.streamStats
	}
	return out, nil
}

// logs returns every run's log, concatenated.
func (d *deployment) logs() ([]byte, error) {
	files, err := filepath.Glob(filepath.Join(d.dir, "run-*.log"))
	if err != nil {
		return nil, err
	}
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		all = append(all, b...)
	}
	return all, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// trimPartialLine cuts a results line that a killed run left half written.
func trimPartialLine(path string) {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 || b[len(b)-1] == '\n' {
		return
	}
	i := bytes.LastIndexByte(b, '\n')
	_ = os.WriteFile(path, b[:i+1], 0o644)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
