#!/bin/sh
# Installs what strata's build and its tests need on Debian (12 or later), as root (a container
# has no sudo) or through sudo. The README's quick start and .ci/run both start here.
#   libev-dev, libssl-dev       the event loop and OpenSSL 3 strata links
#   libc-ares-dev               c-ares, the DNS client of `resolvers` sections, which strata links
#   libcrypt-dev                libcrypt, crypt(3) for the password hashes of `userlist` sections
#   libnghttp2-dev              libnghttp2, HTTP/2 framing, HPACK and flow control for h2 listeners
#   nghttp2-client, python3-h2  the HTTP/2 tests drive strata with h2load and a frame-level python client
#   libxxhash-dev               xxHash, for the `xxh3`, `xxh32` and `xxh64` converters
#   zlib1g-dev                  zlib, for HTTP compression (`compression algo gzip|deflate|raw-deflate`)
#   libdeflate-dev              libdeflate, which compresses an answer of known small length in one
#                               call, about twice as fast as zlib's stream
#   dnsmasq-base                the service discovery tests serve DNS records from a real server
#                               (the binary alone: the dnsmasq package would also start a system
#                               DNS service on port 53)
#   openssl, curl               the TLS tests make certificates and talk HTTPS
#   haproxy                     tests compare strata's files and log lines with HAProxy's
#   chromium                    the stats page is tested in a real headless browser
#   python3-prometheus-client   the exporter's output is read by a real Prometheus parser
#   hatop, tmux                 HAProxy's curses client runs on strata's admin socket in a tmux window
#   prometheus                  its promtool checks the exporter's output (`promtool check metrics`)
# Without one of the test tools, `swift test` skips the tests that need it (and says so).
set -eu
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y \
    libev-dev libssl-dev libc-ares-dev libcrypt-dev libnghttp2-dev libxxhash-dev zlib1g-dev libdeflate-dev openssl curl nghttp2-client python3-h2 haproxy chromium \
    python3-prometheus-client dnsmasq-base \
    hatop tmux prometheus
