// Linux system calls that Glibc's Swift module does not show (GNU extensions, macros, unions
// Swift cannot read).
//
// No _GNU_SOURCE here: it changes the definitions in shared system headers (fd_set's fields), and
// two Clang modules built with different ones clash on a clean build. The GNU functions used are
// declared below instead, as glibc declares them.
#ifndef CAUTOUPDATE_SYSTEM_SHIM_H
#define CAUTOUPDATE_SYSTEM_SHIM_H

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern int syncfs(int descriptor);
extern int sync_file_range(int descriptor, __off64_t offset, __off64_t count, unsigned int flags);
extern int posix_spawn_file_actions_addchdir_np(posix_spawn_file_actions_t *actions, const char *path);
extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);
extern int posix_spawn_file_actions_addtcsetpgrp_np(posix_spawn_file_actions_t *actions, int terminal);
extern int pthread_setname_np(pthread_t thread, const char *name);

/// Starts a detached thread running `body(context)`, named `name` (Linux keeps 15 bytes), with a
/// stack of `stack_size` bytes (0: the default, the process's `ulimit -s`). Returns 0 or an errno.
static inline int autoupdate_start_thread(void *(*body)(void *), void *context, size_t stack_size) {
    pthread_attr_t attributes;
    int status = pthread_attr_init(&attributes);
    if (status != 0) return status;
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    if (stack_size > 0) {
        pthread_attr_setstacksize(&attributes, stack_size < PTHREAD_STACK_MIN ? PTHREAD_STACK_MIN : stack_size);
    }
    pthread_t thread;
    status = pthread_create(&thread, &attributes, body, context);
    pthread_attr_destroy(&attributes);
    return status;
}

/// Names the calling thread (what `ps -T` and debuggers show); the name is cut to 15 bytes.
static inline void autoupdate_name_thread(const char *name) {
    char cut[16];
    snprintf(cut, sizeof cut, "%s", name);
    pthread_setname_np(pthread_self(), cut);
}

/// Flushes the whole file system holding `descriptor`. The corresponding C function is `syncfs`.
static inline int autoupdate_syncfs(int descriptor) {
    return syncfs(descriptor);
}

/// Starts writing a whole file's dirty pages to its device without waiting for them. It promises
/// nothing about durability; a later sync has less left to wait for. The corresponding C call is
/// `sync_file_range(descriptor, 0, 0, SYNC_FILE_RANGE_WRITE)`.
static inline int autoupdate_start_writeback(int descriptor) {
    return sync_file_range(descriptor, 0, 0, 2u /* SYNC_FILE_RANGE_WRITE, a GNU constant */);
}

/// Makes `destination` share `source`'s blocks (a reflink), where the file system can (Btrfs,
/// XFS); -1 with errno otherwise (EOPNOTSUPP, EXDEV, EINVAL). The corresponding C call is
/// `ioctl(destination, FICLONE, source)`.
static inline int autoupdate_clone_file(int destination, int source) {
    return ioctl(destination, 0x40049409u /* FICLONE, _IOW(0x94, 9, int) */, source);
}

