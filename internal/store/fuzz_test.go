package store

import (
	"encoding/json"
	"reflect"
	"testing"
)

// roundTrip checks that what decodes re-encodes to something that decodes
// to the same value.
func roundTrip[T any](t *testing.T, decode func([]byte) (T, error), b []byte) {
	v, err := decode(b)
	if err != nil {
		return
	}
	again, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("re-encoding %#v: %v", v, err)
	}
	w, err := decode(again)
	if err != nil {
		t.Fatalf("decoding %s again: %v", again, err)
	}
	if !reflect.DeepEqual(v, w) {
		t.Fatalf("round trip changed %#v to %#v", v, w)
	}
}

func FuzzDecodeResult(f *testing.F) {
	f.Add([]byte(`{"outcome":"verified","to":"+4477*****123","started_at":"2026-03-01T10:00:00Z","ended_at":"2026-03-01T10:00:09Z","sip_code":200,"dtmf_source":"rfc4733","keys":"#"}`))
	f.Add([]byte(`{"outcome":"bogus"}`))
	f.Fuzz(func(t *testing.T, b []byte) { roundTrip(t, DecodeResult, b) })
}

func FuzzDecodeDialog(f *testing.F) {
	f.Add([]byte(`{"call_id":"c1","local_tag":"l","remote_tag":"r","remote_target":"sip:a@127.0.0.1","route_set":["<sip:127.0.0.1;lr>"],"cseq":2,"transport":"udp"}`))
	f.Fuzz(func(t *testing.T, b []byte) { roundTrip(t, DecodeDialog, b) })
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"to":"+4477*****123","locale":"en-GB","reference":"r","callback_url":"http://127.0.0.1/cb"}`))
	f.Fuzz(func(t *testing.T, b []byte) { roundTrip(t, DecodeRequest, b) })
}

func FuzzDecodeAuditDetail(f *testing.F) {
	f.Add([]byte(`{"sip_code":200,"keys":"#"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		// Numbers decode as float64; a round trip keeps them.
		roundTrip(t, DecodeAuditDetail, b)
	})
}
