// Package radius is hashcall's RADIUS front for VPN concentrators, Wi-Fi
// controllers and Remote Desktop Gateway: a proxy that sits between the NAS
// and the RADIUS server the organisation already has (NPS, FreeRADIUS), keeps
// that server's password check, and adds hashcall's verification call.
//
// An Access-Request from a configured client (CIDR and shared secret) is
// forwarded to the upstream unchanged apart from what RFC 2865 requires of a
// proxy: User-Password re-hidden with the upstream's secret (§5.2), a
// Proxy-State of our own appended (§5.33), Message-Authenticator recomputed
// (RFC 3579 §3.2). The Request Authenticator is kept, so CHAP's challenge
// stays valid; PAP, CHAP, MS-CHAPv1/v2 and EAP all pass through without the
// proxy knowing the password. Access-Challenge rounds (EAP) go back to the
// NAS with their State. An upstream Access-Reject goes back at once and no
// call is placed. On an upstream Access-Accept the front asks the verify
// service (scope "radius") to call the user's number from the directory and
// answers the NAS with the upstream's Accept, unchanged apart from the
// Response Authenticator, Message-Authenticator and the MS-MPPE-Send/Recv-Key
// and Tunnel-Password attributes re-encrypted for the NAS's secret (RFC 2548
// §2.4.2–2.4.3, RFC 2868 §3.5), only when the outcome is verified; otherwise
// an Access-Reject whose Reply-Message names the outcome.
//
// Retransmissions (same source, Identifier and Request Authenticator) never
// start a second exchange: while the first runs they are dropped, afterwards
// they get the same answer for radius.answer_cache. A request for a user
// whose call is running joins that call. Requests from unknown sources, and
// Access-Requests without a valid Message-Authenticator (BlastRADIUS), are
// dropped and counted.
package radius
