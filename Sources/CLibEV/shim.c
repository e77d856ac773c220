#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "CLibEV.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

_Static_assert(sizeof(ev_tstamp) == sizeof(double), "ev_tstamp is a double");

struct ev_loop *CLibEV_default_loop(unsigned int flags) { return ev_default_loop(flags); }
struct ev_loop *CLibEV_loop_new(unsigned int flags) { return ev_loop_new(flags); }

void CLibEV_io_init(ev_io *w, CLibEV_io_cb cb, int fd, int events) { ev_io_init(w, cb, fd, events); }
void CLibEV_io_set(ev_io *w, int fd, int events) { ev_io_set(w, fd, events); }
void CLibEV_timer_init(ev_timer *w, CLibEV_timer_cb cb, double after, double repeat) { ev_timer_init(w, cb, after, repeat); }
void CLibEV_timer_set(ev_timer *w, double after, double repeat) { ev_timer_set(w, after, repeat); }
void CLibEV_async_init(ev_async *w, CLibEV_async_cb cb) { ev_async_init(w, cb); }
void CLibEV_signal_init(ev_signal *w, CLibEV_signal_cb cb, int signum) { ev_signal_init(w, cb, signum); }
int CLibEV_is_active(const void *w) { return ev_is_active((const ev_watcher *)w); }
int CLibEV_is_pending(const void *w) { return ev_is_pending((const ev_watcher *)w); }
void CLibEV_set_data(void *w, void *data) { ((ev_watcher *)w)->data = data; }
void *CLibEV_get_data(const void *w) { return ((const ev_watcher *)w)->data; }
int CLibEV_io_fd(const ev_io *w) { return w->fd; }

int CLibEV_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) { return accept4(fd, addr, len, flags); }
ssize_t CLibEV_splice(int fd_in, int fd_out, size_t len, unsigned int flags) { return splice(fd_in, NULL, fd_out, NULL, len, flags); }
int CLibEV_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }
int CLibEV_pipe_set_size(int fd, int size) { return fcntl(fd, F_SETPIPE_SZ, size); }
int CLibEV_fcntl_setfl_nonblock(int fd) { int f = fcntl(fd, F_GETFL); return f < 0 ? f : fcntl(fd, F_SETFL, f | O_NONBLOCK); }
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
