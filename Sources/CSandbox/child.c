// Everything here runs in the child of clone3() (or clone()): a copy of a possibly
// multithreaded Swift process. Only raw syscalls and AS-safe libc functions
// (memcpy, strlen, ...) are used; no malloc, no stdio, no glibc wrappers that
// keep process-wide state (setuid() and friends broadcast to threads that do
// not exist here, so ids change through syscall(2) directly).
#define _GNU_SOURCE
#include "stockade_sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <linux/securebits.h>

#ifndef MNT_DETACH
#define MNT_DETACH 2 // <sys/mount.h>, which clashes with <linux/mount.h>
#endif

// Newer than Debian 12's kernel headers (6.1).
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
#define LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0)
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif

#define STK_EXIT_SETUP_FAILED 125
#define STK_EXIT_NOT_EXECUTABLE 126
#define STK_EXIT_NOT_FOUND 127

// ---------------------------------------------------------------- reporting

static void report(int fd, int32_t kind, int32_t stage, int32_t error, int32_t index, int32_t status) {
    struct stk_report r = {kind, stage, error, index, status};
    // write(), not send(): it is what a seccomp profile is sure to allow.
    (void)write(fd, &r, sizeof r);
}

/// Reports `stage` with the current errno and ends this process.
static _Noreturn void fail_at(const struct stk_spawn_plan *p, int stage, int index) {
    int err = errno;
    report(p->sync_fd, STK_REPORT_FAILED, stage, err, index, 0);
    _exit(STK_EXIT_SETUP_FAILED);
}

#define CHECK(call, stage, index) \
    do { if ((call) < 0) fail_at(plan, (stage), (index)); } while (0)

// ---------------------------------------------------------------- formatting

static void format_unsigned(char *buf, size_t cap, uint64_t value, unsigned base) {
    char tmp[24];
    size_t n = 0;
    do { tmp[n++] = (char)('0' + value % base); value /= base; } while (value && n < sizeof tmp);
    size_t i = 0;
    while (n && i + 1 < cap) buf[i++] = tmp[--n];
    buf[i] = 0;
}

// ---------------------------------------------------------------- paths

static int open_how(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = flags;
    how.mode = mode;
    how.resolve = resolve;
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

#define IN_ROOT (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)

/// `/a/b` → `a/b`; `/` → `.`
static const char *relative(const char *path) {
    while (*path == '/') path++;
    return *path ? path : ".";
}

/// Opens `path` (inside the sandbox) below the new root; symlinks resolve
/// inside it, so nothing a guest wrote can lead the supervisor out.
static int open_in_root(int rootfd, const char *path, uint64_t flags) {
    return open_how(rootfd, relative(path), flags | O_CLOEXEC, 0, IN_ROOT);
}

/// Splits `path` into its parent (copied into `parent`) and last component.
static const char *split_parent(const char *path, char *parent, size_t cap) {
    const char *rel = relative(path);
    const char *slash = strrchr(rel, '/');
    if (!slash) { parent[0] = '.'; parent[1] = 0; return rel; }
    size_t len = (size_t)(slash - rel);
    if (len + 1 > cap) { errno = ENAMETOOLONG; return NULL; }
    memcpy(parent, rel, len);
    parent[len] = 0;
    return slash + 1;
}

/// mkdir -p below the new root. Each step opens its parent with RESOLVE_IN_ROOT.
static int make_dirs(int rootfd, const char *path) {
    const char *rel = relative(path);
    if (rel[0] == '.' && rel[1] == 0) return 0;
    size_t len = strlen(rel);
    char prefix[PATH_MAX];
    if (len >= sizeof prefix) { errno = ENAMETOOLONG; return -1; }
    size_t start = 0;
    while (start < len) {
        size_t end = start;
        while (end < len && rel[end] != '/') end++;
        if (end > start) {
            int parent = rootfd;
            if (start > 0) {
                memcpy(prefix, rel, start - 1);
                prefix[start - 1] = 0;
                parent = open_how(rootfd, prefix, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, IN_ROOT);
                if (parent < 0) return -1;
            }
            memcpy(prefix, rel + start, end - start);
            prefix[end - start] = 0;
            int r = mkdirat(parent, prefix, 0755);
            int err = errno;
            if (parent != rootfd) close(parent);
            if (r < 0 && err != EEXIST) { errno = err; return -1; }
        }
        start = end + 1;
    }
    return 0;
}

static int make_parent_dirs(int rootfd, const char *path) {
    char parent[PATH_MAX];
    if (!split_parent(path, parent, sizeof parent)) return -1;
    return make_dirs(rootfd, parent);
}

// ---------------------------------------------------------------- mounts

static int attach(int tree, int target) {
    return (int)syscall(SYS_move_mount, tree, "", target, "",
                        MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
}

static int set_attributes(int fd, uint64_t set, int recursive) {
    struct mount_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.attr_set = set;
    return (int)syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0),
                        &attr, sizeof attr);
}

