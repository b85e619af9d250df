// Package interop holds hashcall's real-peer interoperability tests (its
// test files only): real calls from hashcall's SIP user agent and verifier
// (and from the built `hashcall call` binary) through Kamailio as the SIP
// trunk, to SIPp UAS scenarios and registered softphones, all on 127.0.0.1;
// and of the built `hashcall serve` daemon, asked for verifications by Go
// HTTP clients (serve_test.go).
//
// The lab (lab_test.go), per test:
//
//   - Kamailio 5.6 (Debian package kamailio) from testdata/kamailio.cfg, a
//     text/template: registrar and proxy with digest authentication and no
//     database. It answers REGISTER with 401 and INVITE with 407 (realm
//     interop.hashcall.test), and routes an INVITE by its Request-URI user:
//     test numbers to SIPp, 2001 and 2002 to the registered phones baresip
//     and linphone, anything else to the location table. Users: hashcall /
//     s3cret, baresip / baresip-pw, linphone / linphone-pw.
//   - One SIPp 3.6 UAS (Debian package sip-tester) per call, from
//     testdata/sipp/<scenario>.xml, exactly one call (-m 1), or one for an
//     exact number of calls (-m N, as many at once as come): its exit status
//     says whether the scenario ran to its end for every call, and its
//     statistics screen how many calls it took.
//   - The RTP SIPp plays (play_pcap_audio, which needs root) is either SIPp's
//     own RFC 4733 captures in /usr/share/sip-tester or G.711 captures that
//     pcap_test.go generates at test time (in-band #, 5, silence, early-media
//     #); none is committed.
//
// Test numbers (testdata/sipp):
//
//	9001 rfc4733_pound       RFC 4733 # (SIPp's dtmf_2833_pound.pcap)   verified
//	9002 rfc4733_five        RFC 4733 5 (SIPp's dtmf_2833_5.pcap)       wrong_key
//	9003 inband_pound_pcmu   in-band # in PCMU                          verified
//	9004 inband_pound_pcma   in-band # in PCMA                          verified
//	9005 inband_five         in-band 5 in PCMU                          wrong_key
//	9006 silent              answers, sends silence                     no_key
//	9007 busy                486 Busy Here                              busy
//	9008 decline             603 Decline                                declined
//	9009 not_found           404 Not Found                              unreachable
//	9010 ring_forever        180, then 487 to our CANCEL                no_answer
//	9011 early_media_pound   183 with an in-band # in early media, then
//	                         a silent 200                               no_key
//	9012 sip_info_pound      # by SIP INFO through the proxy            verified
//	9013 hangup              far end sends BYE                          hung_up
//	9014 reinvite_pound      re-INVITE, then RFC 4733 #                 verified
//	9015 cancel_crossed_200  180; at our CANCEL a 200 (SDP), our ACK and
//	                         BYE (either order), then the CANCEL's 200  no_answer
//	9016 reinvite_move_pound silence from media port P, re-INVITE that
//	                         moves the media to P + 2, RFC 4733 # from
//	                         there                                      verified
//	9017 cancel_crossed_481  180; at our CANCEL a 200, 481 to the
//	                         CANCEL, the 200 again until our ACK; BYE
//	                         (called directly: SIPp as the trunk)       no_answer
//	9018 stream_rfc4733_pound RTP from its ACK on (generated), RFC
//	                         4733 # 2 s in                              verified
//	9019 hash_on_answer_rfc4733  RFC 4733 # the instant it answers      no_key
//	9020 hash_on_answer_inband   in-band # the instant it answers       no_key
//	9021 hash_early_and_again    # on answer, again 2.2 s in            verified
//	9030 info_pound_late     # by SIP INFO through the proxy 2 s after
//	                         the answer; the attack tests strike first  verified
//	9040 forwarded_181       181, then 487 to our CANCEL                diverted
//	9041 diverted_183        183 (SDP) with Diversion, then 487 to our
//	                         CANCEL                                     diverted
//	9042 diverted_200        200 with Diversion and History-Info, no
//	                         key                                        diverted
//	                         (verify.on_diversion: flag: no_key, "diverted": true)
//	9043 voicemail_greeting  plays voicemail_pcmu.pcap, written by the
//	                         test: a greeting and a beep               voicemail
//	                         (or "hello?" and an in-band #: verified)
//	9026 code_play           plays code.pcap, written by the test after
//	                         hashcall serve's 202 gave the code: a code
//	                         keyed (mode code; code_test.go)       verified
//	                         or wrong_code, or no_key (keyed on answer)
//	9027 code_info           keys a code by SIP INFO, one INFO per key,
//	                         the keys from an injection file (-inf)
//	                         the test writes after the 202        verified
//	                         or wrong_code
//
// The phones that press (9001–9005, 9012, 9014, 9016, 9018, 9030, the
// softphones) do so 2 s after the answer, as a callee would: after
// verify.min_key_delay (1.5 s, its default here) and the cut ask prompt's
// press point (0.5 s). attack_test.go holds the media attacks of issue 8,
// named after them: a spoofed first RTP packet from the phone's SDP address
// (raw socket), a first sender with symmetric latching, # played on answer.
//
// attack_sip_test.go attacks the dialog of a call to 9030: a stranger's INFO,
// re-INVITE, UPDATE and BYE from a fresh socket, straight to hashcall and
// through Kamailio (which relays in-dialog requests by their Route), with
// made-up tags or with the right ones read off the phone's message log; a
// stranger's forged 200 (own SDP, then RFC 4733 #) to a call ringing at
// 9010; and a stranger's OPTIONS to the built `hashcall serve` (403, on
// /metrics; 200 once a SIGHUP has taken sip.trusted_sources 127.0.0.0/8).
//
// golden_test.go records replay's golden captures kamailio-sipp-* (9001,
// 9004, 9011, captured by tshark) into ../../replay/testdata, only with
// HASHCALL_RECORD_GOLDEN=1, and keeps one only when its replay agrees
// with the live call.
//
// dialog_test.go holds the dialog edge cases 9015 to 9017. Kamailio answers
// our CANCEL itself and relays the late 200 (a proxy forwards every 2xx), so
// 9015 crosses through the proxy; the far end's 481 to a CANCEL never passes
// it, hence 9017 direct. While 9016 plays, the test also sends an RFC 4733 5
// from the old port P after the move, through a raw socket (root) as SIPp
// does, which hashcall must drop.
//
// Each test number 90xx is also routed under the UK mobile number
// +447700900xxx (Ofcom's drama range: 9001 is +447700900001), which
// `hashcall serve`'s default policy (UK mobiles only) lets through, and
// +447700900200 to +447700900299 (the pool) all reach one SIPp UAS that a
// test starts for many calls at once (serve_test.go: 100 parallel
// verifications).
//
// eam_test.go signs in to the built `hashcall serve`'s Entra ID external
// MFA provider (eam.*) with headless Chromium (Debian chromium, driven with
// chromedp, a fresh profile per test): a test Entra (internal/eam/eamtest)
// signs the hints and serves its JWKS over HTTPS (trusted by the binary
// through SSL_CERT_FILE), a local HTTPS redirect_uri records the answer,
// and go-oidc checks the id_token against hashcall's discovery and JWKS.
// The phones are the SIPp scenarios above (9001 #, 9002 5, 9010 no answer;
// the pool, busy, for the POST → INVITE figure); screenshots go to
// t.ArtifactDir() (go test -artifacts keeps them).
//
// Ports are the first free ones from: Kamailio 25060, SIPp SIP 25100,
// SIPp media 26000 (even), hashcall RTP 26500, hashcall serve's HTTP 25800
// (TCP), its eam listener 25960 (TCP) and RTP range 29000 (clear of internal/testpeers, which runs at the same time), a dead trunk address 25700 (nothing listens);
// never 5060 or 6000. The completion-callback
// receiver of the serve tests is an httptest server on 127.0.0.1. Every
// process runs in its own process group, is ended by its PID (SIGTERM, then
// SIGKILL) when its test ends, and dies with the test binary (Pdeathsig).
// Logs go to the test's temporary folder and are printed when a test fails,
// or always with HASHCALL_INTEROP_LOGS=1.
//
// radius_test.go runs the RADIUS front of the built `hashcall serve`: the
// NAS is radclient (PAP, MS-CHAPv2) or eapol_test (PEAP), the upstream a
// FreeRADIUS 3.2 with a configuration written by the test (`freeradius -X`,
// as root, its own ports: auth 25900, inner-tunnel 25920 and up; hashcall's
// RADIUS listener 25940 and up), the phones SIPp behind Kamailio. It also
// runs configs/examples/freeradius-rest (FreeRADIUS calling the HTTP hook).
//
// Without kamailio or sipp the tests skip naming the Debian package, and
// scenarios that play RTP skip when not root; with HASHCALL_REQUIRE_PEERS=1
// (CI) they fail instead. Run them with
//
//	go test -race -count=1 -v ./internal/interop/
package interop
