// Bindings Swift cannot express: syscall(2) is variadic, and glibc 2.36 has no openat2 wrapper.
#include <linux/openat2.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <unistd.h>

static inline int clinux_openat2(int dirfd, const char *path, struct open_how *how) {
    return (int)syscall(SYS_openat2, dirfd, path, how, sizeof(*how));
}

static inline int clinux_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/// prctl(2) is variadic too.
static inline int clinux_set_dumpable(int dumpable) {
    return prctl(PR_SET_DUMPABLE, (unsigned long)dumpable, 0UL, 0UL, 0UL);
}

/// SIGKILL when the thread that forked this process ends.
static inline int clinux_kill_on_parent_death(void) {
    return prctl(PR_SET_PDEATHSIG, 9UL, 0UL, 0UL, 0UL);
}

/// The name `ps` and /proc/PID/comm show (15 bytes at most).
static inline int clinux_set_process_name(const char *name) {
    return prctl(PR_SET_NAME, (unsigned long)name, 0UL, 0UL, 0UL);
}

/// unshare(CLONE_NEWUSER): glibc declares unshare only under _GNU_SOURCE.
static inline int clinux_unshare_user_namespace(void) {
    return (int)syscall(SYS_unshare, 0x10000000UL);
}

static inline int clinux_close_range(unsigned first, unsigned last) {
    return (int)syscall(SYS_close_range, first, last, 0U);
}

/// renameat2(2) with RENAME_NOREPLACE: the first of several racing writers keeps its name.
static inline int clinux_rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath) {
    return (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, 1U);
}

#include <spawn.h>
/// glibc 2.34+; Swift's Glibc module hides it behind _GNU_SOURCE.
extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);

static inline int clinux_spawn_close_from(posix_spawn_file_actions_t *actions, int first) {
    return posix_spawn_file_actions_addclosefrom_np(actions, first);
}