/// A new superblock of `fstype` as a detached mount, configured by string options.
static int new_filesystem(const char *fstype, const char *const *options, uint64_t attrs) {
    int fs = (int)syscall(SYS_fsopen, fstype, FSOPEN_CLOEXEC);
    if (fs < 0) return -1;
    for (size_t i = 0; options && options[i]; i += 2) {
        int r = options[i + 1]
            ? (int)syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, options[i], options[i + 1], 0)
            : (int)syscall(SYS_fsconfig, fs, FSCONFIG_SET_FLAG, options[i], NULL, 0);
        if (r < 0) { int e = errno; close(fs); errno = e; return -1; }
    }
    if (syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
        int e = errno; close(fs); errno = e; return -1;
    }
    int mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, attrs);
    int e = errno;
    close(fs);
    errno = e;
    return mnt;
}

static int mount_tmpfs(int target, const struct stk_mount *m) {
    char mode[16], size[24], uid[16], gid[16];
    format_unsigned(mode, sizeof mode, m->mode ? m->mode : 0755, 8);
    const char *options[10] = {"mode", mode};
    size_t n = 2;
    if (m->size) {
        format_unsigned(size, sizeof size, m->size, 10);
        options[n++] = "size"; options[n++] = size;
    }
    if (m->uid != (uint32_t)-1) {
        format_unsigned(uid, sizeof uid, m->uid, 10);
        format_unsigned(gid, sizeof gid, m->gid, 10);
        options[n++] = "uid"; options[n++] = uid;
        options[n++] = "gid"; options[n++] = gid;
    }
    options[n] = NULL;
    int mnt = new_filesystem("tmpfs", options, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
    if (mnt < 0) return -1;
    int r = attach(mnt, target);
    int e = errno;
    close(mnt);
    errno = e;
    return r;
}

/// Creates the mount point for a bind: a directory, or an empty file for a file source.
static int bind_target(const struct stk_spawn_plan *plan, int rootfd, const struct stk_mount *m, int source, int index) {
    struct stat st;
    CHECK(fstat(source, &st), STK_STAGE_OPEN_SOURCE, index);
    if (S_ISDIR(st.st_mode)) {
        CHECK(make_dirs(rootfd, m->dest), STK_STAGE_MOUNTPOINT, index);
    } else {
        CHECK(make_parent_dirs(rootfd, m->dest), STK_STAGE_MOUNTPOINT, index);
        int f = open_how(rootfd, relative(m->dest), O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644, IN_ROOT);
        if (f < 0) fail_at(plan, STK_STAGE_MOUNTPOINT, index);
        close(f);
    }
    int target = open_in_root(rootfd, m->dest, O_PATH);
    if (target < 0) fail_at(plan, STK_STAGE_MOUNTPOINT, index);
    return target;
}

static void do_bind(const struct stk_spawn_plan *plan, int rootfd, const struct stk_mount *m, int source, int index) {
    int target = bind_target(plan, rootfd, m, source, index);
    int tree = (int)syscall(SYS_open_tree, source, "",
                            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
    if (tree < 0) fail_at(plan, STK_STAGE_BIND, index);
    // Attributes go on the detached copy, so it is never visible writable or with suid.
    uint64_t attrs = MOUNT_ATTR_NOSUID;
    if (!(m->flags & STK_MOUNT_DEVICES)) attrs |= MOUNT_ATTR_NODEV;
    if (m->flags & STK_MOUNT_READONLY) attrs |= MOUNT_ATTR_RDONLY;
    CHECK(set_attributes(tree, attrs, 1), STK_STAGE_BIND, index);
    CHECK(attach(tree, target), STK_STAGE_BIND, index);
    close(tree);
    close(target);
}

static void do_mask(const struct stk_spawn_plan *plan, int rootfd, const struct stk_mount *m, int index) {
    int target = open_in_root(rootfd, m->dest, O_PATH | O_NOFOLLOW);
    if (target < 0) {
        if (errno == ENOENT) return;
        fail_at(plan, STK_STAGE_REMOUNT, index);
    }
    int tree = (int)syscall(SYS_open_tree, target, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
    if (tree < 0) fail_at(plan, STK_STAGE_REMOUNT, index);
    CHECK(set_attributes(tree, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, 0),
          STK_STAGE_REMOUNT, index);
    CHECK(attach(tree, target), STK_STAGE_REMOUNT, index);
    close(tree);
    close(target);
}

static void write_all(const struct stk_spawn_plan *plan, int fd, const char *data, size_t len, int index) {
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail_at(plan, STK_STAGE_FILE, index);
        }
        data += n;
        len -= (size_t)n;
    }
}

/// Opens the directory `path` will be made in (created as needed) and
/// leaves its last component in `*name`.
static int open_parent(const struct stk_spawn_plan *plan, int rootfd, const struct stk_mount *m,
                       char *parent, size_t cap, const char **name, int stage, int index) {
    *name = split_parent(m->dest, parent, cap);
    if (!*name) fail_at(plan, stage, index);
    CHECK(make_dirs(rootfd, parent), STK_STAGE_MOUNTPOINT, index);
    int dir = open_how(rootfd, parent, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, IN_ROOT);
    if (dir < 0) fail_at(plan, stage, index);
    return dir;
}

/// A fresh filesystem (tmpfs, proc or devpts) on a directory made for it.
static void mount_new_filesystem(const struct stk_spawn_plan *plan, int rootfd, const struct stk_mount *m, int index) {
    CHECK(make_dirs(rootfd, m->dest), STK_STAGE_MOUNTPOINT, index);
    int target = open_in_root(rootfd, m->dest, O_PATH | O_DIRECTORY);
    if (target < 0) fail_at(plan, STK_STAGE_MOUNTPOINT, index);
    if (m->kind == STK_MOUNT_TMPFS) {
        CHECK(mount_tmpfs(target, m), STK_STAGE_TMPFS, index);
    } else {
        int proc = m->kind == STK_MOUNT_PROC;
        const char *devpts[] = {"newinstance", NULL, "ptmxmode", "0666", "mode", "0620", NULL};
        int stage = proc ? STK_STAGE_PROC : STK_STAGE_DEVPTS;
        int mnt = proc ? new_filesystem("proc", NULL, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)
                       : new_filesystem("devpts", devpts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
        if (mnt < 0) fail_at(plan, stage, index);
        CHECK(attach(mnt, target), stage, index);
        close(mnt);
    }
    close(target);
}

static void make_symlink(const struct stk_spawn_plan *plan, int rootfd, const struct stk_mount *m, int index) {
    char parent[PATH_MAX];
    const char *name;
    int dir = open_parent(plan, rootfd, m, parent, sizeof parent, &name, STK_STAGE_SYMLINK, index);
    CHECK(symlinkat(m->data, dir, name), STK_STAGE_SYMLINK, index);
    close(dir);
}

static void make_file(const struct stk_spawn_plan *plan, int rootfd, const struct stk_mount *m, int index) {
    char parent[PATH_MAX];
    const char *name;
    int dir = open_parent(plan, rootfd, m, parent, sizeof parent, &name, STK_STAGE_FILE, index);
    int f = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (f < 0) fail_at(plan, STK_STAGE_FILE, index);
    write_all(plan, f, m->data, m->data_len, index);
    if (m->uid != (uint32_t)-1) CHECK(fchown(f, m->uid, m->gid), STK_STAGE_FILE, index);
    CHECK(fchmod(f, m->mode ? m->mode : 0644), STK_STAGE_FILE, index);
    close(f);
    close(dir);
}

static void make_directory(const struct stk_spawn_plan *plan, int rootfd, const struct stk_mount *m, int index) {
    CHECK(make_dirs(rootfd, m->dest), STK_STAGE_DIR, index);
    int d = open_in_root(rootfd, m->dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (d < 0) fail_at(plan, STK_STAGE_DIR, index);
    if (m->uid != (uint32_t)-1) CHECK(fchown(d, m->uid, m->gid), STK_STAGE_DIR, index);
    CHECK(fchmod(d, m->mode ? m->mode : 0755), STK_STAGE_DIR, index);
    close(d);
}

static void remount_read_only(const struct stk_spawn_plan *plan, int rootfd, const struct stk_mount *m, int index) {
    int target = open_in_root(rootfd, m->dest, O_PATH);
    if (target < 0) fail_at(plan, STK_STAGE_REMOUNT, index);
    CHECK(set_attributes(target, MOUNT_ATTR_RDONLY, (m->flags & STK_MOUNT_RECURSIVE) != 0), STK_STAGE_REMOUNT, index);
    close(target);
}

static void run_mount(const struct stk_spawn_plan *plan, int rootfd, size_t i) {
    const struct stk_mount *m = &plan->mounts[i];
    int index = (int)i;
    switch (m->kind) {
    case STK_MOUNT_BIND:
        if (plan->scratch_fds[i] >= 0) do_bind(plan, rootfd, m, plan->scratch_fds[i], index);
        break;
    case STK_MOUNT_TMPFS:
    case STK_MOUNT_PROC:
    case STK_MOUNT_DEVPTS: mount_new_filesystem(plan, rootfd, m, index); break;
    case STK_MOUNT_SYMLINK: make_symlink(plan, rootfd, m, index); break;
    case STK_MOUNT_FILE: make_file(plan, rootfd, m, index); break;
    case STK_MOUNT_DIR: make_directory(plan, rootfd, m, index); break;
    case STK_MOUNT_REMOUNT_RO: remount_read_only(plan, rootfd, m, index); break;
    case STK_MOUNT_MASK_RO: do_mask(plan, rootfd, m, index); break;
    default:
        errno = EINVAL;
        fail_at(plan, STK_STAGE_MOUNTPOINT, index);
    }
}

/// Opens every bind source before anything is mounted over the staging
/// directory; the canonical path is walked with no symlinks at all and the
/// inode must be the one the parent planned with.
static void open_sources(const struct stk_spawn_plan *plan) {
    for (size_t i = 0; i < plan->mount_count; i++) {
        const struct stk_mount *m = &plan->mounts[i];
        plan->scratch_fds[i] = -1;
        if (m->kind != STK_MOUNT_BIND) continue;
        int fd = open_how(AT_FDCWD, m->source, O_PATH | O_CLOEXEC, 0, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
        if (fd < 0) {
            if (errno == ENOENT && (m->flags & STK_MOUNT_OPTIONAL)) continue;
            fail_at(plan, STK_STAGE_OPEN_SOURCE, (int)i);
        }
        if (m->source_dev || m->source_ino) {
            struct stat st;
            CHECK(fstat(fd, &st), STK_STAGE_OPEN_SOURCE, (int)i);
            if ((uint64_t)st.st_dev != m->source_dev || (uint64_t)st.st_ino != m->source_ino) {
                errno = ESTALE;
                fail_at(plan, STK_STAGE_SOURCE_CHANGED, (int)i);
            }
        }
        plan->scratch_fds[i] = fd;
    }
}

static void build_root(const struct stk_spawn_plan *plan) {
    int staging = open_how(AT_FDCWD, plan->staging, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_NO_SYMLINKS);
    if (staging < 0) fail_at(plan, STK_STAGE_STAGING_ROOT, -1);
    const char *options[] = {"mode", "0755", NULL};
    int mnt = new_filesystem("tmpfs", options, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
    if (mnt < 0) fail_at(plan, STK_STAGE_STAGING_ROOT, -1);
    CHECK(attach(mnt, staging), STK_STAGE_STAGING_ROOT, -1);
    close(mnt);
    close(staging);
    int rootfd = open_how(AT_FDCWD, plan->staging, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_NO_SYMLINKS);
    if (rootfd < 0) fail_at(plan, STK_STAGE_STAGING_ROOT, -1);

    for (size_t i = 0; i < plan->mount_count; i++) {
        run_mount(plan, rootfd, i);
        if (plan->scratch_fds[i] >= 0) { close(plan->scratch_fds[i]); plan->scratch_fds[i] = -1; }
    }

    // procfs was mounted above, before the old root goes: in a user namespace
    // the kernel only allows a new proc while a fully visible one exists.
    CHECK(fchdir(rootfd), STK_STAGE_PIVOT_ROOT, -1);
    CHECK(syscall(SYS_pivot_root, ".", "."), STK_STAGE_PIVOT_ROOT, -1);
    CHECK(syscall(SYS_umount2, ".", MNT_DETACH), STK_STAGE_DETACH_OLD_ROOT, -1);
    CHECK(chdir("/"), STK_STAGE_PIVOT_ROOT, -1);
    close(rootfd);
}

// ---------------------------------------------------------------- identity

static void bring_loopback_up(const struct stk_spawn_plan *plan) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) fail_at(plan, STK_STAGE_LOOPBACK, -1);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, "lo", 3);
    CHECK(ioctl(s, SIOCGIFFLAGS, &ifr), STK_STAGE_LOOPBACK, -1);
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    CHECK(ioctl(s, SIOCSIFFLAGS, &ifr), STK_STAGE_LOOPBACK, -1);
    close(s);
}

/// Becomes the stack user with no capabilities that could ever come back:
/// empty bounding set, locked securebits, no supplementary groups.
/// Without privilege (the fallback as an unprivileged invoker) the command
/// stays the invoker, who has no capabilities to drop but ambient ones.
static void drop_to_stack_user(const struct stk_spawn_plan *plan) {
    if (plan->switch_identity) {
        for (int cap = 0; cap <= plan->cap_last_cap; cap++) {
            if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
                fail_at(plan, STK_STAGE_BOUNDING_SET, cap);
        }
        CHECK(prctl(PR_SET_SECUREBITS,
                    SECBIT_NOROOT | SECBIT_NOROOT_LOCKED |
                    SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED |
                    SECBIT_KEEP_CAPS_LOCKED |
                    SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED, 0, 0, 0),
              STK_STAGE_SECUREBITS, -1);
        if (plan->clear_groups) CHECK(syscall(SYS_setgroups, 0, NULL), STK_STAGE_SETGROUPS, -1);
        CHECK(syscall(SYS_setresgid, plan->gid, plan->gid, plan->gid), STK_STAGE_SETGID, -1);
        CHECK(syscall(SYS_setresuid, plan->uid, plan->uid, plan->uid), STK_STAGE_SETUID, -1);
    }
    CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), STK_STAGE_CAPABILITIES, -1);
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    CHECK(syscall(SYS_capset, &header, data), STK_STAGE_CAPABILITIES, -1);
    // setresuid above may have reset it; keep /proc/1 and ptrace closed to the guest.
    CHECK(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), STK_STAGE_NOT_DUMPABLE, -1);
}

