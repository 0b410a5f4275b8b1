package soak

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// broker is the Kafka the campaign runs against, in a process of its own so that
// stopping it leaves driftmon and the campaign alone.
type broker interface {
	// Addr is the bootstrap address, host:port.
	Addr() string
	// Restart stops the broker, keeping its data, and starts it again on the same port.
	Restart(ctx context.Context) error
	// Close stops it and deletes its data.
	Close()
	// Describe says what it is, for the report.
	Describe() string
}

// realBroker is Apache Kafka run by .ci/kafka.sh on ports of the campaign's own.
type realBroker struct {
	script string
	env    []string
	addr   string
	port   int
}

func startRealBroker(ctx context.Context, script string, port int, dataDir string) (*realBroker, error) {
	b := &realBroker{script: script, port: port, env: append(os.Environ(),
		fmt.Sprintf("KAFKA_PORT=%d", port), fmt.Sprintf("KAFKA_CONTROLLER_PORT=%d", port+1),
		"DRIFTMON_KAFKA_DATA="+dataDir)}
	out, err := b.run(ctx, "start")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "DRIFTMON_KAFKA_BROKERS="); ok {
			b.addr = strings.TrimSpace(v)
		}
	}
	if b.addr == "" {
		b.Close()
		return nil, fmt.Errorf("%s start printed no DRIFTMON_KAFKA_BROKERS", script)
	}
	return b, nil
}

func (b *realBroker) run(ctx context.Context, verb string) (string, error) {
	cmd := exec.CommandContext(ctx, b.script, verb)
	cmd.Env = b.env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s", b.script, verb, err, tail(stderr.String(), 2000))
	}
	return string(out), nil
}

func (b *realBroker) Addr() string { return b.addr }

func (b *realBroker) Restart(ctx context.Context) error {
	_, err := b.run(ctx, "restart")
	return err
}

func (b *realBroker) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, _ = b.run(ctx, "stop")
}

func (b *realBroker) Describe() string {
	return fmt.Sprintf("Apache Kafka (one KRaft node) via %s on %s", b.script, b.addr)
}

// The campaign's command serves a kfake broker when it finds these variables: the
// fallback when Java is missing. ServeKfake does that.
const (
	kfakeDirEnv  = "DRIFTMON_SOAK_KFAKE_DIR"
	kfakePortEnv = "DRIFTMON_SOAK_KFAKE_PORT"
)

// ServeKfake serves a kfake broker and returns true when the process was started as
// the campaign's fallback broker (see kfakeBroker); the command's main calls it first
// and exits with code when it returns true.
func ServeKfake() (served bool, code int) {
	dir := os.Getenv(kfakeDirEnv)
	if dir == "" {
		return false, 0
	}
	port, err := strconv.Atoi(os.Getenv(kfakePortEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad", kfakePortEnv, err)
		return true, 2
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir))
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot start kfake:", err)
		return true, 1
	}
	fmt.Println("ready")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	<-ctx.Done()
	stop()
	c.Close()
	return true, 0
}

// kfakeBroker is kfake with a data directory in a child process (this executable
// again, see ServeKfake): a Kafka-protocol broker that needs no Java.
type kfakeBroker struct {
	dir  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

func startKfakeBroker(dir string, port int) (*kfakeBroker, error) {
	b := &kfakeBroker{dir: dir, port: port}
	return b, b.start()
}

func (b *kfakeBroker) start() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), kfakeDirEnv+"="+b.dir, fmt.Sprintf("%s=%d", kfakePortEnv, b.port))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := false
		for sc.Scan() {
			if sc.Text() == "ready" {
				ok = true
				break
			}
		}
		ready <- ok
	}()
	select {
	case ok := <-ready:
		if !ok {
			_ = cmd.Wait()
			return fmt.Errorf("kfake did not start: %s", stderr.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return errors.New("kfake did not start within 30s")
	}
	b.cmd, b.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(b.done) }()
	return nil
}

func (b *kfakeBroker) Addr() string { return fmt.Sprintf("127.0.0.1:%d", b.port) }

func (b *kfakeBroker) stop() {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(20 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
	b.cmd = nil
}

func (b *kfakeBroker) Restart(context.Context) error {
	b.stop()
	time.Sleep(time.Second)
	return b.start()
}

func (b *kfakeBroker) Close() {
	b.stop()
	_ = os.RemoveAll(b.dir)
}

func (b *kfakeBroker) Describe() string {
	return "kfake (franz-go's Kafka-protocol fake, data kept on disk) on " + b.Addr()
}

// createTopic creates a one-partition topic and waits until it has a leader.
func createTopic(ctx context.Context, addr, topic string) error {
	transport := &kafka.Transport{}
	defer transport.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second, Transport: transport}
	res, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}}})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil {
		return fmt.Errorf("cannot create topic %s: %w", topic, err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) == 1 && md.Topics[0].Partitions[0].Leader.ID >= 0 {
			return nil
		}
	}
	return fmt.Errorf("topic %s has no leader after 30s", topic)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