/// Starts `path` as a child in a process group of its own, with every signal at its default
/// disposition and unblocked (whatever the parent ignores or blocks), no descriptor but 0, 1 and 2
/// inherited (and `inherit`, when it is a descriptor, as descriptor 3), in `directory` when it is
/// not NULL, and, when `terminal` is a descriptor, as the terminal's foreground process group (so
/// that an interactive child can read it).
///
/// glibc's posix_spawn reports a failed exec (ENOENT, EACCES, ENOEXEC) as its return value.
/// Returns 0 and sets `*pid`, or an errno value.
static inline int autoupdate_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[],
                                   const char *directory, int terminal, int inherit) {
    posix_spawnattr_t attributes;
    posix_spawn_file_actions_t actions;
    int result = posix_spawnattr_init(&attributes);
    if (result != 0) return result;
    result = posix_spawn_file_actions_init(&actions);
    if (result != 0) {
        posix_spawnattr_destroy(&attributes);
        return result;
    }
    sigset_t none, defaults;
    sigemptyset(&none);
    sigfillset(&defaults);
    sigdelset(&defaults, SIGKILL);
    sigdelset(&defaults, SIGSTOP);
    result = posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (result == 0) result = posix_spawnattr_setpgroup(&attributes, 0);
    if (result == 0) result = posix_spawnattr_setsigmask(&attributes, &none);
    if (result == 0) result = posix_spawnattr_setsigdefault(&attributes, &defaults);
    if (result == 0 && directory != NULL) result = posix_spawn_file_actions_addchdir_np(&actions, directory);
    // `inherit` is above 3 (the caller duplicates it there), so that the dup2 never names one
    // descriptor twice, and closefrom(4) closes the original.
    if (result == 0 && inherit > 3) result = posix_spawn_file_actions_adddup2(&actions, inherit, 3);
    if (result == 0) result = posix_spawn_file_actions_addclosefrom_np(&actions, inherit > 3 ? 4 : 3);
    if (result == 0 && terminal >= 0) result = posix_spawn_file_actions_addtcsetpgrp_np(&actions, terminal);
    if (result == 0) result = posix_spawn(pid, path, &actions, &attributes, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    return result;
}

/// Blocks until child `pid` has ended, without reaping it: the zombie keeps its pid and its
/// process group id reserved, so signals sent to them until the reap cannot reach a stranger.
/// Sets `*code` (exit code, or -1) and `*signal_number` (the killing signal, or 0).
/// Returns 0 or an errno value.
static inline int autoupdate_wait_exit(pid_t pid, int *code, int *signal_number) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    while (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) != 0) {
        if (errno != EINTR) return errno;
    }
    if (info.si_code == CLD_EXITED) {
        *code = info.si_status;
        *signal_number = 0;
    } else {
        *code = -1;
        *signal_number = info.si_status;
    }
    return 0;
}

/// Reaps child `pid` once it has ended. Returns 0 or an errno value.
static inline int autoupdate_reap(pid_t pid) {
    while (waitpid(pid, NULL, 0) < 0) {
        if (errno != EINTR) return errno;
    }
    return 0;
}

/// Reads the state, parent and process group of `pid` from /proc. Returns 0, or -1 when there is
/// no such process (or its line cannot be read).
static inline int autoupdate_process_status(pid_t pid, char *state, pid_t *parent, pid_t *group) {
    char path[64], stat[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *file = fopen(path, "re");
    if (file == NULL) return -1;
    size_t length = fread(stat, 1, sizeof stat - 1, file);
    fclose(file);
    stat[length] = '\0';
    // "pid (comm) state ppid pgrp …": comm may hold anything, so parse after its last ')'.
    char *close = strrchr(stat, ')');
    int parent_id, group_id;
    if (close == NULL || sscanf(close + 1, " %c %d %d", state, &parent_id, &group_id) != 3) return -1;
    *parent = (pid_t)parent_id;
    *group = (pid_t)group_id;
    return 0;
}

/// The live processes (at most `capacity`) for which `wanted(pid, parent, group, context)` holds,
/// read from /proc. Returns how many were stored.
static inline int autoupdate_find_processes(int (*wanted)(pid_t, pid_t, pid_t, const void *), const void *context,
                                            pid_t *found, int capacity) {
    DIR *proc = opendir("/proc");
    if (proc == NULL) return 0;
    int count = 0;
    struct dirent *entry;
    while (count < capacity && (entry = readdir(proc)) != NULL) {
        char *end;
        long pid = strtol(entry->d_name, &end, 10);
        if (*end != '\0' || pid <= 0) continue;
        char state;
        pid_t parent, group;
        if (autoupdate_process_status((pid_t)pid, &state, &parent, &group) != 0 || state == 'Z' || state == 'X') continue;
        if (wanted((pid_t)pid, parent, group, context)) found[count++] = (pid_t)pid;
    }
    closedir(proc);
    return count;
}

struct autoupdate_group_query { pid_t group, leader; };

static inline int autoupdate_is_group_member(pid_t pid, pid_t parent, pid_t group, const void *context) {
    (void)parent;
    const struct autoupdate_group_query *query = (const struct autoupdate_group_query *)context;
    return group == query->group && pid != query->leader;
}

/// The live members of process group `group` other than `leader`, read from /proc (at most
/// `capacity` of them). Returns how many were stored.
static inline int autoupdate_group_members(pid_t group, pid_t leader, pid_t *members, int capacity) {
    struct autoupdate_group_query query = { group, leader };
    return autoupdate_find_processes(autoupdate_is_group_member, &query, members, capacity);
}

/// Waits until the processes behind the pidfds in `descriptors` have ended, at most `timeout_ms`.
/// Closes the descriptor of each that ended and sets it to -1. Returns how many are left.
static inline int autoupdate_await_ends(struct pollfd *descriptors, int count, int remaining, int timeout_ms) {
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (remaining > 0) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (elapsed >= timeout_ms) break;
        int ready = poll(descriptors, (nfds_t)count, (int)(timeout_ms - elapsed));
        if (ready < 0 && errno != EINTR) break;
        for (int index = 0; index < count && ready > 0; index++) {
            if (descriptors[index].fd >= 0 && descriptors[index].revents != 0) {
                close(descriptors[index].fd);
                descriptors[index].fd = -1;  // poll skips negative descriptors
                remaining--;
            }
        }
    }
    return remaining;
}