// ---------------------------------------------------------------- confinement

static int install_filter(const struct stk_bpf *bpf) {
    struct sock_fprog prog = {bpf->count, (struct sock_filter *)bpf->instructions};
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, bpf->flags, &prog);
}

#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif

/// Installs the profile with a listener and hands the listener to the
/// parent: after this the command's notified syscalls wait for the
/// supervisor, so the command does not go on until the parent has it.
static void install_audited_profile(const struct stk_spawn_plan *plan, const char *path) {
    struct stk_bpf audited = plan->profile;
    audited.flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    if (plan->sync_fd != plan->handoff_fd && dup3(plan->sync_fd, plan->handoff_fd, O_CLOEXEC) < 0)
        fail_at(plan, STK_STAGE_AUDIT_LISTENER, -1);
    int listener = install_filter(&audited);
    if (listener < 0) fail_at(plan, STK_STAGE_SECCOMP_PROFILE, -1);
    struct stk_report r = {STK_REPORT_LISTENER, 0, 0, -1, 0};
    char control[CMSG_SPACE(sizeof(int))];
    memset(control, 0, sizeof control);
    // The resolved program rides along: the supervisor may not be allowed to
    // read this not-yet-dumpable process's memory for the first execve.
    struct iovec iov[2] = {{&r, sizeof r}, {(void *)path, strlen(path) + 1}};
    struct msghdr *msg = plan->handoff_message;
    memset(msg, 0, sizeof *msg);
    msg->msg_iov = iov;
    msg->msg_iovlen = 2;
    msg->msg_control = control;
    msg->msg_controllen = sizeof control;
    struct cmsghdr *c = CMSG_FIRSTHDR(msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &listener, sizeof(int));
    // Exactly the registers the filter's exception expects (see the plan).
    uint64_t secret = plan->handoff_secret;
    long fd = (long)((uint64_t)(uint32_t)plan->handoff_fd | (secret & 0xFFFFFFFF00000000ULL));
    long flags = (long)((uint64_t)MSG_NOSIGNAL | secret << 32);
    // Nothing but this sendmsg passes the filter unobserved yet, not even a
    // report of its failure: just end.
    if (syscall(SYS_sendmsg, fd, msg, flags) < 0) _exit(STK_EXIT_SETUP_FAILED);
    // The command must not hold its own listener: it could answer itself.
    close(listener);
    char ack = 0;
    ssize_t n;
    do { n = read(plan->handoff_fd, &ack, 1); } while (n < 0 && errno == EINTR);
    if (n != 1) fail_at(plan, STK_STAGE_AUDIT_LISTENER, -1);
    close(plan->handoff_fd);
}

