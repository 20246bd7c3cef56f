#ifndef KV_CLINUX_H
#define KV_CLINUX_H
#include <sys/types.h>
#include <stdint.h>
int kv_pidfd_open(pid_t pid);
int kv_pidfd_send_signal(int pidfd, int sig);
int kv_set_pdeathsig(int sig);
int kv_set_timerslack_ns(unsigned long ns);
int kv_waitid_pidfd(int pidfd, int *code, int *status);
int kv_peer_credentials(int fd, pid_t *pid, uid_t *uid, gid_t *gid);
int kv_user_in_group(uid_t uid, gid_t gid);
int kv_pipe_cloexec(int fds[2]);
int kv_cld_exited(void);
#endif
