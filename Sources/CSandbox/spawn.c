// The parent's side of the clone: the only Swift-facing entry points that
// need C, because Swift cannot make a fork-like clone or variadic syscalls.
#define _GNU_SOURCE
#include "stockade_sandbox.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_NEWUSER
#define CLONE_NEWUSER 0x10000000
#endif
#ifndef CLONE_PARENT
#define CLONE_PARENT 0x00008000
#endif
#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif

_Noreturn void stk_child_main(const struct stk_spawn_plan *plan, int parent_fd);

/// Mirrors the kernel's struct clone_args (VER0, 64 bytes); <linux/sched.h>
/// clashes with glibc's <sched.h>.
struct stk_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

/// clone3 where it exists; else clone(2) with the same flags but
/// CLONE_CLEAR_SIGHAND, which only clone3 takes: that child resets every
/// handler itself before anything else (signals stay blocked until then).
/// With CLONE_PARENT the child is our parent's, and signals it as we would.
static long clone_process(uint64_t flags, int *pidfd, int *legacy) {
    struct stk_clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = flags | (pidfd ? CLONE_PIDFD : 0) | CLONE_CLEAR_SIGHAND;
    args.pidfd = (uint64_t)(uintptr_t)pidfd;
    args.exit_signal = (flags & CLONE_PARENT) ? 0 : SIGCHLD;
    *legacy = 0;
    long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid >= 0 || errno != ENOSYS) return pid;
    *legacy = 1;
    // x86_64 and arm64 order: flags, stack, parent_tid (where CLONE_PIDFD
    // stores the pidfd), child_tid, tls. A null stack forks the caller's.
    return syscall(SYS_clone, (unsigned long)(flags | (pidfd ? CLONE_PIDFD : 0) | SIGCHLD), NULL, pidfd, NULL, 0UL);
}

static void reset_handlers(void) {
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) (void)sigaction(sig, &dfl, NULL);
}

pid_t stk_spawn(const struct stk_spawn_plan *plan, int parent_fd, int *pidfd, int sibling) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int legacy;
    long pid = clone_process(plan->clone_flags | (sibling ? CLONE_PARENT : 0), pidfd, &legacy);
    if (pid == 0) {
        if (legacy) reset_handlers();
        stk_child_main(plan, parent_fd);
    }
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = err;
    return pid < 0 ? -1 : (pid_t)pid;
}

int stk_probe_user_namespace(void) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int legacy;
    long pid = clone_process(CLONE_NEWUSER, NULL, &legacy);
    if (pid == 0) _exit(0);
    int err = pid < 0 ? errno : 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid > 0) {
        int status;
        while (waitpid((pid_t)pid, &status, 0) < 0 && errno == EINTR) {}
    }
    return err;
}

int stk_landlock_abi(void) {
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, 1U /* LANDLOCK_CREATE_RULESET_VERSION */);
    return abi < 0 ? 0 : (int)abi;
}

int stk_wait_pidfd(int pidfd, int *status, struct stk_rusage *usage) {
    siginfo_t info;
    struct rusage ru;
    memset(&info, 0, sizeof info);
    memset(&ru, 0, sizeof ru);
    long r;
    do {
        r = syscall(SYS_waitid, P_PIDFD, pidfd, &info, WEXITED, &ru);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return -1;
    switch (info.si_code) {
    case CLD_EXITED: *status = (info.si_status & 0xff) << 8; break;
    case CLD_KILLED: *status = info.si_status & 0x7f; break;
    case CLD_DUMPED: *status = (info.si_status & 0x7f) | 0x80; break;
    default: *status = 0; break;
    }
    usage->user_usec = (int64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec;
    usage->system_usec = (int64_t)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
    usage->max_rss_kib = ru.ru_maxrss;
    return 0;
}

int stk_pidfd_send_signal(int pidfd, int sig) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

long stk_receive_report(int socket, struct stk_report *report, int *fd, char *extra, size_t extra_length) {
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec iov[2] = {{report, sizeof *report}, {extra, extra_length}};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    *fd = -1;
    ssize_t n = recvmsg(socket, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(sizeof(int)))
            memcpy(fd, CMSG_DATA(c), sizeof(int));
    }
    return n;
}

long stk_send_with_fds(int socket, const struct iovec *iov, size_t iov_count, const int *fds, size_t count) {
    if (count > STK_PASSED_FDS_MAX) { errno = EINVAL; return -1; }
    union { char bytes[CMSG_SPACE(sizeof(int) * STK_PASSED_FDS_MAX)]; struct cmsghdr align; } control;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = (struct iovec *)iov;
    msg.msg_iovlen = iov_count;
    if (count > 0) {
        msg.msg_control = control.bytes;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * count);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * count);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * count);
    }
    ssize_t n;
    do { n = sendmsg(socket, &msg, MSG_NOSIGNAL); } while (n < 0 && errno == EINTR);
    return n;
}

long stk_receive_with_fds(int socket, struct iovec *iov, size_t iov_count, int *fds, size_t *count) {
    union { char bytes[CMSG_SPACE(sizeof(int) * STK_PASSED_FDS_MAX)]; struct cmsghdr align; } control;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = iov;
    msg.msg_iovlen = iov_count;
    msg.msg_control = control.bytes;
    msg.msg_controllen = sizeof control.bytes;
    *count = 0;
    ssize_t n;
    do { n = recvmsg(socket, &msg, MSG_CMSG_CLOEXEC); } while (n < 0 && errno == EINTR);
    if (n < 0) return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t carried = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < carried; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (*count < STK_PASSED_FDS_MAX) fds[(*count)++] = fd;
            else close(fd);
        }
    }
    if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
        for (size_t i = 0; i < *count; i++) close(fds[i]);
        *count = 0;
        errno = EMSGSIZE;
        return -1;
    }
    return n;
}

long stk_read_memory(pid_t pid, uint64_t address, void *buffer, size_t length) {
    struct iovec local = {buffer, length};
    struct iovec remote = {(void *)(uintptr_t)address, length};
    return (long)process_vm_readv(pid, &local, 1, &remote, 1, 0);
}

#define STK_SECCOMP_IOCTL_NOTIF_SET_FLAGS _IOW('!', 4, uint64_t)

int stk_notify_sync_wake_up(int listener) {
    return ioctl(listener, STK_SECCOMP_IOCTL_NOTIF_SET_FLAGS, 1UL);
}

int stk_notify_receive(int listener, void *request, size_t size) {
    memset(request, 0, size);
    return ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, request) == 0 ? 0 : errno;
}
