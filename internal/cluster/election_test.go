package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// terms records who leads when: the members in the order they became the leader, and
// every time one became the leader while another still was.
type terms struct {
	mu       sync.Mutex
	current  int // the member leading, or -1
	leaders  []int
	overlaps []string
}

// lead is member i's leader function: it leads until its context ends.
func (ts *terms) lead(i int) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		ts.mu.Lock()
		if ts.current >= 0 {
			ts.overlaps = append(ts.overlaps, fmt.Sprintf("member %d became the leader while member %d was", i, ts.current))
		}
		ts.current = i
		ts.leaders = append(ts.leaders, i)
		ts.mu.Unlock()
		<-ctx.Done()
		ts.mu.Lock()
		if ts.current == i {
			ts.current = -1
		}
		ts.mu.Unlock()
		return nil
	}
}

// member is one process taking part in the election.
type member struct {
	e      *Election
	cancel context.CancelFunc
	done   chan error
}

func startMember(e *Election, fn func(context.Context) error) *member {
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{e: e, cancel: cancel, done: make(chan error, 1)}
	go func() { m.done <- e.Run(ctx, fn) }()
	return m
}

// stop ends m's run and waits for it.
func (m *member) stop(t *testing.T) {
	t.Helper()
	m.cancel()
	select {
	case err := <-m.done:
		if err != nil {
			t.Errorf("Run returned %v after its context ended", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// settled waits until the members form one generation with exactly one leader, and
// returns that leader's index.
func settled(t *testing.T, members map[int]*member) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		leader, gens := -1, map[int32]bool{}
		n := 0
		for i, m := range members {
			if m.e.Leader() {
				leader = i
				n++
			}
			_, g := m.e.state()
			gens[g] = true
		}
		if n == 1 && len(gens) == 1 && !gens[0] {
			return leader
		}
		if time.Now().After(deadline) {
			t.Fatalf("no single leader: %d leaders, generations %v", n, gens)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestOneLeaderAtATime runs three members and takes the leader away twice: once
// gracefully (it leaves the group), once as kill -9 would (it stops without leaving,
// and the group waits for its session to expire). Each time another member becomes
// the leader, and never while the previous one still leads.
func TestOneLeaderAtATime(t *testing.T) {
	c, brokers := newCluster(t)
	opts := Options{Brokers: brokers, Topic: "cluster", SessionTimeout: 2 * time.Second, RebalanceTimeout: 2 * time.Second}
	open(t, opts) // the topic, as a monitor opens the log before it runs the election

	ts := &terms{current: -1}
	members := map[int]*member{}
	for i := range 3 {
		members[i] = startMember(NewElection(opts, "leaders"), ts.lead(i))
	}
	defer func() {
		for _, m := range members {
			m.stop(t)
		}
	}()

	first := settled(t, members)
	members[first].stop(t)
	delete(members, first)

	second := settled(t, members)
	if second == first {
		t.Fatal("the member that left still leads")
	}
	// Kill the leader: its LeaveGroup is answered but does nothing, so the group keeps
	// it until its session expires, as it would a process killed with SIGKILL (which
	// cannot be simulated in-process otherwise: kafka-go's ConsumerGroup.Close always
	// leaves).
	killed, _ := members[second].e.state()
	var swallowed atomic.Bool
	c.ControlKey(int16(kmsg.LeaveGroup), func(req kmsg.Request) (kmsg.Response, error, bool) {
		leave := req.(*kmsg.LeaveGroupRequest)
		gone := leave.MemberID == killed
		for _, m := range leave.Members {
			gone = gone || m.MemberID == killed
		}
		if !gone {
			return nil, nil, false
		}
		swallowed.Store(true)
		return leave.ResponseKind(), nil, true
	})
	members[second].stop(t)
	delete(members, second)
	if !swallowed.Load() || !inGroup(t, brokers, "leaders", killed) {
		t.Fatal("the killed member left the group; the test simulates nothing")
	}

	third := settled(t, members)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.overlaps) > 0 {
		t.Errorf("two leaders at once: %v", ts.overlaps)
	}
	if third == second || ts.leaders[len(ts.leaders)-1] != third {
		t.Errorf("leaders %v: the killed member %d still leads, or member %d does not", ts.leaders, second, third)
	}
}

// inGroup says whether member is in group.
func inGroup(t *testing.T, brokers []string, group, member string) bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{group}
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range resp.Groups {
		for _, m := range g.Members {
			if m.MemberID == member {
				return true
			}
		}
	}
	return false
}

func TestRunReturnsWhatTheLeaderReturns(t *testing.T) {
	_, brokers := newCluster(t)
	opts := Options{Brokers: brokers, Topic: "cluster", SessionTimeout: 2 * time.Second, RebalanceTimeout: 2 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	boom := errors.New("boom")
	e := NewElection(opts, "leaders") // Run creates the topic
	if err := e.Run(ctx, func(context.Context) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("Run = %v, want the leader's error", err)
	}
	if e.Leader() {
		t.Error("still the leader after Run returned")
	}
	if err := NewElection(Options{}, "").Run(ctx, nil); err == nil {
		t.Error("Run with no brokers, topic or group succeeded")
	}
}
