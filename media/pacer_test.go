package media

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recSender is a slotSender that reports each send on a channel.
type recSender struct {
	id    int
	clk   *fakeClock
	sends chan send
	left  atomic.Bool // leavePacer returned: sendSlot must not run any more
	t     *testing.T
}

type send struct {
	id   int
	slot int64
	at   time.Time
}

func (r *recSender) sendSlot(slot int64, _ *sendScratch) bool {
	if r.left.Load() {
		r.t.Errorf("sender %d: slot %d sent after leavePacer returned", r.id, slot)
	}
	var at time.Time
	if r.clk != nil {
		at = r.clk.Now()
	}
	if r.sends != nil {
		r.sends <- send{r.id, slot, at}
	}
	return true
}

// testGroup is a pacer group of n pacers on a fake clock, outside the
// registry, started.
func testGroup(t *testing.T, n int) (*pacerGroup, *fakeClock) {
	t.Helper()
	g, clk := stoppedGroup(t, n)
	g.start()
	return g, clk
}

// stoppedGroup is a group whose pacers the test starts (runPacers) once
// its sessions joined: each pacer then serves tick 0 and sleeps once, with
// no wake-up from a join left over to race the test's first Advance.
func stoppedGroup(t *testing.T, n int) (*pacerGroup, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	g := newPacerGroup(new(byte), clk, n, new(pacerCounters))
	t.Cleanup(func() {
		g.halt()
		g.wg.Wait()
	})
	return g, clk
}

// runPacers starts the pacers ps of g after draining their join wake-ups.
func runPacers(g *pacerGroup, ps ...*pacer) {
	for _, p := range ps {
		select {
		case <-p.wake:
		default:
		}
		g.wg.Add(1)
		go p.run()
	}
}

func (g *pacerGroup) join(e *paceEntry) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	g.add(e)
	e.state = entryPaced
}

func (g *pacerGroup) leave(e *paceEntry) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	g.remove(e)
	e.state = entryGone
}

// waitArmed waits until n pacers sleep on their timers: they have served
// everything due, so the next Advance wakes them at the right time.
func waitArmed(t *testing.T, clk *fakeClock, n int) {
	t.Helper()
	clk.awaitTimers(t, fmt.Sprintf("%d pacers asleep", n), func() bool { return clk.armedCount() >= n })
}

// recv reads n sends, failing after 5 s.
func recv(t *testing.T, ch <-chan send, n int) []send {
	t.Helper()
	out := make([]send, 0, n)
	timeout := time.After(5 * time.Second)
	for len(out) < n {
		select {
		case s := <-ch:
			out = append(out, s)
		case <-timeout:
			t.Fatalf("%d of %d sends within 5 s", len(out), n)
		}
	}
	return out
}

