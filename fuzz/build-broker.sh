#!/bin/sh
# Builds the libFuzzer target for the privilege broker's protocol and policy: ConfigModel (pure
# values), the Loader's file kinds and paths, Sources/Broker/BrokerMessage.swift and
# BrokerPolicy.swift, and fuzz/BrokerProtocolFuzz.swift compiled as one module (-D BROKER_FUZZ
# turns their module imports off), with libFuzzer and AddressSanitizer.
#
#   fuzz/build-broker.sh                     # -> fuzz/.build/broker-protocol-fuzz
#   SANITIZERS=fuzzer fuzz/build-broker.sh   # without AddressSanitizer
set -eu
cd "$(dirname "$0")/.."
out=fuzz/.build
mkdir -p "$out"
sanitizers=${SANITIZERS:-fuzzer,address}
swiftc -parse-as-library -module-name BrokerProtocolFuzz -package-name strata -O -g -D BROKER_FUZZ \
    -sanitize="$sanitizers" -use-ld=lld \
    -module-cache-path "$out/module-cache" \
    Sources/ConfigModel/*.swift \
    Sources/Loader/FileReader.swift Sources/Loader/FileSource.swift Sources/Loader/LoadPaths.swift Sources/Loader/SystemAccounts.swift \
    Sources/Broker/BrokerMessage.swift Sources/Broker/BrokerPolicy.swift fuzz/BrokerProtocolFuzz.swift \
    -o "$out/broker-protocol-fuzz"
echo "built $out/broker-protocol-fuzz"
