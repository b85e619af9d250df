// Package eam makes hashcall a Microsoft Entra ID external MFA provider
// (external authentication method, EAM): the "Call me" factor of a
// Conditional Access sign-in. Entra sends the user's browser to the
// authorization endpoint with an id_token_hint naming the user; the page
// calls the user's phone through the verify service (scope "eam", so the
// service's policy and limits apply), and once the callee presses # it
// posts a signed id_token back to Entra (response_mode form_post).
//
// Endpoints, under the issuer's path (eam.issuer):
//
//	GET  /.well-known/openid-configuration   OIDC Discovery 1.0 §4
//	GET  /keys                               the JWKS: every signing key, with x5c
//	POST /authorize (GET too)                OIDC Core 1.0 §3.2.2, form_post
//	GET  /s/{id}                             the user's page
//	GET  /s/{id}/status                      its status, JSON, polled by the page
//	POST /s/{id}/call, /cancel, /done        Call me (again), Cancel, and the answer
//
// The id_token_hint is checked against Entra's keys (by kid, RS256 only),
// its iss must be https://login.microsoftonline.com/{tid}/v2.0 with tid in
// eam.tenants, its aud in eam.hint_audiences. Entra issues it already
// expired, so its age is bounded by iat (eam.hint_max_age) rather than by
// exp. Each (nonce, state) is accepted once. A request that fails any of
// these, or names another client_id or a redirect_uri not in
// eam.redirect_uris, gets an error page and nothing is posted back.
//
// The answer: id_token with iss, aud (the request's client_id), sub (the
// hint's), nonce, iat, exp (10 min), acr "possessionorinherence", amr
// ["tel"] and jti; or error access_denied (wrong key, no answer, cancel,
// no number) or temporarily_unavailable (trunk down, limits), with state.
//
// The number called is the user's enrolled one (Enrolments, by tid and
// oid), else the directory's (by oid, then UPN); with eam.enrolment self a
// user with neither enters one, which is enrolled only after a verified
// call to it.
package eam