// TestPacerPhases: 100 sessions joining at once on 2 pacers are spread
// over the 20 buckets (5 a millisecond, none bunched), each sends every
// slot exactly on its own 20 ms grid, and every packet leaves on time.
func TestPacerPhases(t *testing.T) {
	const sessions = 100
	g, clk := stoppedGroup(t, 2)
	sends := make(chan send, sessions)
	entries := make([]*paceEntry, sessions)
	for i := range entries {
		entries[i] = &paceEntry{s: &recSender{id: i, clk: clk, sends: sends, t: t}}
		g.join(entries[i])
	}
	runPacers(g, g.pacers...)
	for pi := range g.pacers {
		for b, l := range g.load[pi] {
			if l < 2 || l > 3 {
				t.Errorf("pacer %d bucket %d holds %d sessions, want 2 or 3 (spread evenly)", pi, b, l)
			}
		}
	}
	t0 := clk.Now()
	phase := map[int]time.Duration{}
	next := map[int]int64{}
	for ms := range 1000 { // 1 s: 50 slots each
		at := clk.Now().Sub(t0)
		got := recv(t, sends, sessions/int(wheelSize))
		for _, s := range got {
			if _, ok := phase[s.id]; !ok {
				phase[s.id] = at
				if at >= FrameDuration {
					t.Fatalf("session %d first sent at %v", s.id, at)
				}
			}
			if s.slot != next[s.id] {
				t.Fatalf("session %d sent slot %d, want %d", s.id, s.slot, next[s.id])
			}
			if want := phase[s.id] + time.Duration(s.slot)*FrameDuration; at != want {
				t.Fatalf("session %d slot %d at %v, want %v", s.id, s.slot, at, want)
			}
			next[s.id]++
		}
		if ms < 999 {
			waitArmed(t, clk, 2)
			clk.Advance(pacerTick)
		}
	}
	for id, n := range next {
		if n != 50 {
			t.Errorf("session %d sent %d slots in 1 s, want 50", id, n)
		}
	}
	st := g.stats.read()
	if st.Sent != 50*sessions || st.Late != 0 || st.Skipped != 0 || st.Lateness.Counts[0] != st.Sent || st.Lateness.Sum != 0 {
		t.Errorf("stats %+v", st)
	}
	select {
	case s := <-sends:
		t.Errorf("extra send %+v", s)
	default:
	}
}

// TestPacerCatchUp: after a stall the due packets leave in order, each
// session's slots continuous, counted with how late they left; past
// maxBehind the oldest slots are skipped and counted, and the rest follow
// in order.
func TestPacerCatchUp(t *testing.T) {
	const sessions = 40 // two per bucket
	g, clk := stoppedGroup(t, 1)
	sends := make(chan send, 64*sessions)
	entries := make([]*paceEntry, sessions)
	for i := range entries {
		entries[i] = &paceEntry{s: &recSender{id: i, clk: clk, sends: sends, t: t}}
		g.join(entries[i])
	}
	runPacers(g, g.pacers...)
	t0 := clk.Now()
	sent := make([][]int64, sessions) // slots each session sent
	lateOf := func(s send) time.Duration {
		return s.at.Sub(t0) - time.Duration(entries[s.id].base)*pacerTick - time.Duration(s.slot)*FrameDuration
	}
	// msByMs runs the clock 1 ms at a time for d, each session sending its
	// slot on time.
	msByMs := func(d time.Duration) {
		t.Helper()
		for range d / pacerTick {
			clk.Advance(pacerTick)
			for _, s := range recv(t, sends, sessions/int(wheelSize)) {
				if l := lateOf(s); l != 0 {
					t.Fatalf("session %d slot %d left %v late", s.id, s.slot, l)
				}
				sent[s.id] = append(sent[s.id], s.slot)
			}
			waitArmed(t, clk, 1)
		}
	}
	for _, s := range recv(t, sends, sessions/int(wheelSize)) { // tick 0
		sent[s.id] = append(sent[s.id], s.slot)
	}
	waitArmed(t, clk, 1)
	msByMs(FrameDuration - pacerTick) // every slot 0 sent, now at 19 ms

	for _, tc := range []struct {
		name          string
		stall         time.Duration
		slots         int // slots due in each session's bucket
		late, skipped int // for all sessions
	}{
		// 19 ms + 100 ms: slots 1-5 of every bucket are due, the oldest
		// 80-99 ms late, the newest 0-19 ms.
		{"100 ms: five slots each, in order", 100 * time.Millisecond, 5, 4 * sessions, 0},
		// 139 ms + 300 ms = 439 ms: slots 7 to 21 are due (ticks 140 to
		// 439); the ten of the last 200 ms leave, slots 7 to 11 are
		// skipped.
		{"300 ms: the last 200 ms catch up, the rest skipped", 300 * time.Millisecond, 15, 9 * sessions, 5 * sessions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := g.stats.read()
			clk.Advance(tc.stall)
			got := recv(t, sends, (tc.slots*sessions)-tc.skipped)
			late := 0
			for _, s := range got {
				l := lateOf(s)
				if l < 0 || l > maxBehind {
					t.Errorf("session %d slot %d left %v late", s.id, s.slot, l)
				}
				if l >= lateAfter {
					late++
				}
				sent[s.id] = append(sent[s.id], s.slot)
			}
			if late != tc.late {
				t.Errorf("%d packets a frame or more late, want %d", late, tc.late)
			}
			after := g.stats.read()
			if d := after.Late - before.Late; d != uint64(tc.late) {
				t.Errorf("late counter +%d, want %d", d, tc.late)
			}
			if d := after.Skipped - before.Skipped; d != uint64(tc.skipped) {
				t.Errorf("skipped counter +%d, want %d", d, tc.skipped)
			}
			waitArmed(t, clk, 1)
			// Back on schedule: the next 20 ms, one ms at a time, on time.
			msByMs(FrameDuration)
		})
	}
	for id, slots := range sent {
		// Continuous apart from the skip in the second stall: slots 0-6,
		// then 12-22.
		if !slices.IsSorted(slots) || slots[0] != 0 {
			t.Fatalf("session %d sent slots %v", id, slots)
		}
		gaps := 0
		for i := 1; i < len(slots); i++ {
			if d := slots[i] - slots[i-1]; d != 1 {
				gaps += int(d - 1)
			}
		}
		if uint64(gaps) != entries[id].skipped.Load() {
			t.Errorf("session %d: %d slots missing from %v, %d counted skipped", id, gaps, slots, entries[id].skipped.Load())
		}
	}
}

