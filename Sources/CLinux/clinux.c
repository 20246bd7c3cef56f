#define _GNU_SOURCE
#include "clinux.h"
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
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
