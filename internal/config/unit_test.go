package config

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSystemdTimeoutStopSec: the systemd unit waits for the longest stop
// the configuration allows (MaxShutdownGrace, then StopOverhead) before it
// kills hashcall, so a drain is never cut short by SIGKILL.
func TestSystemdTimeoutStopSec(t *testing.T) {
	const path = "../../configs/hashcall.service"
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stop time.Duration
	var found, inService bool
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			inService = line == "[Service]"
			continue
		}
		v, ok := strings.CutPrefix(line, "TimeoutStopSec=")
		if !ok || !inService {
			continue
		}
		stop, err = parseSystemdSpan(v)
		if err != nil {
			t.Fatalf("%s: TimeoutStopSec=%s: %v", path, v, err)
		}
		found = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Fatalf("%s has no TimeoutStopSec in [Service] (systemd's default, 90 s, is shorter than the largest grace)", path)
	}
	if need := MaxShutdownGrace + StopOverhead; stop < need {
		t.Errorf("%s: TimeoutStopSec %v, want at least %v (shutdown.grace up to %v, then %v)", path, stop, need, MaxShutdownGrace, StopOverhead)
	}
	// The largest grace is the one validation accepts.
	c := Default()
	c.Shutdown.Grace = MaxShutdownGrace
	if err := c.Validate(); err != nil {
		t.Errorf("shutdown.grace %v: %v", MaxShutdownGrace, err)
	}
	c.Shutdown.Grace = MaxShutdownGrace + time.Second
	if err := c.Validate(); err == nil {
		t.Errorf("shutdown.grace %v accepted: MaxShutdownGrace is not the validation's maximum", c.Shutdown.Grace)
	}
}

// parseSystemdSpan reads a systemd time span as the unit uses it: plain
// seconds, or Go-style units (systemd.time(7): "5min 20s" is written
// 5m20s here).
func parseSystemdSpan(v string) (time.Duration, error) {
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(strings.ReplaceAll(strings.ReplaceAll(v, "min", "m"), " ", ""))
}
