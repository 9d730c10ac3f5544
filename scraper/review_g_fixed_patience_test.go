// Issue 22, seventh review (fresh reviewer G): CHAT_FAULT_PATIENCE across
// receives that saw the whole site down.

package scraper_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/huntaze/message-pipeline/scraper"
)

// chatStep is what the scripted chat tier answers: status for one chat
// page load (0: the origin's page), or status for every load during down
// from the first load that meets the step, ending after an even number of
// its loads (a receive that sees the whole tier down loads two pages: the
// fan's chat and the probe chat, so the next receive starts the script's
// next step).
type chatStep struct {
	status int
	down   time.Duration
}

// scriptedChatTier answers the chat page loads (any fan's, the probe
// chat's too) by steps, in order, then as the origin does. Sends and the
// session check reach the origin.
type scriptedChatTier struct {
	mu     sync.Mutex
	steps  []chatStep
	until  time.Time
	inDown int
	loads  []int
}

func (s *scriptedChatTier) next() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.steps) > 0 {
		st := s.steps[0]
		if st.down == 0 {
			s.steps = s.steps[1:]
			s.loads = append(s.loads, st.status)
			return st.status
		}
		if s.until.IsZero() {
			s.until = time.Now().Add(st.down)
		}
		if time.Now().Before(s.until) || s.inDown%2 == 1 {
			s.inDown++
			s.loads = append(s.loads, st.status)
			return st.status
		}
		s.steps, s.until, s.inDown = s.steps[1:], time.Time{}, 0
	}
	s.loads = append(s.loads, 0)
	return 0
}

func (s *scriptedChatTier) front(origin http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/my/chats/chat/") {
			if status := s.next(); status != 0 {
				http.Error(w, http.StatusText(status), status)
				return
			}
		}
		origin.ServeHTTP(w, r)
	})
}

// TestRev22GDReceivesThatSawTheSiteDownDoNotRipenOneFansChatFault:
//
// Promise (c): outages never count toward a message's failures; the fix
// of review F counts a fan's broken chat only "once the ledger has seen it
// so on every receive for the patience".
//
// The page tier has one broken backend for one receive (the fan's chat
// 500, the probe chat good, the fan's chat 500 again: broken:<id> is set),
// then the whole site answers 500 for 4 s (longer than the 3 s patience:
// every receive sees the probe chat fail too, an outage, which neither
// clears broken:<id> nor says anything about the fan), then one broken
// backend again for one receive. That receive counts chat_unusable at
// once (processor_chatfault.go brokenFanChat: seen = now - since, since
// the first sighting), although no receive but two saw the fan's chat
// broken with a good probe, and the chat works on the next load.
func TestRev22GDReceivesThatSawTheSiteDownDoNotRipenOneFansChatFault(t *testing.T) {
	t.Parallel()
	// GIVEN the scripted page tier and one message of creator-a
	cfg := testConfig()
	f := setup(t, cfg)
	tier := &scriptedChatTier{steps: []chatStep{
		{status: 500}, {status: 0}, {status: 500}, // one backend broken: fan bad, probe good, fan bad
		{status: 500, down: 4 * time.Second},      // the whole tier down: fan bad, probe bad
		{status: 500}, {status: 0}, {status: 500}, // one backend broken again, one receive
	}}
	f.behind(cfg, tier.front)
	f.compress()
	f.enqueue(f.newMessage("creator-a", "through a flapping page tier"))
	// WHEN the scraper runs until the message is sent (the tier heals
	// after the script) or dead-lettered
	ok := f.runUntil(60*time.Second, func() bool {
		return f.queueCount(f.queues.Workflows.URL) == 0
	})
	tier.mu.Lock()
	t.Logf("chat page loads: %d, receives %d", len(tier.loads), len(f.compressed.Asked()))
	tier.mu.Unlock()
	if d := f.dlq(); len(d) != 0 {
		t.Fatalf("dead-lettered: %q", aws.ToString(d[0].MessageAttributes[scraper.AttrFailureReason].StringValue))
	}
	// THEN it is delivered once, and no failure was counted
	if got := f.site.Texts("creator-a"); !ok || len(got) != 1 {
		t.Fatalf("ok %t, the fan has %q", ok, got)
	}
	if n := strings.Count(f.logs.String(), `"error_class":"chat_unusable"`); n != 0 {
		t.Fatalf("a flapping page tier (one receive half-broken, 4 s all down, one receive half-broken) counted %d chat_unusable failure(s) of the message", n)
	}
}
