// The contract between the Swift supervisor and the C code that runs between
// clone() and execve(). Swift fills these structs completely before the clone;
// the child only reads them (its copy-on-write view of the parent's memory),
// makes raw syscalls, and reports failures as {stage, errno} messages.
#ifndef STOCKADE_SANDBOX_H
#define STOCKADE_SANDBOX_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>

/// Namespace flags for clone3 (glibc hides them without _GNU_SOURCE).
enum stk_namespace {
    STK_NEWNS = 0x00020000,
    STK_NEWCGROUP = 0x02000000,
    STK_NEWUTS = 0x04000000,
    STK_NEWIPC = 0x08000000,
    STK_NEWUSER = 0x10000000,
    STK_NEWPID = 0x20000000,
    STK_NEWNET = 0x40000000,
};

/// The rlimits a plan may set, under names Swift can see.
enum stk_resource {
    STK_RLIMIT_CPU = RLIMIT_CPU,
    STK_RLIMIT_FSIZE = RLIMIT_FSIZE,
    STK_RLIMIT_NOFILE = RLIMIT_NOFILE,
    STK_RLIMIT_NPROC = RLIMIT_NPROC,
    STK_RLIMIT_AS = RLIMIT_AS,
    STK_RLIMIT_CORE = RLIMIT_CORE,
};

/// What one step of the filesystem plan does. Destinations are absolute paths
/// inside the sandbox, resolved inside the new root so no symlink leads out.
enum stk_mount_kind {
    STK_MOUNT_BIND = 1,   ///< bind `source` (canonical host path) recursively onto `dest`
    STK_MOUNT_TMPFS,      ///< fresh tmpfs; `mode`, `uid`/`gid` own its root, `size` bytes (0: kernel default)
    STK_MOUNT_PROC,       ///< fresh procfs for the new pid namespace
    STK_MOUNT_DEVPTS,     ///< devpts newinstance
    STK_MOUNT_SYMLINK,    ///< symlink at `dest` pointing at `data`
    STK_MOUNT_FILE,       ///< regular file at `dest` with `data_len` bytes of `data`
    STK_MOUNT_DIR,        ///< directory at `dest` with `mode`, owned by `uid`/`gid`
    STK_MOUNT_REMOUNT_RO, ///< make the mount at `dest` read-only (recursively if STK_MOUNT_RECURSIVE)
    STK_MOUNT_MASK_RO,    ///< bind `dest` onto itself read-only if it exists (procfs masks)
};

enum {
    STK_MOUNT_READONLY = 1u << 0,   ///< bind: read-only, recursively
    STK_MOUNT_OPTIONAL = 1u << 1,   ///< bind: skip when the source does not exist
    STK_MOUNT_DEVICES = 1u << 2,    ///< bind: keep device nodes usable (no nodev), for /dev/null and friends
    STK_MOUNT_RECURSIVE = 1u << 3,  ///< remount: apply to every submount too
};

struct stk_mount {
    uint32_t kind;
    uint32_t flags;
    const char *source;     ///< host path, canonical (no symlinks), for binds
    const char *dest;       ///< absolute path inside the sandbox
    const char *data;       ///< symlink target, file content, or devpts options
    size_t data_len;
    uint32_t mode;
    uint32_t uid;           ///< owner inside the sandbox; (uint32_t)-1 keeps the creator
    uint32_t gid;
    uint64_t size;          ///< tmpfs size limit in bytes, 0 for the kernel default
    uint64_t source_dev;    ///< identity of the source as the parent saw it;
    uint64_t source_ino;    ///< both 0: not checked
};

struct stk_rlimit {
    int resource;
    uint64_t soft;
    uint64_t hard;
};

/// A BPF program as `struct sock_filter` records; `count` instructions.
struct stk_bpf {
    const void *instructions;
    uint16_t count;
    uint32_t flags;     ///< SECCOMP_FILTER_FLAG_* for seccomp(2)
};

/// Where the supervisor's memory regions lie, as /proc/self/stat gives them
/// (fields 26-28 and 45-51). pid 1 is a copy of the supervisor: it wipes its
/// copy of the argument and environment strings and points the kernel's
/// record of them at nothing, so /proc/1/cmdline shows nothing of them.
struct stk_memory_layout {
    uint64_t start_code, end_code, start_data, end_data, start_brk, start_stack;
    uint64_t arg_start, arg_end, env_start, env_end;
};

struct stk_spawn_plan {
    uint64_t clone_flags;           ///< CLONE_NEW* namespaces to create
    /// 0: the fallback without namespaces. Nothing is mounted; pid 1 (the
    /// sandbox's init, not the namespace's) leads a session of its own that
    /// the command cannot leave, and the supervisor kills that whole group.
    int namespaced;
    /// Change to `uid`/`gid` and drop the bounding set and securebits (needs
    /// privilege: always in a user namespace, as root without one).
    int switch_identity;
    int loopback_up;                ///< bring `lo` up in the new network namespace
    const char *hostname;           ///< NULL: leave it