struct stk_landlock_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

static void landlock_allow(int ruleset, int fd, uint64_t access) {
    struct landlock_path_beneath_attr rule = {access, fd};
    (void)syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0);
}

/// Each of `paths` that exists, with `access` (its file rights only for a
/// file). No symlink is followed: in the fallback these are host paths,
/// canonical when planned, and a link put in since must grant nothing.
static void landlock_allow_paths(int ruleset, const char *const *paths, size_t count, uint64_t access, uint64_t file_access) {
    for (size_t i = 0; i < count; i++) {
        int fd = open_how(AT_FDCWD, paths[i], O_PATH | O_CLOEXEC, 0, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
        if (fd < 0) continue;
        struct stat st;
        if (fstat(fd, &st) == 0) landlock_allow(ruleset, fd, S_ISDIR(st.st_mode) ? access : file_access);
        close(fd);
    }
}

/// A second wall behind the mount layout, the only one in the fallback:
/// writes only beneath the writable paths (there reads too, and nowhere
/// else, when the plan lists readable paths), no abstract unix sockets or
/// signals that leave the sandbox.
static void restrict_writes(const struct stk_spawn_plan *plan) {
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 1) return; // not offered by this kernel: the mount layout stands alone
    uint64_t file_write = LANDLOCK_ACCESS_FS_WRITE_FILE | (abi >= 3 ? LANDLOCK_ACCESS_FS_TRUNCATE : 0);
    uint64_t write = file_write |
        LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
        LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
        LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
        LANDLOCK_ACCESS_FS_MAKE_SYM | (abi >= 2 ? LANDLOCK_ACCESS_FS_REFER : 0);
    uint64_t file_read = 0, read = 0;
    if (plan->readable_paths) {
        file_read = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_EXECUTE;
        read = file_read | LANDLOCK_ACCESS_FS_READ_DIR;
    }
    struct stk_landlock_ruleset_attr attr = {write | read, 0, 0};
    size_t size = sizeof(uint64_t);
    if (abi >= 4) {
        // No rule allows a port, so handling TCP refuses all of it.
        if (plan->deny_tcp) attr.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP;
        size = 2 * sizeof(uint64_t);
    }
    if (abi >= 6) {
        attr.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;
        size = sizeof attr;
    }
    int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
    if (ruleset < 0) fail_at(plan, STK_STAGE_LANDLOCK, -1);
    landlock_allow_paths(ruleset, plan->writable_paths, plan->writable_count, write | read, file_write | file_read);
    landlock_allow_paths(ruleset, plan->readable_paths, plan->readable_count, read, file_read);
    // A terminal or file the user handed in as stdio stays usable through
    // /dev/stdout and /proc/self/fd, which resolve outside the new root.
    for (int fd = 0; fd < 3; fd++) {
        struct stat st;
        if (fstat(fd, &st) == 0 && (S_ISCHR(st.st_mode) || S_ISREG(st.st_mode)))
            landlock_allow(ruleset, fd, file_write | (file_read & LANDLOCK_ACCESS_FS_READ_FILE));
    }
    CHECK(syscall(SYS_landlock_restrict_self, ruleset, 0), STK_STAGE_LANDLOCK, -1);
    close(ruleset);
}

