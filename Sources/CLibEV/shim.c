#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "CLibEV.h"

#include <crypt.h>
#include <xxhash.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <openssl/core_names.h>

_Static_assert(sizeof(ev_tstamp) == sizeof(double), "ev_tstamp is a double");

struct ev_loop *CLibEV_default_loop(unsigned int flags) { return ev_default_loop(flags); }
struct ev_loop *CLibEV_loop_new(unsigned int flags) { return ev_loop_new(flags); }

void CLibEV_io_init(ev_io *w, CLibEV_io_cb cb, int fd, int events) { ev_io_init(w, cb, fd, events); }
void CLibEV_io_set(ev_io *w, int fd, int events) { ev_io_set(w, fd, events); }
void CLibEV_timer_init(ev_timer *w, CLibEV_timer_cb cb, double after, double repeat) { ev_timer_init(w, cb, after, repeat); }
void CLibEV_timer_set(ev_timer *w, double after, double repeat) { ev_timer_set(w, after, repeat); }
void CLibEV_async_init(ev_async *w, CLibEV_async_cb cb) { ev_async_init(w, cb); }
void CLibEV_prepare_init(ev_prepare *w, CLibEV_prepare_cb cb) { ev_prepare_init(w, cb); }
void CLibEV_signal_init(ev_signal *w, CLibEV_signal_cb cb, int signum) { ev_signal_init(w, cb, signum); }
void CLibEV_child_init(ev_child *w, CLibEV_child_cb cb, int pid) { ev_child_init(w, cb, pid, 0); }
int CLibEV_is_active(const void *w) { return ev_is_active((const ev_watcher *)w); }
int CLibEV_is_pending(const void *w) { return ev_is_pending((const ev_watcher *)w); }
void CLibEV_set_data(void *w, void *data) { ((ev_watcher *)w)->data = data; }
void *CLibEV_get_data(const void *w) { return ((const ev_watcher *)w)->data; }
int CLibEV_io_fd(const ev_io *w) { return w->fd; }

int CLibEV_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) { return accept4(fd, addr, len, flags); }
ssize_t CLibEV_splice(int fd_in, int fd_out, size_t len, unsigned int flags) { return splice(fd_in, NULL, fd_out, NULL, len, flags); }
int CLibEV_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }
int CLibEV_pin_thread(const int *cpus, int count) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < count; i++) if (cpus[i] >= 0 && cpus[i] < CPU_SETSIZE) CPU_SET(cpus[i], &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}
int CLibEV_allowed_cpus(void) { cpu_set_t set; return sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0 ? CPU_COUNT(&set) : 1; }
int CLibEV_gettid(void) { return (int)syscall(SYS_gettid); }
int CLibEV_name_thread(const char *name) { return pthread_setname_np(pthread_self(), name); }
int CLibEV_malloc_trim(size_t pad) { return malloc_trim(pad); }
int CLibEV_pipe_set_size(int fd, int size) { return fcntl(fd, F_SETPIPE_SZ, size); }
int CLibEV_fcntl_setfl_nonblock(int fd) { int f = fcntl(fd, F_GETFL); return f < 0 ? f : fcntl(fd, F_SETFL, f | O_NONBLOCK); }
int CLibEV_fcntl_setfl_blocking(int fd) { int f = fcntl(fd, F_GETFL); return f < 0 ? f : fcntl(fd, F_SETFL, f & ~O_NONBLOCK); }
int CLibEV_fcntl_setfd_cloexec(int fd) { int f = fcntl(fd, F_GETFD); return f < 0 ? f : fcntl(fd, F_SETFD, f | FD_CLOEXEC); }
int CLibEV_fionread(int fd) { int n = 0; return ioctl(fd, FIONREAD, &n) < 0 ? -1 : n; }

const unsigned int CLibEV_SPLICE_F_MOVE = SPLICE_F_MOVE;
const unsigned int CLibEV_SPLICE_F_NONBLOCK = SPLICE_F_NONBLOCK;
const int CLibEV_SOCK_NONBLOCK = SOCK_NONBLOCK;
const int CLibEV_SOCK_CLOEXEC = SOCK_CLOEXEC;
const int CLibEV_O_NONBLOCK = O_NONBLOCK;

pid_t CLibEV_fork(void) { return fork(); }

