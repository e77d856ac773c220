// Real functions for libev's macros and for the Linux calls that Swift's Glibc module does not
// export. Every body is one line in shim.c; Swift never sees a macro.
#ifndef CLIBEV_H
#define CLIBEV_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>

#include <ares.h>

#include <nghttp2/nghttp2.h>

#include <zlib.h>
#include <libdeflate.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

typedef void (*CLibEV_io_cb)(struct ev_loop *loop, ev_io *w, int revents);
typedef void (*CLibEV_timer_cb)(struct ev_loop *loop, ev_timer *w, int revents);
typedef void (*CLibEV_async_cb)(struct ev_loop *loop, ev_async *w, int revents);
typedef void (*CLibEV_signal_cb)(struct ev_loop *loop, ev_signal *w, int revents);
typedef void (*CLibEV_child_cb)(struct ev_loop *loop, ev_child *w, int revents);
typedef void (*CLibEV_prepare_cb)(struct ev_loop *loop, ev_prepare *w, int revents);

struct ev_loop *CLibEV_default_loop(unsigned int flags);
struct ev_loop *CLibEV_loop_new(unsigned int flags);

void CLibEV_io_init(ev_io *w, CLibEV_io_cb cb, int fd, int events);
void CLibEV_io_set(ev_io *w, int fd, int events);
void CLibEV_timer_init(ev_timer *w, CLibEV_timer_cb cb, double after, double repeat);
void CLibEV_timer_set(ev_timer *w, double after, double repeat);
void CLibEV_async_init(ev_async *w, CLibEV_async_cb cb);
void CLibEV_prepare_init(ev_prepare *w, CLibEV_prepare_cb cb);
void CLibEV_signal_init(ev_signal *w, CLibEV_signal_cb cb, int signum);
/// A child watcher (the default loop only: libev reaps every child there).
void CLibEV_child_init(ev_child *w, CLibEV_child_cb cb, int pid);
int CLibEV_is_active(const void *w);
int CLibEV_is_pending(const void *w);
void CLibEV_set_data(void *w, void *data);
void *CLibEV_get_data(const void *w);
int CLibEV_io_fd(const ev_io *w);

int CLibEV_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
ssize_t CLibEV_splice(int fd_in, int fd_out, size_t len, unsigned int flags);
int CLibEV_pipe2(int fds[2], int flags);
int CLibEV_pipe_set_size(int fd, int size);
int CLibEV_fcntl_setfl_nonblock(int fd);
int CLibEV_fcntl_setfl_blocking(int fd);
int CLibEV_fcntl_setfd_cloexec(int fd);
int CLibEV_fionread(int fd);
/// The calling thread may run only on `cpus[0..<count]` (pthread_setaffinity_np); 0 or an errno.
int CLibEV_pin_thread(const int *cpus, int count);
/// The number of CPUs this process may run on (sched_getaffinity), at least 1.
int CLibEV_allowed_cpus(void);
/// The calling thread's kernel id (/proc/PID/task/TID).
int CLibEV_gettid(void);
/// Names the calling thread (pthread_setname_np: 15 bytes at most), as `top -H` shows it.
int CLibEV_name_thread(const char *name);
/// glibc's malloc_trim: gives the free pages of every arena back to the kernel.
int CLibEV_malloc_trim(size_t pad);

extern const unsigned int CLibEV_SPLICE_F_MOVE;
extern const unsigned int CLibEV_SPLICE_F_NONBLOCK;
extern const int CLibEV_SOCK_NONBLOCK;
extern const int CLibEV_SOCK_CLOEXEC;
extern const int CLibEV_O_NONBLOCK;

/// fork() for `daemon`: returns the child's pid in the parent, 0 in the child, -1 on error.
pid_t CLibEV_fork(void);
/// setsid(), then stdin/stdout/stderr to /dev/null.
int CLibEV_detach(void);
/// Drops to uid/gid keeping only CAP_NET_BIND_SERVICE, so a reload can still bind a port below 1024.
/// Returns 0 or an errno value; `step` names the call that failed.
int CLibEV_drop_privileges(uid_t uid, gid_t gid, int keep_bind_cap, const char **step);
/// Effective capability set, low 64 bits.
uint64_t CLibEV_effective_caps(void);

// MARK: the privilege broker