    /// Identity used while building the filesystem (files created by the plan
    /// are owned by it); -1 when the creator's own id is already mapped.
    int64_t setup_uid;
    int64_t setup_gid;
    uint32_t uid;                   ///< the stack user the command runs as
    uint32_t gid;
    int clear_groups;               ///< setgroups(0) is permitted in this user namespace

    const struct stk_mount *mounts;
    size_t mount_count;
    int *scratch_fds;               ///< mount_count slots the child may use for source fds
    const char *staging;            ///< an existing host directory to build the new root on
    const char *workdir;            ///< inside the sandbox

    /// Landlock: writes are allowed only beneath these paths (inside the sandbox).
    const char *const *writable_paths;
    size_t writable_count;
    int landlock;                   ///< 0: off, 1: apply when the kernel offers it
    /// Landlock: when `readable_paths` is set, reads and execution are handled
    /// too and allowed only beneath these and the writable paths (the fallback).
    const char *const *readable_paths;
    size_t readable_count;
    int deny_tcp;                   ///< Landlock ABI 4+: no TCP bind or connect at all

    const char *const *argv;        ///< NULL-terminated
    const char *const *envp;        ///< NULL-terminated
    const char *search_path;        ///< PATH used to find argv[0] when it has no '/'

    const struct stk_rlimit *rlimits;
    size_t rlimit_count;
    uint32_t umask;
    int cap_last_cap;

    struct stk_bpf profile;         ///< the user's profile; count 0: none (unconfined)
    /// Install `profile` with a seccomp listener and hand the listener to the
    /// parent (an STK_REPORT_LISTENER message with the fd) before execve.
    int audit_listener;
    /// The listener goes over with exactly one call, which the listener's
    /// filter lets through unobserved (it would otherwise wait for itself):
    /// sendmsg(handoff_fd | secret's high half << 32, handoff_message,
    /// MSG_NOSIGNAL | secret's low half << 32). The kernel ignores the upper
    /// halves; the filter compares all three registers whole, so the command
    /// cannot make that call again. handoff_fd is below RLIMIT_NOFILE and
    /// closed before execve; handoff_message is zeroed space the parent
    /// allocated before the clone, so its address is known to the filter.
    int handoff_fd;
    struct msghdr *handoff_message;
    uint64_t handoff_secret;
    struct stk_bpf baseline;        ///< the hardening filter, installed after the profile
    struct stk_bpf init_filter;     ///< confines the sandbox's own pid 1

    struct stk_memory_layout supervisor_memory;
    /// 1: pid 1 joins its cgroups at the end of its set-up, 0: before it takes its
    /// set-up identity. Only a root opener's cgroup v1 file admits pid 1 once its
    /// ids are no longer the invoker's (v1 checks the opener's euid against the
    /// mover's uids; v2 checked the writer's credentials before Linux 5.16).
    int cgroups_after_setup;
    int stdio[3];                   ///< fds to become 0, 1, 2 in the command; -1 inherits
    int sync_fd;                    ///< the child's end of a SOCK_SEQPACKET pair
};

/// Steps of the child's setup, reported with errno when one fails.
enum stk_stage {
    STK_STAGE_PARENT_DEATH_SIGNAL = 1,
    STK_STAGE_SETUP_IDENTITY,
    STK_STAGE_NOT_DUMPABLE,
    STK_STAGE_MOUNT_PRIVATE,
    STK_STAGE_OPEN_SOURCE,
    STK_STAGE_SOURCE_CHANGED,
    STK_STAGE_STAGING_ROOT,
    STK_STAGE_MOUNTPOINT,
    STK_STAGE_BIND,
    STK_STAGE_TMPFS,
    STK_STAGE_PROC,
    STK_STAGE_DEVPTS,
    STK_STAGE_SYMLINK,
    STK_STAGE_FILE,
    STK_STAGE_DIR,
    STK_STAGE_REMOUNT,
    STK_STAGE_PIVOT_ROOT,
    STK_STAGE_DETACH_OLD_ROOT,
    STK_STAGE_HOSTNAME,
    STK_STAGE_LOOPBACK,
    STK_STAGE_BOUNDING_SET,
    STK_STAGE_SECUREBITS,
    STK_STAGE_SETGROUPS,
    STK_STAGE_SETGID,
    STK_STAGE_SETUID,
    STK_STAGE_CAPABILITIES,
    STK_STAGE_FORK,
    STK_STAGE_INIT_FILTER,
    STK_STAGE_STDIO,
    STK_STAGE_SESSION,
    STK_STAGE_RLIMIT,
    STK_STAGE_CHDIR,
    STK_STAGE_CLOSE_FDS,
    STK_STAGE_NO_NEW_PRIVS,
    STK_STAGE_LANDLOCK,
    STK_STAGE_SECCOMP_PROFILE,
    STK_STAGE_SECCOMP_BASELINE,
    STK_STAGE_AUDIT_LISTENER,
    STK_STAGE_EXEC,
    STK_STAGE_CGROUP,
    STK_STAGE_SUBREAPER,
    STK_STAGE_SESSION_FILTER,
};