/// Without a pid namespace nothing ends the command's processes with pid 1,
/// so there pid 1 catches its parent's death and kills its whole group.
#define STK_PARENT_GONE (_NSIG - 1)

/// PR_SET_PDEATHSIG is cleared by every change of euid, egid, fsuid or fsgid,
/// so it is armed again after each; a parent that died in between has
/// closed its end of the socket.
static void arm_parent_death(const struct stk_spawn_plan *plan) {
    CHECK(prctl(PR_SET_PDEATHSIG, plan->namespaced ? SIGKILL : STK_PARENT_GONE, 0, 0, 0), STK_STAGE_PARENT_DEATH_SIGNAL, -1);
    struct pollfd parent = {plan->sync_fd, POLLIN, 0};
    if (poll(&parent, 1, 0) > 0 && (parent.revents & (POLLHUP | POLLERR))) _exit(STK_EXIT_SETUP_FAILED);
}

#if defined(__x86_64__)
#define STK_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define STK_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "the fallback's session filter needs this architecture's AUDIT_ARCH"
#endif

/// The fallback's kill is of a process group: nothing may leave it
/// (setsid, setpgid: EPERM). Other architectures and x32 are refused.
static const struct sock_filter keep_session[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, STK_AUDIT_ARCH, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 3, 0),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_setsid, 2, 0),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_setpgid, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
};

