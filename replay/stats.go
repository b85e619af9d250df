package replay

// Sequence number accounting (RFC 3550 Appendix A.1).
const (
	maxDropout = 3000 // a forward jump larger than this is a restart
	maxMisseq  = 3000 // so is a backward jump larger than this
	seqWindow  = 256  // sequence numbers remembered to tell duplicates
)

// seqStats counts one stream's packets by sequence number: lost,
// duplicated and reordered, without allocating.
type seqStats struct {
	init      bool
	max       uint16
	expected  uint64 // expected by earlier runs (before a restart)
	first     uint16 // first sequence number of this run
	cycles    uint64 // wraps of this run
	unique    uint64 // distinct packets received
	dup       uint64
	reordered uint64
	seen      [seqWindow / 64]uint64 // bit s%seqWindow: s seen, for s in (max−seqWindow, max]
}

func (s *seqStats) bit(seq uint16) (int, uint64) {
	i := int(seq) % seqWindow
	return i / 64, 1 << (i % 64)
}

// add counts a packet with sequence number seq. It returns the number of
// packets missing just before it and whether it is the newest so far.
func (s *seqStats) add(seq uint16) (gap int, fresh bool) {
	if !s.init {
		s.restart(seq)
		return 0, true
	}
	d := int(int16(seq - s.max))
	switch {
	case d > 0 && d <= maxDropout:
		for k := uint16(1); int(k) <= min(d, seqWindow); k++ {
			w, m := s.bit(s.max + k)
			s.seen[w] &^= m
		}
		if seq < s.max {
			s.cycles++
		}
		s.max = seq
		w, m := s.bit(seq)
		s.seen[w] |= m
		s.unique++
		return d - 1, true
	case d > 0 || d < -maxMisseq:
		s.expected += s.span()
		s.restart(seq)
		return 0, true
	case d > -seqWindow:
		w, m := s.bit(seq)
		if s.seen[w]&m != 0 {
			s.dup++
			return 0, false
		}
		s.seen[w] |= m
		s.unique++
		s.reordered++
		return 0, false
	default:
		// Too far back to remember: counted as reordered.
		s.unique++
		s.reordered++
		return 0, false
	}
}

func (s *seqStats) restart(seq uint16) {
	s.init, s.max, s.first, s.cycles = true, seq, seq, 0
	s.seen = [seqWindow / 64]uint64{}
	w, m := s.bit(seq)
	s.seen[w] |= m
	s.unique++
}

// span is the number of packets the current run should have had.
func (s *seqStats) span() uint64 {
	return s.cycles<<16 + uint64(s.max) - uint64(s.first) + 1
}

// lost is the number of packets expected but never received.
func (s *seqStats) lost() uint64 {
	if !s.init {
		return 0
	}
	exp := s.expected + s.span()
	if exp < s.unique {
		return 0
	}
	return exp - s.unique
}
