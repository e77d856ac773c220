#!/bin/sh
# Builds the libFuzzer target for the HTTP request parser: the parser's own source files
# (Sources/HTTP1, a module of its own) and fuzz/RequestParserFuzz.swift
# compiled together as one module, with libFuzzer and AddressSanitizer. Linux, Swift 5.9 or later.
#
#   fuzz/build.sh                     # -> fuzz/.build/request-parser-fuzz
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