/// Ends what is left of process group `group` after its leader exited (the leader must still be
/// an unreaped zombie, which keeps the group id reserved): SIGTERM to the group, up to `grace_ms`
/// for its members to exit (awaited through pidfds, not by polling), then SIGKILL to the group.
/// Returns how many members there were.
static inline int autoupdate_end_group(pid_t group, pid_t leader, int grace_ms) {
    enum { capacity = 256 };
    pid_t members[capacity];
    int count = autoupdate_group_members(group, leader, members, capacity);
    if (count == 0) {
        kill(-group, SIGKILL);  // a member forked while we looked; the zombie leader ignores it
        return 0;
    }
    kill(-group, SIGTERM);
    struct pollfd descriptors[capacity];
    int open = 0;
    for (int index = 0; index < count; index++) {
        int descriptor = (int)syscall(SYS_pidfd_open, members[index], 0);
        if (descriptor >= 0) {
            descriptors[open].fd = descriptor;
            descriptors[open].events = POLLIN;
            descriptors[open].revents = 0;
            open++;
        }
    }
    int remaining = autoupdate_await_ends(descriptors, open, open, grace_ms);
    kill(-group, SIGKILL);
    // SIGKILL is delivered when its target next runs: wait (briefly) until it has died.
    if (remaining > 0) autoupdate_await_ends(descriptors, open, remaining, 1000);
    for (int index = 0; index < open; index++) {
        if (descriptors[index].fd >= 0) close(descriptors[index].fd);
    }
    return count;
}

/// Makes this process a child subreaper: orphaned descendants (a daemon's double fork, a child
/// that called setsid and outlived its parent) are reparented to it instead of to init, so that
/// they stay within reach. Returns 0 or an errno value.
static inline int autoupdate_become_subreaper(void) {
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 ? 0 : errno;
}

struct autoupdate_children_query { pid_t self; const pid_t *known; int known_count; };

static inline int autoupdate_is_adopted(pid_t pid, pid_t parent, pid_t group, const void *context) {
    (void)group;
    const struct autoupdate_children_query *query = (const struct autoupdate_children_query *)context;
    if (parent != query->self) return 0;
    for (int index = 0; index < query->known_count; index++) {
        if (query->known[index] == pid) return 0;
    }
    return 1;
}

/// The live children of this process not in `known` (at most `capacity`): with this process a
/// subreaper, those are adopted orphans. Returns how many were stored.
static inline int autoupdate_adopted_children(const pid_t *known, int known_count, pid_t *children, int capacity) {
    struct autoupdate_children_query query = { getpid(), known, known_count };
    return autoupdate_find_processes(autoupdate_is_adopted, &query, children, capacity);
}

/// The parent of `pid`, read from /proc, or -1.
static inline pid_t autoupdate_parent_of(pid_t pid) {
    char state;
    pid_t parent, group;
    return autoupdate_process_status(pid, &state, &parent, &group) == 0 ? parent : -1;
}

