// Attempts one syscall per argument and prints `name: ok` or `name: ERRNO`,
// so sandbox tests can assert exactly what the kernel answered inside.
// Built statically by the tests, so it runs in any rootfs.
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static const char *symbol(int e) {
    switch (e) {
    case EPERM: return "EPERM"; case ENOENT: return "ENOENT"; case EACCES: return "EACCES";
    case EROFS: return "EROFS"; case ENOSYS: return "ENOSYS"; case EBADF: return "EBADF";
    case EINVAL: return "EINVAL"; case ENOTTY: return "ENOTTY"; case ECONNREFUSED: return "ECONNREFUSED";
    case ENETUNREACH: return "ENETUNREACH"; case EAFNOSUPPORT: return "EAFNOSUPPORT"; case ESRCH: return "ESRCH";
    case EXDEV: return "EXDEV"; case EOPNOTSUPP: return "EOPNOTSUPP"; case ENOSPC: return "ENOSPC"; case EFBIG: return "EFBIG"; case EAGAIN: return "EAGAIN";
    default: { static char buf[32]; snprintf(buf, sizeof buf, "errno%d", e); return buf; }
    }
}

static long result(long r) { return r < 0 ? -errno : r; }

static long sockets(const char *name) {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) < 0) return -errno;
    int out = pair[0], in = pair[1];
    if (strstr(name, "-1023")) { if (dup2(out, 1023) < 0) return -errno; out = 1023; }
    int oob = strstr(name, "-oob") ? MSG_OOB : 0;
    char byte = 'x';
    struct iovec iov = {&byte, 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    struct mmsghdr mmsg = {.msg_hdr = msg};
    if (!strncmp(name, "recv", 4)) {
        // Something to receive: out-of-band data too where the sender may send it.
        (void)send(out, &byte, 1, 0);
        if (oob) (void)send(out, &byte, 1, MSG_OOB);
        int flags = oob | MSG_DONTWAIT;
        if (!strncmp(name, "recvmsg", 7)) return result(recvmsg(in, &msg, flags));
        if (!strncmp(name, "recvmmsg", 8)) return result(recvmmsg(in, &mmsg, 1, flags, NULL));
        return result(recv(in, &byte, 1, flags));
    }
    if (!strncmp(name, "sendmsg", 7)) return result(sendmsg(out, &msg, oob | MSG_NOSIGNAL));
    if (!strncmp(name, "sendmmsg", 8)) return result(sendmmsg(out, &mmsg, 1, oob | MSG_NOSIGNAL));
    return result(send(out, &byte, 1, oob | MSG_NOSIGNAL));
}

