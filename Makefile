# hashcall — build, test, bench, fuzz.
#
# `make test` is the test command: it installs the Debian packages the tests
# need (when run as root and one is missing), then runs go vet, staticcheck,
# the race-enabled tests and the spandsp comparison.

GO          ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 10s

# Debian packages the tests use: talk-off corpora and generators (S rows),
# SIPp's RFC 4733 capture (R1), spandsp for the side-by-side comparison.
DEB_PACKAGES = asterisk-core-sounds-en-wav asterisk-moh-opsound-wav espeak-ng sox \
	sip-tester kamailio baresip-core linphone-cli tshark libspandsp-dev pkg-config gcc \
	chromium slapd ldap-utils \
	freeradius freeradius-utils freeradius-rest eapoltest \
	postgresql

.PHONY: all build test deps vet staticcheck unit spandsp bench fuzz load clean

all: build

build:
	$(GO) build -o bin/hashcall ./cmd/hashcall

test: deps vet staticcheck unit spandsp

# Idempotent and quick when everything is already installed.
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing:" $$missing; \
			(DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing || \
			 (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing)); \
		else \
			echo "not root: tests that need these will skip:" $$missing; \
		fi; \
	fi
	$(GO) mod download

vet:
	$(GO) vet ./...
	$(GO) vet -tags purego ./dtmf/...

staticcheck:
	$(STATICCHECK) ./...

unit:
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 -tags purego ./dtmf/...

# Side by side with Debian's libspandsp dtmf_rx (cgo, build tag spandsp):
# prints where the two disagree on the conformance rows and the speed ratio.
spandsp:
	$(GO) vet -tags spandsp ./dtmf/... ./tools/...
	$(GO) test -count=1 -tags spandsp -v -run 'Spandsp' ./dtmf/

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) test -run '^$$' -tags spandsp -bench 'Spandsp' -benchmem ./dtmf/

fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 100x $$pkg || exit 1; \
		done; \
	done

clean:
	rm -rf bin

# The load test (not part of `make test`): N calls at once from hashcall serve
# to SIPp phones on 127.0.0.1, and a SIPp caller doing the same wire work;
# prints set-up, #-to-decision, CPU, RSS per call, RTP pacing and drops.
# Needs root (tcpdump), sipp and tcpdump.
N ?= 2000
load: build
	@command -v tcpdump >/dev/null || { [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tcpdump; }
	$(GO) run ./tools/load -n $(N) -bin bin/hashcall