int CLibEV_detach(void) {
    if (setsid() < 0) return errno;
    int fd = open("/dev/null", O_RDWR);
    if (fd < 0) return errno;
    dup2(fd, 0); dup2(fd, 1); dup2(fd, 2);
    if (fd > 2) close(fd);
    return 0;
}

int CLibEV_drop_privileges(uid_t uid, gid_t gid, int keep_bind_cap, const char **step) {
    // KEEPCAPS keeps the permitted set across setuid(); the effective set is then restored below.
    if (keep_bind_cap && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) { *step = "prctl(PR_SET_KEEPCAPS)"; return errno; }
    if (setgroups(0, NULL) < 0) { *step = "setgroups"; return errno; }
    if (setgid(gid) < 0) { *step = "setgid"; return errno; }
    if (setuid(uid) < 0) { *step = "setuid"; return errno; }
    if (!keep_bind_cap) return 0;
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2] = {{0}};
    uint32_t bit = 1u << CAP_NET_BIND_SERVICE;
    data[0].effective = bit; data[0].permitted = bit; data[0].inheritable = 0;
    if (syscall(SYS_capset, &hdr, data) < 0) { *step = "capset"; return errno; }
    return 0;
}

uint64_t CLibEV_effective_caps(void) {
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2] = {{0}};
    if (syscall(SYS_capget, &hdr, data) < 0) return 0;
    return ((uint64_t)data[1].effective << 32) | data[0].effective;
}

// MARK: the privilege broker

ssize_t CLibEV_send_with_fd(int sock, const void *buf, size_t len, int fd) {
    struct iovec iov = { (void *)buf, len };
    union { struct cmsghdr h; char space[CMSG_SPACE(sizeof(int))]; } control;
    memset(&control, 0, sizeof(control));
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (fd >= 0) {
        msg.msg_control = control.space;
        msg.msg_controllen = sizeof(control.space);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_RIGHTS; c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    ssize_t n;
    do { n = sendmsg(sock, &msg, MSG_NOSIGNAL); } while (n < 0 && errno == EINTR);
    return n;
}

ssize_t CLibEV_recv_with_fd(int sock, void *buf, size_t len, int *fd) {
    struct iovec iov = { buf, len };
    union { struct cmsghdr h; char space[CMSG_SPACE(sizeof(int) * 4)]; } control;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space, .msg_controllen = sizeof(control.space) };
    ssize_t n;
    do { n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); } while (n < 0 && errno == EINTR);
    if (n < 0) return n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int fds[4];
        memcpy(fds, CMSG_DATA(c), sizeof(int) * (count > 4 ? 4 : count));
        for (int i = 0; i < count && i < 4; i++) {
            // One fd a message: any other is closed, never leaked.
            if (i == 0 && *fd < 0) *fd = fds[i]; else close(fds[i]);
        }
    }
    return n;
}

void CLibEV_close_fds_except(int keep) {
    if (keep > 3) syscall(SYS_close_range, 3, keep - 1, 0);
    syscall(SYS_close_range, keep < 3 ? 3 : keep + 1, ~0U, 0);
}

static int set_caps(uint64_t keep) {
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2] = {{0}};
    data[0].effective = data[0].permitted = (uint32_t)keep;
    data[1].effective = data[1].permitted = (uint32_t)(keep >> 32);
    return (int)syscall(SYS_capset, &hdr, data);
}

static int drop_bounding(uint64_t keep, const char **step) {
    for (int cap = 0; cap <= 63; cap++) {
        if (keep & (1ull << cap)) continue;
        if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0) break;  // past the kernel's last capability
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) { *step = "prctl(PR_CAPBSET_DROP)"; return errno; }
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) { *step = "prctl(PR_CAP_AMBIENT_CLEAR_ALL)"; return errno; }
    return 0;
}

int CLibEV_broker_restrict(uint64_t keep, const char **step) {
    int e = drop_bounding(keep, step);
    if (e) return e;
    if (set_caps(keep) < 0) { *step = "capset"; return errno; }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) { *step = "prctl(PR_SET_NO_NEW_PRIVS)"; return errno; }
    return 0;
}

int CLibEV_set_dumpable(void) {
    if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0) return errno;
    struct rlimit limit;
    if (getrlimit(RLIMIT_CORE, &limit) == 0 && limit.rlim_cur != limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        if (setrlimit(RLIMIT_CORE, &limit) < 0) return errno;
    }
    return 0;
}

