package replay

// Golden is a compact summary of a Report for regression files (the
// x.expected.json the project keeps beside each golden capture x.pcap):
// what must not change when the code does. Method and Call say how the
// capture was made (the phone's DTMF method, the live call's outcome); the
// Report does not fill them.
type Golden struct {
	Method   string        `json:"method,omitempty"`
	Call     string        `json:"call,omitempty"`
	Format   string        `json:"format"`
	Links    []string      `json:"link_types"`
	Calls    int           `json:"calls"`
	Streams  int           `json:"rtp_streams"`
	Keys     string        `json:"keys"`
	Accepted string        `json:"accepted"`
	Presses  []GoldenPress `json:"presses"`
}

// GoldenPress is one press in a Golden.
type GoldenPress struct {
	Digit  string `json:"digit"`
	Source string `json:"source"`
	Live   bool   `json:"live"`
	Reason string `json:"reason,omitempty"`
}

// Golden summarises r for a regression file.
func (r *Report) Golden() Golden {
	g := Golden{
		Format: r.Format, Links: r.LinkTypes, Calls: len(r.Calls),
		Keys: r.Keys(), Accepted: r.Accepted(), Presses: []GoldenPress{},
	}
	for _, s := range r.Streams {
		if s.Kind == "rtp" {
			g.Streams++
		}
	}
	for _, p := range r.Presses() {
		g.Presses = append(g.Presses, GoldenPress{Digit: p.Key.String(), Source: p.Source.String(), Live: p.Live, Reason: p.Reason})
	}
	return g
}
