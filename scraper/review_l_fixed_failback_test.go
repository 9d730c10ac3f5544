package scraper_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/huntaze/message-pipeline/scraper"
	"github.com/huntaze/message-pipeline/test/harness"
)

// switchProxy is a TCP front for Redis (the endpoint a Sentinel-aware
// client or a cloud service's primary endpoint gives): every connection
// goes to the current primary; a switch closes every open connection.
type switchProxy struct {
	ln     net.Listener
	target atomic.Value // string
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

func startSwitchProxy(t *testing.T, target string) *switchProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{ln: ln, conns: map[net.Conn]struct{}{}}
	p.target.Store(target)
	t.Cleanup(func() { _ = ln.Close(); p.closeAll() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("tcp", p.target.Load().(string))
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[d] = struct{}{}, struct{}{}
			p.mu.Unlock()
			go func() { _, _ = io.Copy(d, c); _ = d.Close(); _ = c.Close() }()
			go func() { _, _ = io.Copy(c, d); _ = d.Close(); _ = c.Close() }()
		}
	}()
	return p
}

func (p *switchProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = map[net.Conn]struct{}{}
}

func (p *switchProxy) switchTo(addr string) { p.target.Store(addr); p.closeAll() }

func runID(c *redis.Client) string {
	info, _ := c.Info(context.Background(), "server").Result()
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "run_id:"); ok {
			return v
		}
	}
	return ""
}

func waitLinkUp(t *testing.T, c *redis.Client) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		info, _ := c.Info(context.Background(), "replication").Result()
		if strings.Contains(info, "master_link_status:up") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("harness: replica link never came up")
}

// redisPair is the fixture's Redis (P, the primary) with a replica S and
// every client of the scraper (ledger, gate) going through a proxy that
// the test switches between them: a failover as the scraper sees it.
type redisPair struct {
	pAddr  string
	pc, sc *redis.Client
	s      *harness.Redis
	proxy  *switchProxy
}

func (f *fixture) primaryWithReplica(t *testing.T) redisPair {
	t.Helper()
	p := redisPair{pAddr: f.redis.Addr, s: harness.StartRedis(t)}
	p.pc = redis.NewClient(&redis.Options{Addr: p.pAddr})
	t.Cleanup(func() { _ = p.pc.Close() })
	p.sc = p.s.Client()
	host, port, _ := net.SplitHostPort(p.pAddr)
	if err := p.sc.ReplicaOf(context.Background(), host, port).Err(); err != nil {
		t.Fatal(err)
	}
	waitLinkUp(t, p.sc)
	p.proxy = startSwitchProxy(t, p.pAddr)
	f.redis.Redis.Addr = p.proxy.ln.Addr().String()
	f.ledger = newLedgerOn(f.redis.Client())
	return p
}

// failOver waits until S holds P's writes, promotes S and sends every
// client to it; P is left as it is (a primary nobody reaches).
func (p redisPair) failOver(ctx context.Context, h *harnessErrors) {
	h.check(p.pc.Do(ctx, "WAIT", 1, 5000).Err())
	h.check(p.sc.ReplicaOf(ctx, "NO", "ONE").Err())
	p.proxy.switchTo(p.s.Addr)
}

// TestRev22LBFailbackToAPrimaryWhoseProcessNeverRestartedLetsAStaleClickPageLoseAnIdenticalText:
//
// Promise (a): no message lost (identical texts are distinct messages).
//
// Fault: a Sentinel-style failover and failback. Redis P (run id A) is the
// primary, S its replica. "hello" is sent on P (lastsent = A|hello,
// replicated). P is cut off; S is promoted, and P, still the same server
// process, rejoins as S's replica (full resync: S's data, P's run id
// unchanged). On S the fan's record is of run A: the fan waits
// CHAT_FAULT_PATIENCE (review K's hold), then "thanks babe" is sent on S;
// its lastsent (B|thanks babe) is written on S but P's replication link is
// down at that moment (replication is asynchronous), and S is lost: P is
// promoted back. The chat pages lag one commit behind (the second message
// not shown) and the third send ("thanks babe" again) gets a 500 that
// recorded nothing.
//
// On P the fan's record is A|hello, and A is P's run id: ThisRun, so
// staleClickPage neither holds the fan nor finds the page stale (it shows
// "hello"). The third message is clicked on the stale page, the 500's
// read-back takes the second's copy for the third's: lost. The run id
// names a server process, not a history of writes: a process that served
// before, lost its role and got it back vouches for records it did not
// keep in between.
func TestRev22LBFailbackToAPrimaryWhoseProcessNeverRestartedLetsAStaleClickPageLoseAnIdenticalText(t *testing.T) {
	t.Parallel()
	cfg := shortHorizon()
	cfg.ChatFaultPatience = 20 * time.Second
	f := setup(t, cfg)
	rp := f.primaryWithReplica(t)
	pAddr, pc, s, sc, proxy := rp.pAddr, rp.pc, rp.s, rp.sc, rp.proxy
	runA, runB := runID(pc), runID(sc)
	sHost, sPort, _ := net.SplitHostPort(s.Addr)
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadHost, deadPort, _ := net.SplitHostPort(dead.Addr().String())
	_ = dead.Close()

	var sends atomic.Int64
	var staleUntil atomic.Int64
	var failedOver, failedBack atomic.Bool
	var h harnessErrors
	check := h.check
	ctx := context.Background()
	f.behind(cfg, func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") {
				switch sends.Add(1) {
				case 2:
					// P's replication link drops: S's writes from now on
					// are S's alone.
					check(pc.ReplicaOf(ctx, deadHost, deadPort).Err())
					origin.ServeHTTP(w, r)
					staleUntil.Store(time.Now().Add(15 * time.Second).UnixMilli())
				case 3:
					staleUntil.Store(0)
					http.Error(w, "database unavailable", http.StatusInternalServerError)
				default:
					origin.ServeHTTP(w, r)
				}
				return
			}
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/my/chats/chat/") {
				if sends.Load() == 1 && failedOver.CompareAndSwap(false, true) {
					// After "hello" is settled: P cut off, S promoted, P
					// rejoins as S's replica.
					rp.failOver(ctx, &h)
					check(pc.ReplicaOf(ctx, sHost, sPort).Err())
				}
				if time.Now().UnixMilli() < staleUntil.Load() {
					if failedBack.CompareAndSwap(false, true) {
						// S lost: P promoted back.
						check(pc.ReplicaOf(ctx, "NO", "ONE").Err())
						proxy.switchTo(pAddr)
					}
					oneCommitBehind(w, r, origin)
					return
				}
			}
			origin.ServeHTTP(w, r)
		})
	})
	ok := f.helloThanksThanks(120 * time.Second)
	h.fatalIfAny(t)
	if !failedOver.Load() || !failedBack.Load() {
		t.Fatalf("harness: failover %t, failback %t", failedOver.Load(), failedBack.Load())
	}
	if got := runID(pc); got != runA || runA == runB {
		t.Fatalf("harness: P's run id %s then %s, S's %s", runA, got, runB)
	}
	f.eachArrivedOnce(t, ok, "the chat shows it", "does not show the message sent", "Redis serves the ledger")
}

func newLedgerOn(c *redis.Client) *scraper.Ledger {
	return scraper.NewLedger(c, "scraper:test", time.Hour)
}