int CLibEV_drop_everything(uid_t uid, gid_t gid, const char *root, const char **step) {
    int e = drop_bounding(0, step);
    if (e) return e;
    if (root) {
        if (chroot(root) < 0) { *step = "chroot"; return errno; }
        if (chdir("/") < 0) { *step = "chdir(\"/\")"; return errno; }
    }
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) { *step = "prctl(PR_SET_KEEPCAPS)"; return errno; }
    if (setgroups(1, &gid) < 0) { *step = "setgroups"; return errno; }
    if (setgid(gid) < 0) { *step = "setgid"; return errno; }
    if (setuid(uid) < 0) { *step = "setuid"; return errno; }
    if (set_caps(0) < 0) { *step = "capset"; return errno; }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) { *step = "prctl(PR_SET_NO_NEW_PRIVS)"; return errno; }
    return 0;
}

int CLibEV_name_process(const char *name) { return prctl(PR_SET_NAME, name, 0, 0, 0); }
const int CLibEV_CAP_NET_BIND_SERVICE = CAP_NET_BIND_SERVICE;
const int CLibEV_CAP_DAC_READ_SEARCH = CAP_DAC_READ_SEARCH;
const int CLibEV_CAP_NET_RAW = CAP_NET_RAW;
const int CLibEV_CAP_NET_ADMIN = CAP_NET_ADMIN;
const int CLibEV_CAP_SETUID = CAP_SETUID;

// MARK: c-ares

int CLibEV_ares_library_init(void) { return ares_library_init(ARES_LIB_INIT_ALL); }

int CLibEV_ares_channel_new(ares_channel *channel, int timeout_ms, int tries, int use_tcp, int payload_size,
                            CLibEV_ares_sock_state_cb cb, void *data) {
    struct ares_options options;
    memset(&options, 0, sizeof(options));
    // UDP keeps its socket between queries; a TCP connection closes once idle (HAProxy drops
    // idle ones too), so a server that answers each connection from a snapshot is asked afresh.
    options.flags = ARES_FLAG_NOCHECKRESP | ARES_FLAG_NOSEARCH
        | (use_tcp ? ARES_FLAG_USEVC : ARES_FLAG_STAYOPEN) | (payload_size > 512 ? ARES_FLAG_EDNS : 0);
    options.timeout = timeout_ms;
    options.tries = tries;
    options.ednspsz = payload_size;
    options.sock_state_cb = cb;
    options.sock_state_cb_data = data;
    // No /etc/hosts for lookups: the resolver only ever asks its nameserver (ares_query).
    options.lookups = (char *)"b";
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB | ARES_OPT_LOOKUPS
        | (payload_size > 512 ? ARES_OPT_EDNSPSZ : 0);
    return ares_init_options(channel, &options, mask);
}

int CLibEV_ares_set_server(ares_channel channel, int family, const unsigned char *address, int port) {
    struct ares_addr_port_node node;
    memset(&node, 0, sizeof(node));
    node.family = family;
    memcpy(family == AF_INET6 ? (void *)&node.addr.addr6 : (void *)&node.addr.addr4, address, family == AF_INET6 ? 16 : 4);
    node.udp_port = port;
    node.tcp_port = port;
    return ares_set_servers_ports(channel, &node);
}

double CLibEV_ares_timeout(ares_channel channel) {
    struct timeval tv, *next = ares_timeout(channel, NULL, &tv);
    return next ? (double)next->tv_sec + (double)next->tv_usec / 1e6 : -1;
}

// MARK: OpenSSL

