// Real functions for libev's macros and for the Linux calls that Swift's Glibc module does not
// export. Every body is one line in shim.c; Swift never sees a macro.
#ifndef CLIBEV_H
#define CLIBEV_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>

typedef void (*CLibEV_io_cb)(struct ev_loop *loop, ev_io *w, int revents);
typedef void (*CLibEV_timer_cb)(struct ev_loop *loop, ev_timer *w, int revents);
typedef void (*CLibEV_async_cb)(struct ev_loop *loop, ev_async *w, int revents);
typedef void (*CLibEV_signal_cb)(struct ev_loop *loop, ev_signal *w, int revents);

struct ev_loop *CLibEV_default_loop(unsigned int flags);
struct ev_loop *CLibEV_loop_new(unsigned int flags);

void CLibEV_io_init(ev_io *w, CLibEV_io_cb cb, int fd, int events);
void CLibEV_io_set(ev_io *w, int fd, int events);
void CLibEV_timer_init(ev_timer *w, CLibEV_timer_cb cb, double after, double repeat);
void CLibEV_timer_set(ev_timer *w, double after, double repeat);
void CLibEV_async_init(ev_async *w, CLibEV_async_cb cb);
void CLibEV_signal_init(ev_signal *w, CLibEV_signal_cb cb, int signum);
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
int CLibEV_fcntl_setfd_cloexec(int fd);
int CLibEV_fionread(int fd);

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

#endif
