// Linux system calls that Glibc's Swift module does not show (they need _GNU_SOURCE).
#ifndef CAUTOUPDATE_SYSTEM_SHIM_H
#define CAUTOUPDATE_SYSTEM_SHIM_H

#define _GNU_SOURCE
#include <unistd.h>

/// Flushes the whole file system holding `descriptor`. The corresponding C function is `syncfs`.
static inline int autoupdate_syncfs(int descriptor) {
    return syncfs(descriptor);
}

#endif