long CLibEV_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
long CLibEV_SSL_CTX_clear_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_clear_mode(ctx, mode); }
int CLibEV_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) { return (int)SSL_CTX_set_min_proto_version(ctx, version); }
int CLibEV_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version) { return (int)SSL_CTX_set_max_proto_version(ctx, version); }
long CLibEV_SSL_CTX_set_servername_callback(SSL_CTX *ctx, CLibEV_servername_cb cb, void *arg) { SSL_CTX_set_tlsext_servername_arg(ctx, arg); return SSL_CTX_set_tlsext_servername_callback(ctx, cb); }
long CLibEV_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_session_cache_mode(ctx, mode); }
long CLibEV_SSL_CTX_sess_set_cache_size(SSL_CTX *ctx, long size) { return SSL_CTX_sess_set_cache_size(ctx, size); }
int CLibEV_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list) { return (int)SSL_CTX_set1_groups_list(ctx, list); }
long CLibEV_SSL_CTX_set_dh_auto(SSL_CTX *ctx, int on) { return SSL_CTX_set_dh_auto(ctx, on); }
void CLibEV_SSL_CTX_set_read_ahead(SSL_CTX *ctx, int yes) { SSL_CTX_set_read_ahead(ctx, yes); }
int CLibEV_SSL_CTX_add1_chain_cert(SSL_CTX *ctx, X509 *x) { return (int)SSL_CTX_add1_chain_cert(ctx, x); }
int CLibEV_SSL_CTX_set_ticket_key_cb(SSL_CTX *ctx, CLibEV_ticket_key_cb cb) { return SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, cb); }
long CLibEV_SSL_CTX_set_num_tickets(SSL_CTX *ctx, size_t n) { return SSL_CTX_set_num_tickets(ctx, n); }
int CLibEV_SSL_set_tlsext_host_name(SSL *ssl, const char *name) { return (int)SSL_set_tlsext_host_name(ssl, name); }
const char *CLibEV_SSL_get_cipher_name(const SSL *ssl) { return SSL_get_cipher_name(ssl); }
void CLibEV_OPENSSL_free(void *p) { OPENSSL_free(p); }
int CLibEV_SSL_CTX_set0_tmp_dh_pkey(SSL_CTX *ctx, EVP_PKEY *dh) { return SSL_CTX_set0_tmp_dh_pkey(ctx, dh); }

int CLibEV_ticket_key_init(EVP_CIPHER_CTX *cipher, EVP_MAC_CTX *mac, const unsigned char *hmac_key, size_t hmac_len,
                           const unsigned char *aes_key, size_t aes_len, const unsigned char *iv, int enc) {
    // Fetched once: an implicit fetch per ticket would look the algorithm up each time.
    static EVP_CIPHER *aes128, *aes256;
    if (!aes128) aes128 = EVP_CIPHER_fetch(NULL, "AES-128-CBC", NULL);
    if (!aes256) aes256 = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string("key", (void *)hmac_key, hmac_len);
    params[1] = OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    if (EVP_CipherInit_ex(cipher, aes_len == 16 ? aes128 : aes256, NULL, aes_key, iv, enc) != 1) return 0;
    return EVP_MAC_CTX_set_params(mac, params);
}

int CLibEV_SSL_CTX_set_ffdhe(SSL_CTX *ctx, int bits) {
    const char *group = bits <= 2048 ? "ffdhe2048" : bits <= 3072 ? "ffdhe3072" : bits <= 4096 ? "ffdhe4096"
        : bits <= 6144 ? "ffdhe6144" : "ffdhe8192";
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string("group", (char *)group, 0);
    params[1] = OSSL_PARAM_construct_end();
    int ok = pctx && EVP_PKEY_paramgen_init(pctx) == 1 && EVP_PKEY_CTX_set_params(pctx, params) == 1
        && EVP_PKEY_paramgen(pctx, &pkey) == 1;
    EVP_PKEY_CTX_free(pctx);
    if (!ok) { EVP_PKEY_free(pkey); return 0; }
    if (SSL_CTX_set0_tmp_dh_pkey(ctx, pkey) != 1) { EVP_PKEY_free(pkey); return 0; }
    return 1;
}

EVP_PKEY *CLibEV_read_dh_params(const void *pem, int len) {
    BIO *bio = BIO_new_mem_buf(pem, len);
    if (!bio) return NULL;
    // Each call reads the next `… PARAMETERS` block (an EC key's parameters are skipped).
    EVP_PKEY *params = PEM_read_bio_Parameters_ex(bio, NULL, NULL, NULL);
    while (params && EVP_PKEY_get_base_id(params) != EVP_PKEY_DH) {
        EVP_PKEY_free(params);
        params = PEM_read_bio_Parameters_ex(bio, NULL, NULL, NULL);
    }
    BIO_free(bio);
    ERR_clear_error();
    return params;
}

// A socket BIO with send(MSG_NOSIGNAL)/recv(MSG_DONTWAIT): OpenSSL's own writes with write(),
// which raises SIGPIPE when the peer is gone.
static int strata_bio_write(BIO *b, const char *buf, int len) {
    BIO_clear_retry_flags(b);
    ssize_t n = send((int)(intptr_t)BIO_get_data(b), buf, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) BIO_set_retry_write(b);
    return (int)n;
}

