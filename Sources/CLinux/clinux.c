#define _GNU_SOURCE
#include "clinux.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/resource.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <time.h>
#include <sys/eventfd.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

int kv_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

int kv_pidfd_send_signal(int pidfd, int sig) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

int kv_set_pdeathsig(int sig) { return prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0); }

int kv_set_timerslack_ns(unsigned long ns) { return prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0); }

/* The calling thread (not the process: Linux schedules threads) to SCHED_FIFO at priority, or
 * back to SCHED_OTHER for priority 0; anything it forks starts as SCHED_OTHER. 0 or -errno. */
int kv_set_thread_fifo(int priority) {
    struct sched_param p = { .sched_priority = priority };
    int policy = (priority > 0 ? SCHED_FIFO : SCHED_OTHER) | SCHED_RESET_ON_FORK;
    return sched_setscheduler(0, policy, &p) == 0 ? 0 : -errno;
}

/* The calling thread's policy (SCHED_OTHER, SCHED_FIFO, ...) without the reset-on-fork flag. */
int kv_thread_policy(void) {
    int policy = sched_getscheduler(0);
    return policy < 0 ? policy : (policy & ~SCHED_RESET_ON_FORK);
}

/* Reaps the child behind pidfd; code is CLD_EXITED/CLD_KILLED/CLD_DUMPED, status the exit code or signal. */
int kv_waitid_pidfd(int pidfd, int *code, int *status) {
    siginfo_t info = {0};
    int rc = waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED);
    if (rc == 0) {
        *code = info.si_code;
        *status = info.si_status;
    }
    return rc;
}

int kv_peer_credentials(int fd, pid_t *pid, uid_t *uid, gid_t *gid) {
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -1;
    *pid = cred.pid;
    *uid = cred.uid;
    *gid = cred.gid;
    return 0;
}

/* 1 if uid's primary or supplementary groups include gid, 0 if not, -1 if unknown user. */
int kv_user_in_group(uid_t uid, gid_t gid) {
    struct passwd *pw = getpwuid(uid);
    if (!pw) return -1;
    if (pw->pw_gid == gid) return 1;
    int n = 64;
    gid_t groups[64];
    if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0) return 0;
    for (int i = 0; i < n; i++) if (groups[i] == gid) return 1;
    return 0;
}

#include <fcntl.h>
int kv_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }
int kv_cld_exited(void) { return CLD_EXITED; }

/* ---- Timing thread ---- */

int kv_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

int kv_eventfd_signal(int fd) {
    uint64_t one = 1;
    return write(fd, &one, sizeof one) == sizeof one ? 0 : -1;
}

int kv_wait_readable_ns(int fd, int64_t timeout_ns) {
    struct pollfd p = { .fd = fd, .events = POLLIN };
    if (timeout_ns < 0) timeout_ns = 0;
    struct timespec ts = { .tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000 };
    int rc = ppoll(&p, 1, &ts, NULL);
    if (rc < 0) return errno == EINTR ? 1 : -1;
    if (rc == 0) return 0;
    uint64_t drained;
    while (read(fd, &drained, sizeof drained) == sizeof drained) {}
    return 1;
}

/* ---- Non-blocking TCP for the heartbeat sender ---- */

/* Resolves host:port and opens a non-blocking, close-on-exec TCP socket for it. Returns the fd
 * with *out set (the caller frees it), or -errno with nothing left to free. */
static int open_tcp(const char *host, int port, int passive, struct addrinfo **out) {
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    char service[8];
    snprintf(service, sizeof service, "%d", port);
    *out = NULL;
    if (getaddrinfo(host, service, &hints, out) != 0 || *out == NULL) {
        return passive ? -EADDRNOTAVAIL : -EHOSTUNREACH;
    }
    int fd = socket((*out)->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) { int e = errno; freeaddrinfo(*out); return -e; }
    return fd;
}

static void set_nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Starts a connect; returns the fd (connecting or connected) or -errno. */
int kv_tcp_connect_start(const char *host, int port) {
    struct addrinfo *ai;
    int fd = open_tcp(host, port, 0, &ai);
    if (fd < 0) return fd;
    set_nodelay(fd);
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    int e = errno;
    freeaddrinfo(ai);
    if (rc < 0 && e != EINPROGRESS) { close(fd); return -e; }
    return fd;
}