// TestPacerLateTimer: a timer that always fires 700 µs late (a loaded
// machine) neither drifts the schedule nor skips: slot k still leaves
// 0.7 ms after k·20 ms, ten minutes on.
func TestPacerLateTimer(t *testing.T) {
	g, clk := stoppedGroup(t, 1)
	sends := make(chan send, 1)
	g.join(&paceEntry{s: &recSender{clk: clk, sends: sends, t: t}})
	runPacers(g, g.pacers...)
	t0 := recv(t, sends, 1)[0].at
	const slots = 50 * 600 // 10 minutes
	for k := int64(1); k <= slots; k++ {
		waitArmed(t, clk, 1)
		// Jump straight to 0.7 ms after the slot.
		clk.Advance(t0.Add(time.Duration(k)*FrameDuration + 700*time.Microsecond).Sub(clk.Now()))
		s := recv(t, sends, 1)[0]
		if s.slot != k || s.at.Sub(t0) != time.Duration(k)*FrameDuration+700*time.Microsecond {
			t.Fatalf("slot %d at %v, want slot %d at %v", s.slot, s.at.Sub(t0), k, time.Duration(k)*FrameDuration)
		}
	}
	// The pacer counts a send after handing it over: once it sleeps again
	// the last one is in the stats.
	waitArmed(t, clk, 1)
	st := g.stats.read()
	if st.Skipped != 0 || st.Late != 0 || st.Lateness.Counts[3] != slots {
		t.Errorf("stats %+v", st)
	}
}