static int strata_bio_read(BIO *b, char *buf, int len) {
    BIO_clear_retry_flags(b);
    ssize_t n = recv((int)(intptr_t)BIO_get_data(b), buf, (size_t)len, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) BIO_set_retry_read(b);
    else if (n == 0) BIO_set_flags(b, BIO_FLAGS_IN_EOF);
    return (int)n;
}

static int strata_bio_puts(BIO *b, const char *s) { return strata_bio_write(b, s, (int)strlen(s)); }

static long strata_bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
    (void)num; (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_EOF: return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0;
    case BIO_C_GET_FD: if (ptr) *(int *)ptr = (int)(intptr_t)BIO_get_data(b); return (long)(intptr_t)BIO_get_data(b);
    default: return 0;
    }
}

static int strata_bio_create(BIO *b) { BIO_set_init(b, 1); return 1; }

static BIO_METHOD *strata_bio_method;
static pthread_once_t strata_bio_once = PTHREAD_ONCE_INIT;

static void strata_bio_make(void) {
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "strata socket");
    if (!m) return;
    BIO_meth_set_write(m, strata_bio_write);
    BIO_meth_set_read(m, strata_bio_read);
    BIO_meth_set_puts(m, strata_bio_puts);
    BIO_meth_set_ctrl(m, strata_bio_ctrl);
    BIO_meth_set_create(m, strata_bio_create);
    strata_bio_method = m;
}

int CLibEV_SSL_set_socket(SSL *ssl, int fd) {
    pthread_once(&strata_bio_once, strata_bio_make);
    if (!strata_bio_method) return 0;
    BIO *bio = BIO_new(strata_bio_method);
    if (!bio) return 0;
    BIO_set_data(bio, (void *)(intptr_t)fd);
    SSL_set_bio(ssl, bio, bio);
    return 1;
}

const uint64_t CLibEV_SSL_OP_NO_SSLv3 = SSL_OP_NO_SSLv3;
const uint64_t CLibEV_SSL_OP_NO_TLSv1 = SSL_OP_NO_TLSv1;
const uint64_t CLibEV_SSL_OP_NO_TLSv1_1 = SSL_OP_NO_TLSv1_1;
const uint64_t CLibEV_SSL_OP_NO_TLSv1_2 = SSL_OP_NO_TLSv1_2;
const uint64_t CLibEV_SSL_OP_NO_TLSv1_3 = SSL_OP_NO_TLSv1_3;
const uint64_t CLibEV_SSL_OP_NO_TICKET = SSL_OP_NO_TICKET;
const uint64_t CLibEV_SSL_OP_NO_COMPRESSION = SSL_OP_NO_COMPRESSION;
const uint64_t CLibEV_SSL_OP_NO_RENEGOTIATION = SSL_OP_NO_RENEGOTIATION;
const uint64_t CLibEV_SSL_OP_CIPHER_SERVER_PREFERENCE = SSL_OP_CIPHER_SERVER_PREFERENCE;
const uint64_t CLibEV_SSL_OP_ALL = SSL_OP_ALL;
const uint64_t CLibEV_SSL_OP_IGNORE_UNEXPECTED_EOF = SSL_OP_IGNORE_UNEXPECTED_EOF;

// `userlist` passwords: crypt(3) of `password` with the salt and method of `hash` equals `hash`.
// crypt_r's state is about 32 KiB: on the heap, not a data loop's stack.
int CLibEV_password_matches(const char *password, const char *hash) {
    struct crypt_data *data = calloc(1, sizeof *data);
    if (!data) return 0;
    const char *out = crypt_r(password, hash, data);
    size_t n = strlen(hash);
    int ok = out && out[0] != '*' && strlen(out) == n && CRYPTO_memcmp(out, hash, n) == 0;
    free(data);
    return ok;
}

uint64_t CLibEV_xxh3_64(const void *bytes, size_t count, uint64_t seed) { return XXH3_64bits_withSeed(bytes, count, seed); }
uint32_t CLibEV_xxh32(const void *bytes, size_t count, uint32_t seed) { return XXH32(bytes, count, seed); }
uint64_t CLibEV_xxh64(const void *bytes, size_t count, uint64_t seed) { return XXH64(bytes, count, seed); }

int CLibEV_deflate_init(z_stream *stream, int level, int windowBits, int memLevel) { return deflateInit2(stream, level, Z_DEFLATED, windowBits, memLevel, Z_DEFAULT_STRATEGY); }