// ---------------------------------------------------------------- the command

static _Noreturn void fail_exec(const struct stk_spawn_plan *plan, int err) {
    report(plan->sync_fd, STK_REPORT_FAILED, STK_STAGE_EXEC, err, -1, 0);
    _exit(err == ENOENT ? STK_EXIT_NOT_FOUND : STK_EXIT_NOT_EXECUTABLE);
}

/// The PATH search of execvp, done before any filter is installed so an
/// audit sees one execve of the program rather than every candidate; and no
/// /bin/sh fallback: a script without a shebang is not executable here.
static const char *resolve_command(const struct stk_spawn_plan *plan, char *resolved, size_t cap) {
    const char *file = plan->argv[0];
    if (strchr(file, '/')) return file;
    size_t file_len = strlen(file);
    int denied = 0;
    const char *dir = plan->search_path;
    while (dir) {
        const char *colon = strchr(dir, ':');
        size_t dir_len = colon ? (size_t)(colon - dir) : strlen(dir);
        if (dir_len + 2 + file_len < cap) {
            size_t n = 0;
            if (dir_len == 0) resolved[n++] = '.';
            memcpy(resolved + n, dir, dir_len);
            n += dir_len;
            resolved[n++] = '/';
            memcpy(resolved + n, file, file_len + 1);
            struct stat st;
            if (stat(resolved, &st) == 0 && S_ISREG(st.st_mode)) {
                if (access(resolved, X_OK) == 0) return resolved;
                denied = 1;
            }
        }
        dir = colon ? colon + 1 : NULL;
    }
    fail_exec(plan, denied ? EACCES : ENOENT);
}

static _Noreturn void exec_command(const struct stk_spawn_plan *plan, const char *path) {
    execve(path, (char *const *)plan->argv, (char *const *)plan->envp);
    fail_exec(plan, errno);
}

