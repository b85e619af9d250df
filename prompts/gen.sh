#!/bin/sh
# Regenerates every default prompt WAV from the text file beside it:
#
#   <locale>/<name>.txt  ->  <locale>/<name>.wav
#   <locale>/ask.txt      ->  <locale>/ask.json        {"press_at_ms": N}
#   <locale>/ask_code.txt ->  <locale>/ask_code.json   {"press_at_ms": N}
#
# press_at_ms is where the ask prompt's phrase that asks for keys starts:
# "press the hash (pound) key" in ask, "enter the code" in ask_code (mode
# code); keys heard before it do not count (verify's early-key guard). It
# is measured, not guessed: the text before the first "press" ("enter")
# is spoken alone and processed the same way, its speech (trailing pause
# trimmed) ends at t; the onset of sound after t in the whole prompt, past
# the comma's pause, is the phrase's start.
#
# Needs espeak-ng and sox. The WAVs are committed and embedded by prompts.go;
# run this only after changing a text (or adding a locale: give it a voice
# below), then run `go test ./prompts/`.
#
# Output: 8000 Hz mono PCM 16-bit, band-limited to the telephone band
# (300–3400 Hz), trimmed, with 150 ms of silence before the speech and 200 ms
# after it. The level is set in two passes so that every prompt's speech has
# the same loudness: the RMS of the trimmed speech is measured and a gain
# brings it to TARGET_DBM0 (−20 dBm0, a usual level for telephone
# announcements), limited so that peaks stay at or below PEAK_DBFS.
#
# The output is deterministic: no dither (-D), repeatable sox (-R), and
# espeak-ng synthesises the same samples for the same text, voice and speed.
# A different espeak-ng or sox version may produce slightly different audio;
# these files were made with espeak-ng 1.51 and SoX 14.4.2.
set -eu
cd "$(dirname "$0")"

SPEED=150         # words per minute: clear, unhurried
TARGET_DBM0=-20   # RMS of the speech, in dBm0
PEAK_DBFS=-3      # highest allowed peak, in dBFS
LEAD=0.15         # seconds of silence before the speech
TAIL=0.2          # seconds of silence after it

# dBm0 to dBFS-RMS: a 0 dBm0 sine peaks 3.14 dB below full scale (G.711),
# and a sine's RMS is 3.01 dB below its peak.
DBM0_TO_DBFS=-6.15

for tool in espeak-ng sox awk; do
	command -v "$tool" >/dev/null 2>&1 || { echo "gen.sh: $tool not found (apt-get install espeak-ng sox)" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

voice_for() {
	case "$1" in
	en-GB) echo en-gb ;;
	en-US) echo en-us ;;
	*) echo "gen.sh: no espeak-ng voice configured for locale $1" >&2; return 1 ;;
	esac
}

# stat FILE KEY prints the value of a `sox stats` line, e.g. "RMS lev dB".
stat() {
	sox "$1" -n stats 2>&1 | awk -v key="$2" 'index($0, key) == 1 { print $NF }'
}

for dir in */; do
	locale=${dir%/}
	set -- "$locale"/*.txt
	[ -e "$1" ] || continue
	voice=$(voice_for "$locale")
	for txt do
		name=${txt%.txt}
		# 1. Speak (22050 Hz), band-limit, resample, trim silence at both
		#    ends, fade the edges over 10 ms. Kept as float to avoid a
		#    second rounding.
		espeak-ng -v "$voice" -s "$SPEED" -f "$txt" -w "$tmp/speech.wav"
		sox -D -R "$tmp/speech.wav" -e floating-point -b 32 "$tmp/band.wav" \
			highpass 300 lowpass 3400 rate -v 8000 \
			silence 1 0.01 -45d reverse silence 1 0.01 -45d \
			fade t 0.01 reverse fade t 0.01
		# 2. Gain to the target level, limited by the peak.
		rms=$(stat "$tmp/band.wav" "RMS lev dB")
		peak=$(stat "$tmp/band.wav" "Pk lev dB")
		gain=$(awk -v t="$TARGET_DBM0" -v c="$DBM0_TO_DBFS" -v r="$rms" -v p="$peak" -v m="$PEAK_DBFS" \
			'BEGIN { g = t + c - r; if (p + g > m) g = m - p; printf "%.2f", g }')
		# 3. Pad and write 8 kHz mono PCM 16-bit.
		sox -D -R "$tmp/band.wav" -r 8000 -c 1 -e signed-integer -b 16 "$name.wav" \
			gain "$gain" pad "$LEAD" "$TAIL"
		printf '%s: %s s, gain %s dB\n' "$name.wav" "$(soxi -D "$name.wav")" "$gain"
		case "${name##*/}" in
		ask) marker=press ;;
		ask_code) marker=enter ;;
		*) continue ;;
		esac
		# 4. The press point: the prefix's speech, trimmed at both ends like
		#    the whole, ends at t after the speech's start; the whole
		#    prompt's sound resumes after t (the silence effect drops the
		#    pause); LEAD comes before both.
		text=$(cat "$txt")
		prefix=${text%%"$marker"*}
		[ "$prefix" != "$text" ] || { echo "gen.sh: $txt has no \"$marker\"" >&2; exit 1; }
		printf '%s' "$prefix" | espeak-ng -v "$voice" -s "$SPEED" -w "$tmp/prefix.wav"
		sox -D -R "$tmp/prefix.wav" -e floating-point -b 32 "$tmp/prefix8k.wav" \
			highpass 300 lowpass 3400 rate -v 8000 \
			silence 1 0.01 -45d reverse silence 1 0.01 -45d reverse
		t=$(soxi -D "$tmp/prefix8k.wav")
		sox -D -R "$tmp/band.wav" "$tmp/rest.wav" trim "$t" silence 1 0.01 -45d
		whole=$(soxi -D "$tmp/band.wav")
		rest=$(soxi -D "$tmp/rest.wav")
		at=$(awk -v l="$LEAD" -v w="$whole" -v r="$rest" 'BEGIN { printf "%d", (l + w - r) * 1000 }')
		printf '{"press_at_ms": %s}\n' "$at" >"$name.json"
		printf '%s: press_at_ms %s\n' "$name.json" "$at"
	done
done