/// sendmsg of `len` bytes with `fd` attached as SCM_RIGHTS (fd < 0: none). Returns sendmsg's value.
ssize_t CLibEV_send_with_fd(int sock, const void *buf, size_t len, int fd);
/// recvmsg of at most `len` bytes; an fd passed with them is stored in `*fd` (close-on-exec),
/// else `*fd` is left unchanged. Returns recvmsg's value.
ssize_t CLibEV_recv_with_fd(int sock, void *buf, size_t len, int *fd);
/// Closes every fd from 3 up, except `keep`.
void CLibEV_close_fds_except(int keep);
/// The broker's privileges: every capability but `keep` (a bit mask of CAP_* numbers) leaves the
/// effective, permitted, inheritable and bounding sets; no_new_privs. 0 or an errno, `step` says where.
int CLibEV_broker_restrict(uint64_t keep, const char **step);
/// The serving process's privileges: the bounding set emptied, chroot (when `root` is not NULL)
/// and chdir("/"), groups set to `gid` alone, gid, uid, every capability dropped, no_new_privs.
int CLibEV_drop_everything(uid_t uid, gid_t gid, const char *root, const char **step);
/// `set-dumpable`: PR_SET_DUMPABLE and RLIMIT_CORE raised to its hard limit; 0 or errno.
int CLibEV_set_dumpable(void);
/// Names the process (prctl PR_SET_NAME), as ps and /proc/PID/comm show it.
int CLibEV_name_process(const char *name);
/// The CAP_* numbers the broker keeps.
extern const int CLibEV_CAP_NET_BIND_SERVICE;
extern const int CLibEV_CAP_DAC_READ_SEARCH;
extern const int CLibEV_CAP_NET_RAW;
extern const int CLibEV_CAP_NET_ADMIN;
extern const int CLibEV_CAP_SETUID;



// MARK: c-ares: a DNS client driven by the engine's loop (its sockets reported through the
// socket-state callback, its timeouts read with ares_timeout).

typedef void (*CLibEV_ares_sock_state_cb)(void *data, int fd, int readable, int writable);

/// ares_library_init(ARES_LIB_INIT_ALL): once a process, before the first channel.
int CLibEV_ares_library_init(void);
/// A channel that asks one nameserver (set with CLibEV_ares_set_server), each query once (`tries`
/// 1: the resolver retries itself), waiting `timeout_ms`; over TCP when `use_tcp` (a connection
/// closed once idle; a UDP socket is kept); announcing
/// `payload_size` with EDNS0 when above 512; raw answers (NOCHECKRESP: a REFUSED or SERVFAIL is
/// the query's answer, not a reason to try another server). Returns an ARES_ status.
int CLibEV_ares_channel_new(ares_channel *channel, int timeout_ms, int tries, int use_tcp, int payload_size,
                            CLibEV_ares_sock_state_cb cb, void *data);
/// The channel's one nameserver: `address` is 4 or 16 bytes (by `family`), `port` host order.
int CLibEV_ares_set_server(ares_channel channel, int family, const unsigned char *address, int port);
/// Seconds until the channel needs ares_process_fd for a timeout, or -1 when no query is pending.
double CLibEV_ares_timeout(ares_channel channel);


typedef int (*CLibEV_servername_cb)(SSL *ssl, int *alert, void *arg);
typedef int (*CLibEV_ticket_key_cb)(SSL *ssl, unsigned char *key_name, unsigned char *iv,
                                    EVP_CIPHER_CTX *cipher, EVP_MAC_CTX *mac, int enc);

long CLibEV_SSL_CTX_set_mode(SSL_CTX *ctx, long mode);
long CLibEV_SSL_CTX_clear_mode(SSL_CTX *ctx, long mode);
int CLibEV_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version);
int CLibEV_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version);
long CLibEV_SSL_CTX_set_servername_callback(SSL_CTX *ctx, CLibEV_servername_cb cb, void *arg);
long CLibEV_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode);
long CLibEV_SSL_CTX_sess_set_cache_size(SSL_CTX *ctx, long size);
int CLibEV_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list);
long CLibEV_SSL_CTX_set_dh_auto(SSL_CTX *ctx, int on);
void CLibEV_SSL_CTX_set_read_ahead(SSL_CTX *ctx, int yes);
int CLibEV_SSL_CTX_add1_chain_cert(SSL_CTX *ctx, X509 *x);
int CLibEV_SSL_CTX_set_ticket_key_cb(SSL_CTX *ctx, CLibEV_ticket_key_cb cb);
long CLibEV_SSL_CTX_set_num_tickets(SSL_CTX *ctx, size_t n);
int CLibEV_SSL_set_tlsext_host_name(SSL *ssl, const char *name);
const char *CLibEV_SSL_get_cipher_name(const SSL *ssl);
void CLibEV_OPENSSL_free(void *p);
/// Sets up a session ticket's cipher (AES-128/256-CBC by the key's length) and HMAC-SHA256 key.
int CLibEV_ticket_key_init(EVP_CIPHER_CTX *cipher, EVP_MAC_CTX *mac, const unsigned char *hmac_key, size_t hmac_len,
                           const unsigned char *aes_key, size_t aes_len, const unsigned char *iv, int enc);