static long probe(const char *name) {
    if (!strcmp(name, "mount")) return result(mount("none", "/tmp", "tmpfs", 0, NULL));
    if (!strcmp(name, "unshare-user")) return result(unshare(CLONE_NEWUSER));
    if (!strcmp(name, "unshare-mount")) return result(unshare(CLONE_NEWNS));
    if (!strcmp(name, "clone-newuser")) {
        long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
        if (pid == 0) _exit(0);
        if (pid > 0) waitpid((pid_t)pid, NULL, 0);
        return result(pid < 0 ? -1 : 0);
    }
    if (!strcmp(name, "clone3")) {
        struct { unsigned long long flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls; } args;
        memset(&args, 0, sizeof args);
        args.exit_signal = SIGCHLD;
        long pid = syscall(SYS_clone3, &args, sizeof args);
        if (pid == 0) _exit(0);
        if (pid > 0) waitpid((pid_t)pid, NULL, 0);
        return result(pid < 0 ? -1 : 0);
    }
    if (!strcmp(name, "fork")) {
        pid_t pid = fork();
        if (pid == 0) _exit(0);
        if (pid > 0) waitpid(pid, NULL, 0);
        return result(pid < 0 ? -1 : 0);
    }
    if (!strcmp(name, "ptrace-attach")) {
        pid_t child = fork();
        if (child == 0) { pause(); _exit(0); }
        long r = result(ptrace(PTRACE_ATTACH, child, 0, 0));
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        return r;
    }
    if (!strcmp(name, "keyctl")) return result(syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* session */, 0));
    if (!strcmp(name, "add-key")) return result(syscall(SYS_add_key, "user", "stockade", "x", 1, -2));
    if (!strcmp(name, "io-uring")) { char params[120]; memset(params, 0, sizeof params); return result(syscall(SYS_io_uring_setup, 1, params)); }
    if (!strcmp(name, "bpf")) return result(syscall(SYS_bpf, 0, NULL, 0));
    if (!strcmp(name, "setns")) return result(syscall(SYS_setns, 0, 0));
    // fd 999 is not open: a filtered call fails with EPERM before the kernel looks at the fd.
    if (!strcmp(name, "tiocsti")) { char c = 'x'; return result(syscall(SYS_ioctl, 999, (unsigned long)TIOCSTI, &c)); }
    if (!strcmp(name, "tiocsti-high")) { char c = 'x'; return result(syscall(SYS_ioctl, 999, (unsigned long)TIOCSTI | (1UL << 32), &c)); }
    if (!strcmp(name, "tioclinux")) { char c = 0; return result(syscall(SYS_ioctl, 999, (unsigned long)TIOCLINUX, &c)); }
    if (!strcmp(name, "socket-inet")) { int s = socket(AF_INET, SOCK_STREAM, 0); if (s >= 0) close(s); return result(s); }
    if (!strcmp(name, "socket-unix")) { int s = socket(AF_UNIX, SOCK_STREAM, 0); if (s >= 0) close(s); return result(s); }
    if (!strcmp(name, "loopback")) {
        int server = socket(AF_INET, SOCK_STREAM, 0), client = socket(AF_INET, SOCK_STREAM, 0);
        if (server < 0 || client < 0) return -errno;
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof addr;
        if (bind(server, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(server, 1) < 0 ||
            getsockname(server, (struct sockaddr *)&addr, &len) < 0) return -errno;
        printf("port: %d\n", ntohs(addr.sin_port));
        return result(connect(client, (struct sockaddr *)&addr, sizeof addr));
    }
    // Abstract unix sockets: a connection to NAME, and a listener on NAME with a forked child
    // (the same sandbox, the same Landlock domain) connecting to it.
    if (!strncmp(name, "abstract-connect:", 17) || !strncmp(name, "abstract-pair:", 14)) {
        const char *at = strchr(name, ':') + 1;
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        size_t n = strlen(at) < sizeof addr.sun_path - 1 ? strlen(at) : sizeof addr.sun_path - 1;
        memcpy(addr.sun_path + 1, at, n);
        socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
        if (name[9] == 'p') {
            int server = socket(AF_UNIX, SOCK_STREAM, 0);
            if (server < 0 || bind(server, (struct sockaddr *)&addr, len) < 0 || listen(server, 1) < 0) return -errno;
            pid_t child = fork();
            if (child == 0) {
                int s = socket(AF_UNIX, SOCK_STREAM, 0);
                _exit(s < 0 || connect(s, (struct sockaddr *)&addr, len) < 0 ? errno : 0);
            }
            int status = 0;
            if (child < 0 || waitpid(child, &status, 0) < 0) return -errno;
            close(server);
            return WIFEXITED(status) && WEXITSTATUS(status) ? -WEXITSTATUS(status) : 0;
        }
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        if (s < 0) return -errno;
        long r = result(connect(s, (struct sockaddr *)&addr, len));
        close(s);
        return r;
    }
    if (!strcmp(name, "kill-init")) return result(kill(1, 0));
    if (!strncmp(name, "kill:", 5)) return result(kill((pid_t)atoi(name + 5), 0));
    if (!strcmp(name, "setsid")) return result(setsid());
    if (!strcmp(name, "setpgid")) return result(setpgid(0, 0));
    if (!strcmp(name, "landlock-abi")) {
        long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, 1UL /* LANDLOCK_CREATE_RULESET_VERSION */);
        printf("abi=%ld\n", abi < 0 ? 0 : abi);
        return 0;
    }
    if (!strcmp(name, "getpid-after")) return result(getpid());
    if (!strcmp(name, "securebits")) { long bits = prctl(PR_GET_SECUREBITS); if (bits < 0) return -errno; printf("securebits=%#lx\n", bits); return 0; }
    // getpid through the i386 entry point: a foreign syscall architecture.
    if (!strcmp(name, "int80")) { long ret; __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20) : "memory"); return ret < 0 ? ret : 0; }
    if (!strcmp(name, "chroot")) return result(chroot("/tmp"));
    if (!strncmp(name, "write:", 6)) {
        int fd = open(name + 6, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) return -errno;
        long r = result(write(fd, "stockade\n", 9));
        close(fd);
        return r;
    }
    if (!strncmp(name, "read:", 5)) {
        int fd = open(name + 5, O_RDONLY);
        if (fd < 0) return -errno;
        close(fd);
        return 0;
    }
    if (!strncmp(name, "cat:", 4)) {
        int fd = open(name + 4, O_RDONLY);
        if (fd < 0) return -errno;
        char buf[4096];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0) fwrite(buf, 1, (size_t)n, stdout);
        close(fd);
        return 0;
    }
    // send, sendmsg, sendmmsg, recv, recvmsg, recvmmsg on an AF_UNIX pair; `-oob`: with
    // MSG_OOB; `-1023`: from descriptor 1023, where an audited sandbox hands its listener over.
    if (!strncmp(name, "send", 4) || !strncmp(name, "recv", 4)) return sockets(name);
    fprintf(stderr, "probe: unknown probe %s\n", name);
    exit(2);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        long r = probe(argv[i]);
        printf("%s: %s\n", argv[i], r < 0 ? symbol((int)-r) : "ok");
    }
    return 0;
}