enum stk_report_kind {
    STK_REPORT_FAILED = 1,  ///< setup failed at `stage` with `error`; `index` names the mount or rlimit
    STK_REPORT_EXITED,      ///< the command ended; `status` is its wait status
    STK_REPORT_LISTENER,    ///< carries the seccomp listener (SCM_RIGHTS); answer with one byte
};

struct stk_report {
    int32_t kind;
    int32_t stage;
    int32_t error;
    int32_t index;
    int32_t status;
};

/// Parent → child: the uid/gid maps are written, go on with the setup.
#define STK_SYNC_GO 'g'
/// Parent → child, made while the child sets up: this byte with, by SCM_RIGHTS,
/// a cgroup's `tasks` (v1) or `cgroup.procs` (v2) each, open for writing. The
/// child writes "0" to each before it becomes the stack user and starts
/// anything: moving itself as one thread skips the global lock (and its RCU
/// grace period, ~16 ms) that the parent moving another process takes.
#define STK_SYNC_CGROUPS 'c'

/// Clones the sandbox's pid 1 with `plan->clone_flags` and returns its pid
/// (in the caller's namespace) with a pidfd in `*pidfd`, or -1 with errno.
/// `parent_fd` is the caller's end of the sync socket, which the child closes.
/// Every signal is blocked across the clone so no handler runs in the child.
/// Where clone3 is answered with ENOSYS (container runtimes' default seccomp
/// profiles, Stockade's own), clone does the same. `sibling`: CLONE_PARENT,
/// the child is the caller's parent's (the zygote clones for the supervisor).
pid_t stk_spawn(const struct stk_spawn_plan *plan, int parent_fd, int *pidfd, int sibling);

/// Whether this process may create a user namespace: 0, or the errno of a
/// clone(CLONE_NEWUSER) whose child exits at once.
int stk_probe_user_namespace(void);

/// The Landlock ABI this kernel offers; 0 without Landlock.
int stk_landlock_abi(void);

struct stk_rusage {
    int64_t user_usec;
    int64_t system_usec;
    int64_t max_rss_kib;
};

// Thin wrappers for syscalls Swift cannot reach (variadic syscall(2)).

/// waitid(P_PIDFD, WEXITED) with the resource use of the process and of every
/// descendant it reaped. Returns 0 and the wait status, or -1 with errno.
int stk_wait_pidfd(int pidfd, int *status, struct stk_rusage *usage);
int stk_pidfd_send_signal(int pidfd, int sig);

/// recvmsg of one report, with the descriptor it carries (or -1) in `*fd`
/// and up to `extra_length` bytes after it in `extra`. Returns the bytes
/// received, 0 at end of stream, -1 with errno.
long stk_receive_report(int socket, struct stk_report *report, int *fd, char *extra, size_t extra_length);

/// The most descriptors one zygote message carries.
#define STK_PASSED_FDS_MAX 16

/// sendmsg of `iov` with `count` descriptors (SCM_RIGHTS), MSG_NOSIGNAL,
/// again on EINTR. Returns the bytes sent or -1 with errno.
long stk_send_with_fds(int socket, const struct iovec *iov, size_t iov_count, const int *fds, size_t count);

/// recvmsg into `iov`, the descriptors it carried (close-on-exec) in `fds`
/// and their number in `*count`; again on EINTR. A truncated message is
/// refused whole (EMSGSIZE, its descriptors closed). Returns the bytes
/// received, 0 at end of stream, -1 with errno.
long stk_receive_with_fds(int socket, struct iovec *iov, size_t iov_count, int *fds, size_t *count);

/// process_vm_readv of `length` bytes at `address` in process `pid`.
long stk_read_memory(pid_t pid, uint64_t address, void *buffer, size_t length);

/// SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (Linux 6.6+): wake the supervisor on the
/// notified task's CPU, a tenth of the round trip.
int stk_notify_sync_wake_up(int listener);

/// SECCOMP_IOCTL_NOTIF_RECV into `request` (zeroed first, as the kernel
/// requires; `size` bytes, what seccomp_notify_alloc gave). Returns 0 or the
/// errno: EINTR, or ENOENT when the task is gone or no process is left.
int stk_notify_receive(int listener, void *request, size_t size);

#endif