static _Noreturn void become_command(const struct stk_spawn_plan *plan) {
    // Lift sources below 3 out of the way first, so one dup2 cannot clobber
    // the source of the next.
    int source[3];
    for (int fd = 0; fd < 3; fd++) {
        source[fd] = plan->stdio[fd];
        if (source[fd] >= 0 && source[fd] < 3 && source[fd] != fd) {
            source[fd] = fcntl(source[fd], F_DUPFD_CLOEXEC, 3);
            if (source[fd] < 0) fail_at(plan, STK_STAGE_STDIO, fd);
        }
    }
    for (int fd = 0; fd < 3; fd++) {
        if (source[fd] >= 0 && source[fd] != fd) CHECK(dup2(source[fd], fd), STK_STAGE_STDIO, fd);
    }
    // In the fallback pid 1 leads the session, so the command stays in its group.
    if (plan->namespaced) CHECK(setsid(), STK_STAGE_SESSION, -1);
    for (size_t i = 0; i < plan->rlimit_count; i++) {
        struct rlimit64 limit = {plan->rlimits[i].soft, plan->rlimits[i].hard};
        CHECK(syscall(SYS_prlimit64, 0, plan->rlimits[i].resource, &limit, NULL), STK_STAGE_RLIMIT, (int)i);
    }
    umask(plan->umask);
    CHECK(chdir(plan->workdir), STK_STAGE_CHDIR, -1);
    // Nothing the supervisor had open reaches the command (CVE-2024-21626);
    // the report socket stays usable until execve closes it.
    CHECK(syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC), STK_STAGE_CLOSE_FDS, -1);

    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) (void)sigaction(sig, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);

    CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), STK_STAGE_NO_NEW_PRIVS, -1);
    char resolved[PATH_MAX];
    const char *path = resolve_command(plan, resolved, sizeof resolved);
    if (plan->landlock) restrict_writes(plan);
    // The baseline goes first and the profile last: on equal actions the
    // newest filter decides, so the profile's own errno wins; the profile
    // compiler forces clone3 → ENOSYS so libc falls back to an inspectable clone.
    if (!plan->namespaced) {
        struct stk_bpf session = {keep_session, sizeof keep_session / sizeof keep_session[0], 0};
        CHECK(install_filter(&session), STK_STAGE_SESSION_FILTER, -1);
    }
    if (plan->baseline.count) CHECK(install_filter(&plan->baseline), STK_STAGE_SECCOMP_BASELINE, -1);
    if (plan->profile.count && plan->audit_listener) install_audited_profile(plan, path);
    else if (plan->profile.count) CHECK(install_filter(&plan->profile), STK_STAGE_SECCOMP_PROFILE, -1);
    exec_command(plan, path);
}

// ---------------------------------------------------------------- pid 1

/// The sandbox's init: reaps every orphan, forwards termination signals to
/// the command, and exits with the command's status. Its exit takes the
/// whole pid namespace with it.
static _Noreturn void serve_as_init(const struct stk_spawn_plan *plan, pid_t command) {
    int sync = plan->sync_fd;
    if (sync > 3) (void)syscall(SYS_close_range, 3, sync - 1, 0);
    (void)syscall(SYS_close_range, sync + 1, ~0U, 0);
    for (int fd = 0; fd < 3; fd++) if (fd != sync) close(fd);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || (plan->init_filter.count && install_filter(&plan->init_filter) < 0)) {
        (void)syscall(SYS_kill, command, SIGKILL);
        fail_at(plan, STK_STAGE_INIT_FILTER, -1);
    }

    sigset_t waited;
    sigemptyset(&waited);
    const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) sigaddset(&waited, forwarded[i]);
    sigaddset(&waited, SIGCHLD);
    if (!plan->namespaced) sigaddset(&waited, STK_PARENT_GONE);
    for (;;) {
        int status;
        pid_t pid;
        while ((pid = (pid_t)syscall(SYS_wait4, -1, &status, WNOHANG, NULL)) > 0) {
            if (pid == command) {
                report(sync, STK_REPORT_EXITED, 0, 0, -1, status);
                _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
            }
        }
        siginfo_t info;
        int sig = (int)syscall(SYS_rt_sigtimedwait, &waited, &info, NULL, _NSIG / 8);
        if (sig == STK_PARENT_GONE) (void)syscall(SYS_kill, 0, SIGKILL);
        else if (sig > 0 && sig != SIGCHLD) (void)syscall(SYS_kill, command, sig);
    }
}

// ---------------------------------------------------------------- hiding the supervisor

/// pid 1 is a copy of the supervisor, whose argv and environment (paths,
/// `--env K=V`) /proc/1/cmdline would show to the command: cmdline needs no
/// ptrace access, unlike environ, maps or mem, which non-dumpability closes.
/// The copies of those strings are wiped, and PR_SET_MM_MAP (no capability
/// needed without exe_fd) points the kernel's record of them, and of the
/// auxiliary vector, at nothing.
static void hide_supervisor(const struct stk_spawn_plan *plan) {
    const struct stk_memory_layout *m = &plan->supervisor_memory;
    if (!m->arg_start || m->arg_end < m->arg_start || m->env_end < m->env_start) return;
    memset((void *)(uintptr_t)m->arg_start, 0, (size_t)(m->arg_end - m->arg_start));
    memset((void *)(uintptr_t)m->env_start, 0, (size_t)(m->env_end - m->env_start));
    unsigned long auxv[2] = {0, 0}; // AT_NULL
    struct prctl_mm_map map;
    memset(&map, 0, sizeof map);
    map.start_code = m->start_code;
    map.end_code = m->end_code;
    map.start_data = m->start_data;
    map.end_data = m->end_data;
    map.start_brk = m->start_brk;
    map.brk = (uint64_t)syscall(SYS_brk, 0);
    map.start_stack = m->start_stack;
    map.arg_start = map.arg_end = map.env_start = map.env_end = m->arg_start;
    map.auxv = (uint64_t *)auxv;
    map.auxv_size = sizeof auxv;
    map.exe_fd = (uint32_t)-1;
    // A kernel without CONFIG_CHECKPOINT_RESTORE refuses: cmdline then reads
    // as the wiped bytes, still nothing of the supervisor.
    (void)prctl(PR_SET_MM, PR_SET_MM_MAP, &map, sizeof map, 0);
}

