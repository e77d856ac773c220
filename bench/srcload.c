// srcload: HTTP/1.1 keep-alive load from many client addresses, the way bench/http.sh's stick-table
// case needs it and wrk cannot give it (wrk connects from one address). Each connection binds
// its own source address in 127.0.0.0/8, sends REQUESTS requests one after the other on it, reads
// each answer and closes; CONCURRENCY connections at a time on one epoll loop.
//
// Source k (0 <= k < SOURCES) is 127.0.0.0 + (k + 2) * 40503 mod 2^24: an odd multiplier is a
// bijection of the 24 bits, so every source is distinct, and they spread over the whole /8.
// 127.0.0.0, 127.0.0.1 and 127.255.255.255 come at multipliers 0, 6780807 and 9996409: SOURCES
// stays below the second.
//
//   cc -O2 -o srcload bench/srcload.c
//   srcload PORT SOURCES REQUESTS CONCURRENCY SECONDS
// SECONDS 0: one pass, each source connecting once, in order (fills a table). SECONDS > 0: runs
// that long, sources taken from a shuffled walk over all of them (each an entry already there).
// prints: `requests N connections C seconds S rate R/s errors E non2xx K`
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

struct slot {
    int fd;
    int left;       // requests still to send on this connection
    int connected;
    size_t sent;
    size_t have;    // bytes of the answer read so far
    char buf[8192];
};

static const char request[] = "GET / HTTP/1.1\r\nHost: bench.test\r\n\r\n";
static struct sockaddr_in target;
static int ep, per_conn;
static long sources, next_source, done, connections, errors, non2xx;
static double deadline;
static int timed;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static unsigned source_address(long k) {
    return htonl(0x7f000000u | (unsigned)(((unsigned long long)(k + 2) * 40503ULL) & 0xffffffULL));
}

// The next source, or -1 when a single pass is over.
static long take_source(void) {
    if (!timed) return next_source < sources ? next_source++ : -1;
    // A walk by a step coprime with SOURCES visits each once per round, out of fill order.
    return (next_source++ * 7919) % sources;
}

static int start(struct slot *s) {
    long k = take_source();
    if (k < 0) { s->fd = -1; return 0; }
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(s->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in from = { .sin_family = AF_INET, .sin_addr.s_addr = source_address(k) };
    if (bind(s->fd, (struct sockaddr *)&from, sizeof from) < 0) { perror("bind"); exit(1); }
    if (connect(s->fd, (struct sockaddr *)&target, sizeof target) < 0 && errno != EINPROGRESS) {
        perror("connect");
        exit(1);
    }
    s->left = per_conn;
    s->connected = 0;
    s->sent = 0;
    s->have = 0;
    struct epoll_event e = { .events = EPOLLOUT | EPOLLIN, .data.ptr = s };
    epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &e);
    connections++;
    return 1;
}

static void finish(struct slot *s, int failed) {
    if (failed) errors++;
    close(s->fd);
    s->fd = -1;
    if (!(timed && now() >= deadline)) start(s);
}

// A whole answer in the buffer: its length (head and Content-Length body), else 0; -1 if broken.
static long answer_length(struct slot *s, int *status) {
    s->buf[s->have < sizeof s->buf ? s->have : sizeof s->buf - 1] = 0;
    char *end = strstr(s->buf, "\r\n\r\n");
    if (!end) return s->have >= sizeof s->buf - 1 ? -1 : 0;
    if (strncmp(s->buf, "HTTP/1.", 7) != 0) return -1;
    *status = atoi(s->buf + 9);
    long length = -1;
    for (char *line = strstr(s->buf, "\r\n") + 2; line < end; line = strstr(line, "\r\n") + 2) {
        if (strncasecmp(line, "content-length:", 15) == 0) length = atol(line + 15);
    }
    if (length < 0) return -1;  // nginx's answer is sized; anything else is not this bench's
    long total = (end + 4 - s->buf) + length;
    return (long)s->have >= total ? total : 0;
}

static void step(struct slot *s, unsigned events) {
    if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN)) { finish(s, 1); return; }
    if (!s->connected && (events & EPOLLOUT)) {
        s->connected = 1;
        struct epoll_event e = { .events = EPOLLIN, .data.ptr = s };
        epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &e);
        s->sent = 0;
    }
    if (s->connected && s->sent < sizeof request - 1) {
        ssize_t n = send(s->fd, request + s->sent, sizeof request - 1 - s->sent, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN) { finish(s, 1); return; }
        if (n > 0) s->sent += n;
    }
    if (!(events & EPOLLIN)) return;
    for (;;) {
        ssize_t n = recv(s->fd, s->buf + s->have, sizeof s->buf - 1 - s->have, 0);
        if (n == 0) { finish(s, 1); return; }
        if (n < 0) {
            if (errno == EAGAIN) break;
            finish(s, 1);
            return;
        }
        s->have += n;
        int status = 0;
        long total = answer_length(s, &status);
        if (total < 0) { finish(s, 1); return; }
        if (total == 0) continue;
        done++;
        if (status < 200 || status >= 400) non2xx++;
        memmove(s->buf, s->buf + total, s->have - total);
        s->have -= total;
        if (--s->left == 0 || (timed && now() >= deadline)) { finish(s, 0); return; }
        s->sent = 0;
        ssize_t w = send(s->fd, request, sizeof request - 1, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN) { finish(s, 1); return; }
        if (w > 0) s->sent = w;
    }
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: srcload PORT SOURCES REQUESTS CONCURRENCY SECONDS\n");
        return 2;
    }
    target.sin_family = AF_INET;
    target.sin_port = htons(atoi(argv[1]));
    target.sin_addr.s_addr = htonl(0x7f000001);
    sources = atol(argv[2]);
    per_conn = atoi(argv[3]);
    int concurrency = atoi(argv[4]);
    double seconds = atof(argv[5]);
    timed = seconds > 0;
    if (sources < 1 || sources > 6780000 || per_conn < 1 || concurrency < 1) return 2;
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct slot *slots = calloc(concurrency, sizeof *slots);
    double begin = now();
    deadline = begin + seconds;
    int active = 0;
    for (int i = 0; i < concurrency; i++) active += start(&slots[i]);
    struct epoll_event events[256];
    while (active > 0) {
        int n = epoll_wait(ep, events, 256, 100);
        for (int i = 0; i < n; i++) step(events[i].data.ptr, events[i].events);
        active = 0;
        for (int i = 0; i < concurrency; i++) active += slots[i].fd >= 0;
        if (timed && now() >= deadline + 5) break;  // answers that never come
    }
    double elapsed = now() - begin;
    printf("requests %ld connections %ld seconds %.2f rate %.0f/s errors %ld non2xx %ld\n", done, connections,
           elapsed, done / elapsed, errors, non2xx);
    return 0;
}