/// Opens a pidfd for each adopted orphan (a child of this process not in `known`), at most
/// `capacity`, into `descriptors`. A pidfd opened while its process is still our child pins it:
/// the pid cannot be reused while the descriptor is open, so no signal sent through it reaches a
/// stranger. Call with the spawn registry locked: a child being spawned is then in `known`, never
/// taken for an orphan. Returns how many were opened.
static inline int autoupdate_open_adopted(const pid_t *known, int known_count, struct pollfd *descriptors, int capacity) {
    enum { limit = 256 };
    pid_t children[limit];
    int count = autoupdate_adopted_children(known, known_count, children, capacity < limit ? capacity : limit);
    int open = 0;
    for (int index = 0; index < count; index++) {
        int descriptor = (int)syscall(SYS_pidfd_open, children[index], 0);
        if (descriptor < 0) continue;
        if (autoupdate_parent_of(children[index]) != getpid()) {
            close(descriptor);
            continue;
        }
        descriptors[open].fd = descriptor;
        descriptors[open].events = POLLIN;
        descriptors[open].revents = 0;
        open++;
    }
    return open;
}

/// Ends the processes behind `count` pidfds from `autoupdate_open_adopted`: SIGTERM, up to
/// `grace_ms` for them to exit, then SIGKILL and a brief wait for it to land; closes every
/// descriptor. The processes are reaped by whoever waits for this process's children.
static inline void autoupdate_end_opened(struct pollfd *descriptors, int count, int grace_ms) {
    for (int index = 0; index < count; index++) {
        syscall(SYS_pidfd_send_signal, descriptors[index].fd, SIGTERM, NULL, 0);
    }
    int remaining = autoupdate_await_ends(descriptors, count, count, grace_ms);
    for (int index = 0; index < count; index++) {
        if (descriptors[index].fd >= 0) syscall(SYS_pidfd_send_signal, descriptors[index].fd, SIGKILL, NULL, 0);
    }
    if (remaining > 0) autoupdate_await_ends(descriptors, count, remaining, 1000);
    for (int index = 0; index < count; index++) {
        if (descriptors[index].fd >= 0) close(descriptors[index].fd);
    }
}

/// A pidfd for `pid` (readable once the process has ended), or -1 with `errno` set.
static inline int autoupdate_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/// Waits until some child of this process has ended, without reaping it. Returns its pid, or -1
/// with `errno` set (ECHILD: there is no child).
static inline pid_t autoupdate_wait_any_exit(void) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    while (waitid(P_ALL, 0, &info, WEXITED | WNOWAIT) != 0) {
        if (errno != EINTR) return -1;
    }
    return info.si_pid;
}

/// Makes the caller's process group the foreground of `terminal` again after a child had it
/// (SIGTTOU is blocked meanwhile, as a background group would otherwise be stopped).
static inline int autoupdate_reclaim_terminal(int terminal) {
    sigset_t block, previous;
    sigemptyset(&block);
    sigaddset(&block, SIGTTOU);
    pthread_sigmask(SIG_BLOCK, &block, &previous);
    int result = tcsetpgrp(terminal, getpgrp());
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    return result == 0 ? 0 : errno;
}

/// Receives one datagram into `buffer` and, in `*pid`, its sender's pid from the kernel's
/// credentials (0 when there were none). The socket must have `SO_PASSCRED` set. The corresponding
/// C call is `recvmsg` with an `SCM_CREDENTIALS` control message (`struct ucred`, whose first
/// field is the pid; the struct itself is a GNU extension, not declared here).
static inline long autoupdate_recv_with_pid(int descriptor, void *buffer, unsigned long size, int *pid) {
    struct iovec vector = { buffer, size };
    union { struct cmsghdr align; char bytes[CMSG_SPACE(3 * sizeof(int))]; } control;
    struct msghdr message;
    memset(&message, 0, sizeof message);
    message.msg_iov = &vector;
    message.msg_iovlen = 1;
    message.msg_control = control.bytes;
    message.msg_controllen = sizeof control.bytes;
    long count = recvmsg(descriptor, &message, 0);
    *pid = 0;
    if (count < 0) return count;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header != NULL; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == 2 /* SCM_CREDENTIALS */
            && header->cmsg_len >= CMSG_LEN(3 * sizeof(int))) {
            memcpy(pid, CMSG_DATA(header), sizeof(int));
        }
    }
    return count;
}

#endif
