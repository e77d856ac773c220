#!/bin/sh
# Builds the libFuzzer targets: the HTTP request parser's own source files (Sources/HTTP1, a module
# of its own) and fuzz/RequestParserFuzz.swift compiled together as one module, and the same for the
# TCP layer's parsers (Sources/TCPWire: the PROXY protocol header, the TLS ClientHello) with
# fuzz/TCPWireFuzz.swift; with libFuzzer and AddressSanitizer. Linux, Swift 5.9 or later.
#
#   fuzz/build.sh                     # -> fuzz/.build/request-parser-fuzz, fuzz/.build/tcp-wire-fuzz
#   fuzz/.build/tcp-wire-fuzz -max_len=2048 -max_total_time=600
#   SANITIZERS=fuzzer fuzz/build.sh   # without AddressSanitizer (faster; Swift checks bounds anyway)
#
# See bench/README.md, "Fuzzing the request parser", for how to run it.
set -eu
cd "$(dirname "$0")/.."
out=fuzz/.build
mkdir -p "$out"
sanitizers=${SANITIZERS:-fuzzer,address}
swiftc -parse-as-library -module-name RequestParserFuzz -package-name strata -O -g \
    -sanitize="$sanitizers" -use-ld=lld \
    -module-cache-path "$out/module-cache" \
    Sources/HTTP1/*.swift fuzz/RequestParserFuzz.swift \
    -o "$out/request-parser-fuzz"
echo "built $out/request-parser-fuzz"
swiftc -parse-as-library -module-name TCPWireFuzz -package-name strata -O -g \
    -sanitize="$sanitizers" -use-ld=lld \
    -module-cache-path "$out/module-cache" \
    Sources/TCPWire/*.swift fuzz/TCPWireFuzz.swift \
    -o "$out/tcp-wire-fuzz"
echo "built $out/tcp-wire-fuzz"
