// tlsload: TLS handshakes per second against one address, the way bench/tls.sh needs them and
// wrk cannot give them (wrk resumes its sessions). CONCURRENCY connections at a time on one epoll
// loop; each one connects, completes a handshake, sends one request with `Connection: close`,
// reads the answer to the end and starts over. No session is offered (full handshakes) unless
// `resume` is given, then each slot offers the session its previous connection got.
//
//   cc -O2 -o tlsload bench/tlsload.c -lssl -lcrypto
//   tlsload HOST PORT SECONDS CONCURRENCY [resume]
// prints: `handshakes N seconds S rate R/s resumed K errors E`
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct slot {
    int fd;
    SSL *ssl;
    SSL_SESSION *session;
    int state; // 0 handshake, 1 write, 2 read
    size_t sent;
};

static const char request[] = "GET / HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n";
static struct sockaddr_in target;
static SSL_CTX *ctx;
static int ep, resume;
static long done, resumed, errors;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void start(struct slot *s) {
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(s->fd, (struct sockaddr *)&target, sizeof target) < 0 && errno != EINPROGRESS) {
        perror("connect");
        exit(1);
    }
    s->ssl = SSL_new(ctx);
    SSL_set_fd(s->ssl, s->fd);
    SSL_set_tlsext_host_name(s->ssl, "bench.test");
    if (resume && s->session) SSL_set_session(s->ssl, s->session);
    SSL_set_connect_state(s->ssl);
    s->state = 0;
    s->sent = 0;
    struct epoll_event e = { .events = EPOLLOUT | EPOLLIN, .data.ptr = s };
    epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &e);
}

static void finish(struct slot *s, int ok) {
    if (ok) {
        // A clean end: SSL_free would otherwise mark the session it holds as not resumable.
        SSL_set_shutdown(s->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        done++;
        if (SSL_session_reused(s->ssl)) resumed++;
        if (resume) {
            SSL_SESSION *next = SSL_get1_session(s->ssl);
            if (s->session) SSL_SESSION_free(s->session);
            s->session = next;
        }
    } else {
        errors++;
        if (s->session) { SSL_SESSION_free(s->session); s->session = NULL; }
    }
    ERR_clear_error();
    epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
    SSL_free(s->ssl);
    close(s->fd);
    start(s);
}

static void want(struct slot *s, int r) {
    int err = SSL_get_error(s->ssl, r);
    struct epoll_event e = { .data.ptr = s };
    if (err == SSL_ERROR_WANT_READ) e.events = EPOLLIN;
    else if (err == SSL_ERROR_WANT_WRITE) e.events = EPOLLOUT;
    else { finish(s, 0); return; }
    epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &e);
}

static void step(struct slot *s) {
    for (;;) {
        if (s->state == 0) {
            int r = SSL_do_handshake(s->ssl);
            if (r != 1) { want(s, r); return; }
            s->state = 1;
        } else if (s->state == 1) {
            int r = SSL_write(s->ssl, request + s->sent, (int)(sizeof request - 1 - s->sent));
            if (r <= 0) { want(s, r); return; }
            s->sent += r;
            if (s->sent == sizeof request - 1) s->state = 2;
        } else {
            char buf[16384];
            int r = SSL_read(s->ssl, buf, sizeof buf);
            if (r > 0) continue;
            int err = SSL_get_error(s->ssl, r);
            if (err == SSL_ERROR_ZERO_RETURN || err == SSL_ERROR_SYSCALL || err == SSL_ERROR_SSL) {
                // The server closed after its answer (close_notify or FIN): one round done.
                finish(s, err != SSL_ERROR_SSL || ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING);
                return;
            }
            want(s, r);
            return;
        }
    }
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s HOST PORT SECONDS CONCURRENCY [resume]\n", argv[0]);
        return 2;
    }
    target.sin_family = AF_INET;
    target.sin_port = htons((unsigned short)atoi(argv[2]));
    inet_pton(AF_INET, argv[1], &target.sin_addr);
    double seconds = atof(argv[3]);
    int concurrency = atoi(argv[4]);
    resume = argc > 5 && strcmp(argv[5], "resume") == 0;
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ctx, resume ? SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE : SSL_SESS_CACHE_OFF);
    if (!resume) SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    ep = epoll_create1(0);
    struct slot *slots = calloc((size_t)concurrency, sizeof *slots);
    double begin = now(), end = begin + seconds;
    for (int i = 0; i < concurrency; i++) start(&slots[i]);
    struct epoll_event events[256];
    while (now() < end) {
        int n = epoll_wait(ep, events, 256, 100);
        for (int i = 0; i < n; i++) step(events[i].data.ptr);
    }
    double elapsed = now() - begin;
    printf("handshakes %ld seconds %.2f rate %.0f/s resumed %ld errors %ld\n", done, elapsed, done / elapsed, resumed, errors);
    return 0;
}