/* 1 connected, 0 still connecting, -errno failed. */
int kv_tcp_connect_result(int fd) {
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    int rc = poll(&p, 1, 0);
    if (rc < 0) return -errno;
    if (rc == 0) return 0;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return -errno;
    return err == 0 ? 1 : -err;
}

int kv_tcp_listen(const char *host, int port) {
    struct addrinfo *ai;
    int fd = open_tcp(host, port, 1, &ai);
    if (fd < 0) return fd;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) ? -errno : fd;
    freeaddrinfo(ai);
    if (rc < 0) close(fd);
    return rc;
}

/* An accepted fd, or -EAGAIN when nobody is waiting. */
int kv_tcp_accept(int listen_fd) {
    int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return -errno;
    set_nodelay(fd);
    return fd;
}

/* Discards anything the far side sent; 1 if it closed or failed, else 0. */
int kv_tcp_peer_closed(int fd) {
    char sink[512];
    for (;;) {
        ssize_t n = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
        if (n > 0) continue;
        if (n == 0) return 1;
        return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : 1;
    }
}

/* Bytes sent, or -errno; never blocks and never raises SIGPIPE. */
long kv_tcp_send(int fd, const void *buf, size_t len) {
    ssize_t n = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    return n < 0 ? -errno : (long)n;
}

/* Without this a child inherits every descriptor the supervisor has open without O_CLOEXEC at
 * spawn time: NIO accepts sockets without SOCK_CLOEXEC, so a link proxy's accepted connection
 * stayed open in whichever node was spawned next, and closing it in the proxy closed nothing. */
int kv_spawn_closefrom(posix_spawn_file_actions_t *actions, int lowfd) {
    return posix_spawn_file_actions_addclosefrom_np(actions, lowfd);
}

static int signal_pipe_write = -1;

static void on_signal(int sig) {
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    /* A full pipe drops the byte: 64 KiB of pending signals means the reader is gone anyway. */
    ssize_t ignored = write(signal_pipe_write, &b, 1);
    (void)ignored;
    errno = saved;
}

int kv_signal_pipe(const int *signals, int n) {
    if (signal_pipe_write >= 0) return -1;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return -1;
    fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK);
    signal_pipe_write = fds[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigfillset(&sa.sa_mask);
    for (int i = 0; i < n; i++) {
        if (sigaction(signals[i], &sa, NULL) != 0) return -1;
    }
    /* A mask inherited from whoever started us must not hold them back. */
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < n; i++) sigaddset(&set, signals[i]);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    return fds[0];
}

long kv_raise_nofile(long cap) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    rlim_t want = rl.rlim_max;
    if (cap > 0 && want > (rlim_t)cap) want = (rlim_t)cap;
    if (want > rl.rlim_cur) {
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    }
    return (long)rl.rlim_cur;
}

/* CRC-32C (Castagnoli). The SSE4.2 crc32 instruction when the CPU has it (8 bytes a cycle or so,
 * tens of GB/s), else a byte table: every WAL record, snapshot chunk and peer frame is checked, and
 * a table loop in Swift was the bottleneck of a snapshot stream. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static uint32_t kv_crc32c_table[256];
static int kv_crc32c_ready;

static void kv_crc32c_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        kv_crc32c_table[n] = c;
    }
    __atomic_store_n(&kv_crc32c_ready, 1, __ATOMIC_RELEASE);
}

static uint32_t kv_crc32c_soft(uint32_t crc, const uint8_t *p, size_t n) {
    if (!__atomic_load_n(&kv_crc32c_ready, __ATOMIC_ACQUIRE)) kv_crc32c_init();
    while (n--) crc = kv_crc32c_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t kv_crc32c_hw(uint32_t crc, const uint8_t *p, size_t n) {
    uint64_t c = crc;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

uint32_t kv_crc32c(uint32_t seed, const void *data, size_t length) {
    uint32_t crc = ~seed;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2")) return ~kv_crc32c_hw(crc, data, length);
#endif
    return ~kv_crc32c_soft(crc, data, length);
}