// ---------------------------------------------------------------- entry

/// The parent makes the cgroups while we set up; this waits for them and moves in,
/// before anything is started. EOF: the parent died (PDEATHSIG is on its way).
static void join_cgroups(const struct stk_spawn_plan *plan) {
    char tag = 0;
    struct iovec part = {&tag, 1};
    int fds[STK_PASSED_FDS_MAX];
    size_t count = 0;
    long n = stk_receive_with_fds(plan->sync_fd, &part, 1, fds, &count);
    if (n != 1 || tag != STK_SYNC_CGROUPS) {
        for (size_t i = 0; i < count; i++) close(fds[i]);
        if (n == 0) _exit(STK_EXIT_SETUP_FAILED);
        if (n > 0) errno = EPROTO;
        fail_at(plan, STK_STAGE_CGROUP, -1);
    }
    for (size_t i = 0; i < count; i++) {
        if (write(fds[i], "0", 1) != 1) fail_at(plan, STK_STAGE_CGROUP, (int)i);
        close(fds[i]);
    }
}

/// The new root in the new namespaces, up to the switch to the stack user.
static void enter_namespaces(const struct stk_spawn_plan *plan) {
    // Bind sources are opened with the invoker's own credentials, before the
    // switch to the setup identity: they may sit in a directory only the
    // invoker can enter (a private 0700 work directory).
    CHECK(syscall(SYS_mount, "none", "/", NULL, MS_REC | MS_PRIVATE, NULL), STK_STAGE_MOUNT_PRIVATE, -1);
    open_sources(plan);
    if (!plan->cgroups_after_setup) join_cgroups(plan);

    if (plan->setup_gid >= 0) CHECK(syscall(SYS_setresgid, plan->setup_gid, plan->setup_gid, plan->setup_gid), STK_STAGE_SETUP_IDENTITY, -1);
    if (plan->setup_uid >= 0) CHECK(syscall(SYS_setresuid, plan->setup_uid, plan->setup_uid, plan->setup_uid), STK_STAGE_SETUP_IDENTITY, -1);
    arm_parent_death(plan);
    // The maps are written, so nothing outside needs /proc/<pid> any more;
    // closing it keeps other processes of the same host user out during setup.
    CHECK(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), STK_STAGE_NOT_DUMPABLE, -1);

    build_root(plan);
    if (plan->hostname) CHECK(sethostname(plan->hostname, strlen(plan->hostname)), STK_STAGE_HOSTNAME, -1);
    if (plan->loopback_up) bring_loopback_up(plan);
}

_Noreturn void stk_child_main(const struct stk_spawn_plan *plan, int parent_fd);

_Noreturn void stk_child_main(const struct stk_spawn_plan *plan, int parent_fd) {
    close(parent_fd);
    CHECK(prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), STK_STAGE_PARENT_DEATH_SIGNAL, -1);
    // The parent writes our uid/gid maps, then says go; EOF means it died
    // before PDEATHSIG was armed.
    char go = 0;
    ssize_t n;
    do { n = read(plan->sync_fd, &go, 1); } while (n < 0 && errno == EINTR);
    if (n != 1 || go != STK_SYNC_GO) _exit(STK_EXIT_SETUP_FAILED);
    hide_supervisor(plan);

    if (plan->namespaced) {
        enter_namespaces(plan);
    } else {
        // A session and group of its own, which the supervisor kills whole at
        // the end; orphans of the command come back to this process.
        CHECK(setsid(), STK_STAGE_SESSION, -1);
        CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), STK_STAGE_SUBREAPER, -1);
        CHECK(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), STK_STAGE_NOT_DUMPABLE, -1);
    }
    if (!plan->namespaced || plan->cgroups_after_setup) join_cgroups(plan);
    drop_to_stack_user(plan);
    arm_parent_death(plan);

    // vfork: the command borrows our memory until it execs instead of copying
    // the page tables of a whole Swift process a second time. glibc's vfork is
    // an assembly stub that keeps the return address out of the shared stack.
    pid_t command = vfork();
    if (command < 0) fail_at(plan, STK_STAGE_FORK, -1);
    if (command == 0) become_command(plan);
    serve_as_init(plan, command);
}