// TestPacerLeaveWhileSending: sessions leave while their pacers send; once
// leavePacer returns the session is never sent for again, and the others
// keep their schedule.
func TestPacerLeaveWhileSending(t *testing.T) {
	const sessions = 200
	g, clk := testGroup(t, 3)
	recs := make([]*recSender, sessions)
	entries := make([]*paceEntry, sessions)
	for i := range entries {
		recs[i] = &recSender{id: i, t: t}
		entries[i] = &paceEntry{s: recs[i]}
		g.join(entries[i])
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // the clock runs a millisecond at a time
		for {
			select {
			case <-stop:
				return
			default:
				clk.Advance(pacerTick)
				runtime.Gosched()
			}
		}
	})
	for i := 0; i < sessions; i += 2 {
		wg.Go(func() {
			g.leave(entries[i])
			recs[i].left.Store(true)
		})
	}
	for i := 1; i < sessions; i += 2 {
		wg.Go(func() {
			g.leave(entries[i])
			recs[i].left.Store(true)
			g.join(&paceEntry{s: &recSender{id: sessions + i, t: t}}) // a new call in its place
		})
	}
	// Let the clock run a while after the churn.
	for n := g.stats.read().Sent; g.stats.read().Sent < n+5000; {
		runtime.Gosched()
	}
	close(stop)
	wg.Wait()
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if g.n != sessions/2 {
		t.Errorf("%d sessions in the group, want %d", g.n, sessions/2)
	}
	total := 0
	for _, p := range g.pacers {
		p.mu.Lock()
		for b, w := range p.wheel {
			for i, e := range w {
				if e.idx != i || e.bucket != int64(b) {
					t.Errorf("entry at %d/%d says %d/%d", b, i, e.bucket, e.idx)
				}
			}
			total += len(w)
		}
		p.mu.Unlock()
	}
	if total != sessions/2 {
		t.Errorf("%d entries on the wheels, want %d", total, sessions/2)
	}
}

// TestPacerRegistry: sessions of one clock share its pacers, which stop
// (goroutines gone) when the last session leaves; a session that left
// before it joined (Close racing Start) is never paced.
func TestPacerRegistry(t *testing.T) {
	clk := newFakeClock()
	before := runtime.NumGoroutine()
	a := &paceEntry{s: &recSender{t: t}}
	b := &paceEntry{s: &recSender{t: t}}
	joinPacer(clk, a)
	joinPacer(clk, b)
	registry.mu.Lock()
	g := registry.groups[any(clk)]
	shared := g != nil && a.p != nil && b.p != nil && a.p.g == g && b.p.g == g && g.n == 2
	registry.mu.Unlock()
	if !shared {
		t.Fatal("two sessions on one clock do not share its pacer group")
	}
	leavePacer(a)
	leavePacer(a) // idempotent
	leavePacer(b)
	registry.mu.Lock()
	_, still := registry.groups[any(clk)]
	registry.mu.Unlock()
	if still {
		t.Error("the group outlived its last session")
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines before, %d after the last session left", before, n)
	}

	c := &paceEntry{s: &recSender{t: t}}
	leavePacer(c) // Close before Start
	joinPacer(clk, c)
	registry.mu.Lock()
	_, joined := registry.groups[any(clk)]
	registry.mu.Unlock()
	if joined || c.p != nil {
		t.Error("a closed session joined a pacer")
	}
}

// TestSessionsSharePacer: sessions on one clock are sent by one pacer, each
// on its own phase, every one at 50 packets a second with continuous
// sequence numbers and timestamps.
func TestSessionsSharePacer(t *testing.T) {
	clk := newFakeClock()
	const n = 6
	var socks [n]*testSock
	var sessions [n]*Session
	for i := range n {
		sessions[i] = listen(t, SessionConfig{Clock: clk})
		socks[i] = &testSock{c: rawSocket(t)}
		neg := pcmuEvents
		neg.Remote = addrOf(socks[i].c)
		if err := sessions[i].Start(neg); err != nil {
			t.Fatal(err)
		}
	}
	registry.mu.Lock()
	g := registry.groups[any(clk)]
	if g == nil || g.n != n || len(g.pacers) != 1 {
		t.Fatalf("group %+v", g)
	}
	registry.mu.Unlock()
	// Slot 0 of each within 20 ms, one after the other (1 ms apart).
	advance := func(d time.Duration) {
		waitArmed(t, clk, 1)
		clk.Advance(d)
	}
	for i := range n {
		h, _ := readRTP(t, socks[i].c)
		socks[i].seq, socks[i].ts = h.SequenceNumber, h.Timestamp
		advance(pacerTick)
	}
	advance(FrameDuration - n*pacerTick)
	for range 50 {
		for i := range n {
			h, _ := readRTP(t, socks[i].c)
			if h.SequenceNumber != socks[i].seq+1 || h.Timestamp != socks[i].ts+FrameSamples {
				t.Fatalf("session %d: %+v after seq %d ts %d", i, h, socks[i].seq, socks[i].ts)
			}
			socks[i].seq, socks[i].ts = h.SequenceNumber, h.Timestamp
			advance(pacerTick)
		}
		advance(FrameDuration - n*pacerTick)
	}
	for i := range n {
		if st := sessions[i].Stats(); st.Sent != 51 || st.Late != 0 || st.Skipped != 0 {
			t.Errorf("session %d stats %+v", i, st)
		}
	}
}

