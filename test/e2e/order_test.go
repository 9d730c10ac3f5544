package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/test/local"
)

// sendBatch posts one batch request for creator and records every entry the
// API accepted (202 queued or stored_for_replay, or 500 stored_for_replay),
// in the order of the request's entries.
func (a *accepted) sendBatch(t *testing.T, p *local.Pipeline, creator string, texts ...string) {
	t.Helper()
	var msgs []map[string]string
	for _, text := range texts {
		msgs = append(msgs, map[string]string{"creatorId": creator, "recipientId": "fan-1", "content": text})
	}
	body, _ := json.Marshal(map[string]any{"messages": msgs})
	req, _ := http.NewRequest("POST", p.APIURL+"/api/onlyfans/messages/send", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+local.Token("user-"+creator, false, creator))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("batch %v: %v", texts, err)
		return
	}
	defer resp.Body.Close()
	var out struct {
		Results []struct{ MessageID, Status string }
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if (resp.StatusCode != 202 && resp.StatusCode != 500) || len(out.Results) != len(texts) {
		t.Errorf("batch %v: %d %+v", texts, resp.StatusCode, out)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, r := range out.Results {
		if r.Status != "queued" && r.Status != "stored_for_replay" {
			t.Errorf("batch entry %q: %s (status %d)", texts[i], r.Status, resp.StatusCode)
			continue
		}
		a.byID[r.MessageID] = texts[i]
		a.status[r.MessageID] = r.Status
		a.creators[creator] = append(a.creators[creator], texts[i])
	}
}

// phase runs one step of every creator's client at once; each client sends
// its messages one request after the other (a sequential client), singles
// then one batch.
func phase(t *testing.T, p *local.Pipeline, a *accepted, creators []string, name string, singles, batch int) {
	t.Helper()
	var wg sync.WaitGroup
	for _, c := range creators {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range singles {
				a.send(t, p, c, "fan-1", fmt.Sprintf("%s %s s%d", name, c, i))
			}
			if batch > 0 {
				var texts []string
				for i := range batch {
					texts = append(texts, fmt.Sprintf("%s %s b%d", name, c, i))
				}
				a.sendBatch(t, p, c, texts...)
			}
		}()
	}
	wg.Wait()
}

// Issue 23, deliverable 6: the order of the API's answers is the order at
// the site whichever path a message took. Three sequential clients send
// singles and batches through the whole local pipeline: normally; while
// SQS fails at the API (fallback table); once SQS is back while their
// fallback messages still wait (they must not be overtaken); with the rate
// limiter flag switched off while a backlog waits in the intake queue and
// the fallback table; across a restart of the limiter; and with the flag
// back on. Each creator's texts at the fake site must equal, exactly, the
// order of its accepted answers; nothing lost, nothing twice, no window
// over the limit (the scraper's gate holds it while the flag is off).
func TestEveryPathKeepsEachCreatorsAcceptanceOrderAtTheSite(t *testing.T) {
	creators := []string{"creator-a", "creator-b", "creator-c"}
	p, _ := start(t, creators, 4)
	a := newAccepted()

	phase(t, p, a, creators, "direct", 4, 3)

	p.SQSFault.Failing.Store(true)
	phase(t, p, a, creators, "outage", 3, 2)
	stored := 0
	for _, s := range a.status {
		if s == "stored_for_replay" {
			stored++
		}
	}
	if stored != len(creators)*5 {
		t.Fatalf("%d of %d stored for replay during the outage", stored, len(creators)*5)
	}
	p.SQSFault.Failing.Store(false)
	// Their fallback messages wait (replay every second): these must join
	// them, not overtake them.
	phase(t, p, a, creators, "after-outage", 3, 2)

	// A backlog waits in the intake queue (10 per window per creator) and
	// maybe in the fallback table: switch the limiter off.
	p.SetRateLimiterEnabled(false)
	phase(t, p, a, creators, "flag-off", 3, 2)
	if err := p.RestartLimiter(); err != nil {
		t.Fatal(err)
	}
	phase(t, p, a, creators, "restarted", 2, 0)
	p.SetRateLimiterEnabled(true)
	phase(t, p, a, creators, "flag-on", 3, 2)

	waitDelivered(t, p, a.total(), 150*time.Second)
	checkPromises(t, p, a, nil)
	checkOrder(t, p, a)
	t.Logf("%d accepted, %d stored for replay during the outage\n%s", a.total(), stored, p.Summary())
}
