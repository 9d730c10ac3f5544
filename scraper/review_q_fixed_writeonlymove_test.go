package scraper_test

import (
	"testing"
)

// TestRev22QAFailoverDuringAClickIsNotSeenByTheLedgerThatWroteOnTheReplica:
//
// Promise (a): every accepted message reaches the fan exactly once
// (identical texts are distinct messages): never lost.
//
// Fault: review 22 M B's split brain (Redis P primary, S its replica; P
// cut off, S promoted; S lost, P, never demoted nor resynced, serves
// again), with the failover landing a moment later: during the second
// message's click (after its fan record was read on P, its gate approval
// and attempt mark written on P) instead of before its chat was loaded.
// "hello" is sent on P; "thanks babe" is clicked, the failover happens
// while its request is at the site, the site answers 200 and its
// last-sent record (and sent mark, gate restamp) is written on S only.
// S is lost and P serves again; the chat pages lag one commit behind for
// 15 s and the third send ("thanks babe" again) gets a 500 that recorded
// nothing. One task throughout: the very process that wrote the second
// message's record on S.
//
// Why: the fix of review 22 M B (ledger_lastsent.go serverSeen) is fed
// only by Ledger.LastSent (ledger_lastsent.go:104, l.seen.saw), i.e. by
// the fan-record read in staleClickPage before a click. RememberSent
// (ledger_lastsent.go:80-87, rememberScript) learns the server it wrote
// on (ServerLua) but never tells serverSeen. Here this process's reads
// were all answered by P (the second message's before the failover, the
// third's after the failback), so saw() never sees a move: movedAt stays
// zero, P's record "P|hello" is ThisRun with RunSince zero
// (ledger_lastsent.go:125), staleClickPage (processor_lastsent.go:126-
// 150) neither holds the fan nor finds the page stale (it shows "hello"),
// the third message is clicked on the stale page and the 500's read-back
// takes the second message's copy for the third's: lost. The gate's own
// memory (ratelimit.Limiter.saw) is fed only by Decide too, so it does
// not fence the third send either.
//
// Suggested fix: feed serverSeen from every ledger script that can name
// its server, writes above all: rememberScript (and MarkSent /
// MarkAttempting) return the server they wrote on and call l.seen.saw(),
// so a record written on S makes a later read answered by P a move; the
// same for the gate's Restamp/Hold (they ran on S) into Limiter.saw.
// Better, a record written by this process but absent on the server that
// answers (the process remembers the server and At of its own last
// RememberSent per fan, or at all) is itself proof that this server
// lost writes.
//
// Fixed (ledger_lastsent.go RememberSent, internal/ratelimit restamp.lua
// and Limiter.move): the server a fan record, a restamp or a hold was
// written on is one the process saw, as a read's or a decision's is. The
// third message's read on P is then a move: its records vouch for nothing
// before it, the fan waits the patience (past the chat's lag) and the
// gate fences P. The scaffold is review M B's (failbackToAnIsolatedPrimary),
// with the failover moved into the second click.
func TestRev22QAFailoverDuringAClickIsNotSeenByTheLedgerThatWroteOnTheReplica(t *testing.T) {
	t.Parallel()
	f, ok := failbackToAnIsolatedPrimary(t, true)
	f.eachArrivedOnce(t, ok, "the chat shows it", "does not show the message sent", "Redis serves the ledger", "found", "sent")
}
