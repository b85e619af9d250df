#!/bin/sh
# Regenerates the WAV test files. Needs sox and python3. The files are
# committed; run this only to change them, then update reader_test.go.
set -eu
cd "$(dirname "$0")"
S="sox -D -R -r 8000 -c 1 -n"
# sox-written files (sox picks WAVE_FORMAT_EXTENSIBLE only above 16 bits).
$S -r 8000 -c 1 -b 16 -e signed-integer pcm16_8k_mono.wav synth 160s sine 1000 vol 0.5
$S -r 8000 -c 1 -b 8 -e u-law ulaw_8k_mono.wav synth 160s sine 1000 vol 0.5
$S -r 8000 -c 1 -b 8 -e a-law alaw_8k_mono.wav synth 160s sine 1000 vol 0.5
$S -r 8000 -c 1 -b 8 -e u-law ulaw_8k_mono_odd.wav synth 161s sine 1000 vol 0.5
$S -r 8000 -c 1 -b 8 -e unsigned-integer pcm8u_8k_mono.wav synth 80s sine 1000 vol 0.5
$S -r 8000 -c 1 -b 32 -e floating-point float32_8k_mono.wav synth 40s sine 1000 vol 0.5
$S -r 8000 -c 1 -b 24 -e signed-integer pcm24_8k_mono_ext.wav synth 40s sine 1000 vol 0.5
sox -D -R -r 44100 -c 2 -n -b 16 -e signed-integer pcm16_44k_stereo.wav synth 100s sine 1000 vol 0.5
# What sox decodes the telephony files to: the expected 16-bit samples.
for f in pcm16_8k_mono ulaw_8k_mono alaw_8k_mono; do
	sox $f.wav -t raw -e signed-integer -b 16 -L $f.s16
done
# Hand-made variants of pcm16_8k_mono.wav and ulaw_8k_mono.wav.
python3 - <<'PY'
import struct

def chunks(path):
    b = open(path, "rb").read()
    out, i = [], 12
    while i + 8 <= len(b):
        cid, size = b[i:i+4], struct.unpack("<I", b[i+4:i+8])[0]
        out.append((cid, b[i+8:i+8+size]))
        i += 8 + size + (size & 1)
    return dict(out)

def riff(body, size=None, form=b"RIFF"):
    return form + struct.pack("<I", len(body) + 4 if size is None else size) + b"WAVE" + body

def chunk(cid, data, size=None):
    pad = b"\0" if len(data) & 1 else b""
    return cid + struct.pack("<I", len(data) if size is None else size) + data + pad

guid_tail = bytes([0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71])

def extensible(tag, ch, rate, bits, valid, mask, subtag, tail=guid_tail):
    align = ch * bits // 8
    return struct.pack("<HHIIHHHHI", 0xFFFE, ch, rate, rate * align, align, bits, 22, valid, mask) + struct.pack("<H", subtag) + tail

pcm = chunks("pcm16_8k_mono.wav")
ulaw = chunks("ulaw_8k_mono.wav")
fmt16, data16 = pcm[b"fmt "], pcm[b"data"]

w = lambda name, b: open(name, "wb").write(b)
w("pcm16_8k_mono_ext.wav", riff(chunk(b"fmt ", extensible(0xFFFE, 1, 8000, 16, 16, 4, 1)) + chunk(b"data", data16)))
w("ulaw_8k_mono_ext.wav", riff(chunk(b"fmt ", extensible(0xFFFE, 1, 8000, 8, 8, 4, 7)) + chunk(b"fact", struct.pack("<I", len(ulaw[b"data"]))) + chunk(b"data", ulaw[b"data"])))
# An extensible file whose sub-format GUID is not a wave format tag (KSDATAFORMAT_SUBTYPE_AC3 style).
w("unknown_guid_ext.wav", riff(chunk(b"fmt ", extensible(0xFFFE, 1, 8000, 16, 16, 4, 0x2000, bytes(14))) + chunk(b"data", data16)))
info = b"INFO" + chunk(b"ISFT", b"hashcall\0") + chunk(b"ICMT", b"odd!")  # ISFT is 9 bytes: padded
w("pcm16_8k_mono_list.wav", riff(chunk(b"LIST", info) + chunk(b"fmt ", fmt16) + chunk(b"JUNK", b"abc") + chunk(b"data", data16) + chunk(b"LIST", info)))
w("pcm16_8k_mono_stream.wav", riff(chunk(b"fmt ", fmt16) + chunk(b"data", data16, size=0xFFFFFFFF), size=0xFFFFFFFF))
w("pcm16_8k_mono_size0.wav", riff(chunk(b"fmt ", fmt16) + chunk(b"data", data16, size=0), size=0))
ds64 = struct.pack("<QQQI", 0xFFFFFFFF, len(data16), len(data16) // 2, 0)
w("pcm16_8k_mono_rf64.wav", riff(chunk(b"ds64", ds64) + chunk(b"fmt ", fmt16) + chunk(b"data", data16, size=0xFFFFFFFF), size=0xFFFFFFFF, form=b"RF64"))
whole = open("pcm16_8k_mono.wav", "rb").read()
w("truncated_header.wav", whole[:30])
w("truncated_data.wav", whole[:44 + 100])
w("no_data.wav", riff(chunk(b"fmt ", fmt16)))
w("data_before_fmt.wav", riff(chunk(b"data", data16) + chunk(b"fmt ", fmt16)))
w("not_wave.wav", b"RIFF" + struct.pack("<I", 4) + b"AVI ")
PY
