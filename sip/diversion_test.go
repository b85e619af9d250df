package sip

import (
	"slices"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestDiversion(t *testing.T) {
	tests := []struct {
		name     string
		code     int
		headers  [][2]string
		diverted bool
		reasons  []string
	}{
		{name: "ringing_plain", code: 180},
		{name: "ok_plain", code: 200},
		{name: "181_alone", code: 181, diverted: true, reasons: []string{"forwarded"}},
		{name: "181_with_diversion", code: 181, headers: [][2]string{{"Diversion", "<sip:+447700900123@trunk.example>;reason=no-answer;counter=1"}},
			diverted: true, reasons: []string{"no-answer"}},
		{name: "183_diversion_unconditional", code: 183, headers: [][2]string{{"Diversion", "<sip:+447700900123@trunk.example>;reason=unconditional;counter=1;privacy=off"}},
			diverted: true, reasons: []string{"unconditional"}},
		{name: "200_diversion_quoted_reason_uppercase", code: 200, headers: [][2]string{{"Diversion", `"Bob" <tel:+447700900123>;reason="User-Busy"`}},
			diverted: true, reasons: []string{"user-busy"}},
		{name: "diversion_without_reason", code: 200, headers: [][2]string{{"Diversion", "<sip:1001@pbx>"}}, diverted: true},
		{name: "diversion_two_entries_one_header", code: 180, headers: [][2]string{{"Diversion", "<sip:2002@pbx>;reason=deflection, <sip:1001@pbx>;reason=unconditional"}},
			diverted: true, reasons: []string{"deflection", "unconditional"}},
		{name: "diversion_two_headers_same_reason_once", code: 200, headers: [][2]string{{"Diversion", "<sip:2002@pbx>;reason=unconditional"}, {"Diversion", "<sip:1001@pbx>;reason=unconditional"}},
			diverted: true, reasons: []string{"unconditional"}},
		// RFC 7044 §4.4 Reason in the retargeted entry, RFC 4458 causes.
		{name: "history_info_cause_302", code: 200, headers: [][2]string{{"History-Info", "<sip:+447700900123@trunk.example>;index=1, <sip:+447700900999@trunk.example?Reason=SIP%3Bcause%3D302%3Btext%3D%22Moved%22>;index=1.1;mp=1"}},
			diverted: true, reasons: []string{"unconditional"}},
		{name: "history_info_cause_486", code: 183, headers: [][2]string{{"History-Info", "<sip:alice@example.com?Reason=SIP%3Bcause%3D486>;index=1"}, {"History-Info", "<sip:voicemail@example.com>;index=1.1;mp=1"}},
			diverted: true, reasons: []string{"user-busy", "retargeted"}},
		{name: "history_info_unknown_cause", code: 200, headers: [][2]string{{"History-Info", "<sip:a@x?Reason=SIP%3Bcause%3D410>;index=1"}},
			diverted: true, reasons: []string{"cause=410"}},
		{name: "history_info_other_user_untagged", code: 200, headers: [][2]string{{"History-Info", "<sip:+447700900123@x>;index=1, <sip:+441632960000@x>;index=1.1"}},
			diverted: true, reasons: []string{"retargeted"}},
		{name: "history_info_our_request_only", code: 200, headers: [][2]string{{"History-Info", "<sip:+447700900123@trunk.example>;index=1"}}},
		{name: "history_info_registered_contact", code: 200, headers: [][2]string{{"History-Info", "<sip:bob@example.com>;index=1, <sip:bob-phone@192.0.2.4>;index=1.1;rc=1"}}},
		{name: "history_info_no_change", code: 200, headers: [][2]string{{"History-Info", "<sip:bob@example.com>;index=1, <sip:bob2@example.com>;index=1.1;np=1"}}},
		{name: "garbage_headers", code: 200, headers: [][2]string{{"History-Info", "<<<,,;;;?Reason=%zz"}, {"Diversion", ""}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := sip.NewResponse(tc.code, "x")
			for _, h := range tc.headers {
				r.AppendHeader(sip.NewHeader(h[0], h[1]))
			}
			var d Diversion
			d.add(r)
			if d.Diverted != tc.diverted || !slices.Equal(d.Reasons, tc.reasons) {
				t.Errorf("diverted %v reasons %q, want %v %q", d.Diverted, d.Reasons, tc.diverted, tc.reasons)
			}
		})
	}
}

// A diversion seen in a provisional response stays with the call, and the
// 200's reasons are added once.
func TestDiversionAccumulates(t *testing.T) {
	var d Diversion
	d.add(sip.NewResponse(180, "Ringing"))
	if d.Diverted {
		t.Fatal("180 diverted")
	}
	r := sip.NewResponse(181, "Call Is Being Forwarded")
	d.add(r)
	ok := sip.NewResponse(200, "OK")
	ok.AppendHeader(sip.NewHeader("Diversion", "<sip:1@x>;reason=no-answer"))
	d.add(ok)
	d.add(ok)
	if !d.Diverted || !slices.Equal(d.Reasons, []string{"forwarded", "no-answer"}) {
		t.Fatalf("%+v", d)
	}
}

func FuzzDiversion(f *testing.F) {
	f.Add(200, "<sip:+447700900123@trunk.example>;reason=unconditional;counter=1", "<sip:a@x?Reason=SIP%3Bcause%3D302>;index=1, <sip:b@x>;index=1.1;mp")
	f.Add(181, "", "")
	f.Fuzz(func(t *testing.T, code int, diversion, history string) {
		r := sip.NewResponse(100+(code%600+600)%600, "x")
		if diversion != "" {
			r.AppendHeader(sip.NewHeader("Diversion", diversion))
		}
		if history != "" {
			r.AppendHeader(sip.NewHeader("History-Info", history))
		}
		var d Diversion
		d.add(r)
		if len(d.Reasons) > 8 || (!d.Diverted && len(d.Reasons) > 0) {
			t.Fatalf("%+v", d)
		}
	})
}