// TestSessionCloseWhilePaced: closing a session takes it off the wheel
// before the socket closes (no send errors), other sessions carry on.
func TestSessionCloseWhilePaced(t *testing.T) {
	a := listen(t, SessionConfig{})
	b := listen(t, SessionConfig{})
	fa, fb := rawSocket(t), rawSocket(t)
	na, nb := pcmuEvents, pcmuEvents
	na.Remote, nb.Remote = addrOf(fa), addrOf(fb)
	if err := a.Start(na); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(nb); err != nil {
		t.Fatal(err)
	}
	readRTP(t, fa)
	readRTP(t, fb)
	done := make(chan error, 1)
	go func() { done <- a.Play(context.Background(), dtmfTone('1', 5*time.Second)) }()
	readRTP(t, fa)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Error("Play returned nil after Close")
	}
	sent := a.Stats().Sent
	if st := a.Stats(); st.SendErrors != 0 {
		t.Errorf("send errors %d", st.SendErrors)
	}
	for range 5 {
		readRTP(t, fb)
	}
	if a.Stats().Sent != sent {
		t.Error("a closed session kept sending")
	}
	if st := PacerStats(); st.Sessions < 1 || st.Pacers != pacersPerCore*runtime.GOMAXPROCS(0) || st.Sent == 0 || st.Lateness.Count != st.Sent {
		t.Errorf("PacerStats %+v", st)
	}
}

type testSock struct {
	c   *net.UDPConn
	seq uint16
	ts  uint32
}

// TestSendSlotAllocs: building and sending a packet allocates nothing, for
// silence, a prompt and telephone-events; serving a bucket allocates
// nothing either.
func TestSendSlotAllocs(t *testing.T) {
	s := listen(t, SessionConfig{})
	far := rawSocket(t)
	n := pcmuEvents
	n.Remote = addrOf(far)
	// Set up as Start does, without a pacer: the test is the sender.
	s.mu.Lock()
	s.neg, s.stream, s.started = n, NewStream(n.StreamConfig(false)), true
	s.mu.Unlock()
	var sc sendScratch
	var slot int64
	go func() { // drain the far end
		buf := make([]byte, 2048)
		for {
			if _, _, err := far.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
		}
	}()
	audio := NewAudio(dtmfTone('1', 20*time.Second))
	for _, tc := range []struct {
		name string
		job  func() *job
	}{
		{"silence", func() *job { return nil }},
		{"prompt", func() *job { return &job{audio: audio.encoded(PCMU), pt: 0, done: make(chan struct{})} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.mu.Lock()
			s.job = tc.job()
			s.mu.Unlock()
			allocs := testing.AllocsPerRun(500, func() {
				if !s.sendSlot(slot, &sc) {
					t.Fatal("not sent")
				}
				slot++
			})
			if allocs != 0 {
				t.Errorf("%v allocations per packet", allocs)
			}
		})
	}

	g, _ := testGroup(t, 1)
	for i := range 100 {
		g.join(&paceEntry{s: &recSender{id: i, t: t}})
	}
	p := g.pacers[0]
	var tick int64
	allocs := testing.AllocsPerRun(200, func() {
		p.mu.Lock()
		p.serveTick(tick)
		p.mu.Unlock()
		tick++
	})
	if allocs != 0 {
		t.Errorf("serving a bucket: %v allocations", allocs)
	}
}

