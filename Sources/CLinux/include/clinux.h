#ifndef KV_CLINUX_H
#define KV_CLINUX_H
#include <sys/types.h>
#include <stdint.h>
int kv_pidfd_open(pid_t pid);
int kv_pidfd_send_signal(int pidfd, int sig);
int kv_set_pdeathsig(int sig);
int kv_set_timerslack_ns(unsigned long ns);
int kv_set_thread_fifo(int priority);
int kv_thread_policy(void);
int kv_waitid_pidfd(int pidfd, int *code, int *status);
int kv_peer_credentials(int fd, pid_t *pid, uid_t *uid, gid_t *gid);
int kv_user_in_group(uid_t uid, gid_t gid);
int kv_pipe_cloexec(int fds[2]);
int kv_cld_exited(void);
/* Signals as bytes on a pipe: installs a handler for each of signals[0..n) that writes the signal
   number to a non-blocking pipe, and returns the read end (blocking, CLOEXEC), or -1. Once only. */
int kv_signal_pipe(const int *signals, int n);
/* Raises the soft RLIMIT_NOFILE to the hard limit, at most `cap`; returns the new soft limit. */
long kv_raise_nofile(long cap);
/* posix_spawn: close every descriptor from lowfd up in the child (glibc >= 2.34). */
#include <spawn.h>
int kv_spawn_closefrom(posix_spawn_file_actions_t *actions, int lowfd);
/* Timing thread: an eventfd to be woken by, and a nanosecond-precise wait on it. */
int kv_eventfd(void);
int kv_eventfd_signal(int fd);
/* Waits until fd is readable or timeout_ns passes; drains it. 1 woken, 0 timed out, -1 error. */
int kv_wait_readable_ns(int fd, int64_t timeout_ns);
/* Plain non-blocking TCP for the heartbeat sender, which must not wait on an event loop. */
int kv_tcp_connect_start(const char *host, int port);
int kv_tcp_connect_result(int fd);
int kv_tcp_listen(const char *host, int port);
int kv_tcp_accept(int listen_fd);
int kv_tcp_peer_closed(int fd);
long kv_tcp_send(int fd, const void *buf, size_t len);
/// CRC-32C of `length` bytes, continuing from `seed` (0 to start): hardware crc32 where the CPU has it.
uint32_t kv_crc32c(uint32_t seed, const void *data, size_t length);

#endif