/// Uses RFC 7919's ffdhe group of `bits` (2048, 3072, 4096, 6144, 8192) for DHE; 0 when unknown.
int CLibEV_SSL_CTX_set_ffdhe(SSL_CTX *ctx, int bits);
/// The DH parameters of a PEM block (`-----BEGIN DH PARAMETERS-----`), or NULL.
EVP_PKEY *CLibEV_read_dh_params(const void *pem, int len);
int CLibEV_SSL_CTX_set0_tmp_dh_pkey(SSL_CTX *ctx, EVP_PKEY *dh);
/// Puts `ssl` on the non-blocking socket `fd` through a BIO that sends with MSG_NOSIGNAL (a peer
/// that went away is EPIPE, never SIGPIPE). Returns 1, or 0 when OpenSSL is out of memory.
int CLibEV_SSL_set_socket(SSL *ssl, int fd);

extern const uint64_t CLibEV_SSL_OP_NO_SSLv3;
extern const uint64_t CLibEV_SSL_OP_NO_TLSv1;
extern const uint64_t CLibEV_SSL_OP_NO_TLSv1_1;
extern const uint64_t CLibEV_SSL_OP_NO_TLSv1_2;
extern const uint64_t CLibEV_SSL_OP_NO_TLSv1_3;
extern const uint64_t CLibEV_SSL_OP_NO_TICKET;
extern const uint64_t CLibEV_SSL_OP_NO_COMPRESSION;
extern const uint64_t CLibEV_SSL_OP_NO_RENEGOTIATION;
extern const uint64_t CLibEV_SSL_OP_CIPHER_SERVER_PREFERENCE;
extern const uint64_t CLibEV_SSL_OP_ALL;
extern const uint64_t CLibEV_SSL_OP_IGNORE_UNEXPECTED_EOF;


// MARK: Counters shared between event loops (static inline: Swift inlines them, and
// ThreadSanitizer sees C11 atomics). A loop's own counter is read by other threads through a
// relaxed load and written by its loop alone through a relaxed store: a plain move on x86-64,
// no lock prefix. The read-modify-write forms are for the few gauges every loop changes.

static inline long CLibEV_load(const long *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void CLibEV_store(long *p, long v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline long CLibEV_fetch_add(long *p, long v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
/// A version number published after the values it stands for (release) and read before them
/// (acquire): a reader that sees the new version sees the new values.
static inline long CLibEV_load_acquire(const long *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline long CLibEV_fetch_add_release(long *p, long v) { return __atomic_fetch_add(p, v, __ATOMIC_RELEASE); }
/// Stores `desired` if `*p` is still `expected`; true when it did.
static inline int CLibEV_compare_exchange(long *p, long expected, long desired) {
    return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

/// Whether crypt(3) of `password` with `hash`'s method and salt gives `hash` (compared in
/// constant time); 0 for a hash crypt cannot use.
int CLibEV_password_matches(const char *password, const char *hash);

/// libxxhash: the `xxh3`, `xxh32` and `xxh64` converters.
uint64_t CLibEV_xxh3_64(const void *bytes, size_t count, uint64_t seed);
uint32_t CLibEV_xxh32(const void *bytes, size_t count, uint32_t seed);
uint64_t CLibEV_xxh64(const void *bytes, size_t count, uint64_t seed);

/// zlib's deflateInit2 (a macro passing the library's version and the stream's size): `windowBits`
/// 8...15 for the zlib format, +16 for gzip, negated for raw deflate.
int CLibEV_deflate_init(z_stream *stream, int level, int windowBits, int memLevel);

#endif