// BenchmarkSendSlot is the per-packet cost of the sender: build a G.711
// packet of a prompt and send it over loopback.
func BenchmarkSendSlot(b *testing.B) {
	s, err := Listen(context.Background(), SessionConfig{IP: loopback, Ports: testPorts, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	far, err := Listen(context.Background(), SessionConfig{IP: loopback, Ports: testPorts, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer far.Close() // its receiver drains the socket
	n := pcmuEvents
	n.Remote = far.LocalAddr()
	s.mu.Lock()
	s.neg, s.stream, s.started = n, NewStream(n.StreamConfig(false)), true
	audio := NewAudio(slices.Repeat([]int16{1000, -1000}, 80*50*60))
	s.job = &job{audio: audio.encoded(PCMU), done: make(chan struct{})}
	s.mu.Unlock()
	var sc sendScratch
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.sendSlot(int64(i), &sc)
		if i%(50*60-1) == 0 {
			s.mu.Lock()
			s.job = &job{audio: audio.encoded(PCMU), done: make(chan struct{})}
			s.mu.Unlock()
		}
	}
}

// TestPacerHelpsLateSibling: a pacer whose goroutine does not wake (its
// timer stuck on a P running a GC mark worker, its thread preempted) has
// its ticks served by a sibling, at most stealAfter late, every slot in
// order.
func TestPacerHelpsLateSibling(t *testing.T) {
	const sessions = 40 // one per pacer and bucket
	g, clk := stoppedGroup(t, 2)
	sends := make(chan send, 4*sessions)
	entries := make([]*paceEntry, sessions)
	for i := range entries {
		entries[i] = &paceEntry{s: &recSender{id: i, clk: clk, sends: sends, t: t}}
		g.join(entries[i])
	}
	runPacers(g, g.pacers[0]) // only pacer 0 runs: pacer 1 is the stuck one
	if g.pacers[1].n != sessions/2 {
		t.Fatalf("pacer 1 has %d sessions", g.pacers[1].n)
	}
	t0 := clk.Now()
	next := make([]int64, sessions)
	var maxLate time.Duration
	total := 0
	for ms := range 400 { // 20 slots each
		if ms > 0 {
			clk.Advance(pacerTick)
		}
		// Pacer 0 asleep again: it served its tick and helped pacer 1.
		waitArmed(t, clk, 1)
		n := 0
		for more := true; more; {
			select {
			case s := <-sends:
				n++
				if s.slot != next[s.id] {
					t.Fatalf("session %d sent slot %d, want %d", s.id, s.slot, next[s.id])
				}
				next[s.id]++
				late := s.at.Sub(t0) - time.Duration(entries[s.id].base)*pacerTick - time.Duration(s.slot)*FrameDuration
				maxLate = max(maxLate, late)
			default:
				more = false
			}
		}
		if n > 1+int(stealAfter/pacerTick)+1 {
			t.Fatalf("%d packets at %d ms: bunched", n, ms)
		}
		total += n
	}
	// By 399 ms: pacer 0's 20 sessions sent 20 slots each, pacer 1's the
	// slots due by 397 ms (2 ms late at most).
	want := 0
	for _, e := range entries {
		last := int64(399)
		if e.p == g.pacers[1] {
			last -= int64(stealAfter / pacerTick)
		}
		want += int((last-e.base)/wheelSize) + 1
	}
	if total < want {
		t.Errorf("%d packets sent, want at least %d", total, want)
	}
	if maxLate != stealAfter {
		t.Errorf("the stuck pacer's packets left up to %v late, want %v", maxLate, stealAfter)
	}
	if st := g.stats.read(); st.Skipped != 0 || st.Late != 0 {
		t.Errorf("stats %+v", st)
	}
}
