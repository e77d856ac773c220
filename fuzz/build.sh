#!/bin/sh
# Builds the libFuzzer target for the HTTP request parser: the parser's own source files
# (Sources/Engine/HTTP, which need nothing else of the Engine module) and fuzz/RequestParserFuzz.swift
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
swiftc -parse-as-library -module-name RequestParserFuzz -O -g \
    -sanitize="$sanitizers" -use-ld=lld \
    -module-cache-path "$out/module-cache" \
    Sources/Engine/HTTP/*.swift fuzz/RequestParserFuzz.swift \
    -o "$out/request-parser-fuzz"
echo "built $out/request-parser-fuzz"
