#ifndef GRACE_CSQLITE_SHIM_H
#define GRACE_CSQLITE_SHIM_H
#include <sqlite3.h>

/* SQLITE_TRANSIENT is a macro casting -1 to a function pointer; Swift cannot import it. */
static inline sqlite3_destructor_type grace_sqlite_transient(void) {
    return SQLITE_TRANSIENT;
}

/*
 * glibc's malloc tuning, which Swift's Glibc module does not import (malloc.h). graced caps its
 * arenas and hands freed memory back after the big allocations of a scan (see bench/RESULTS.md,
 * idle RSS); here because graced and the service already link this module.
 */
#include <malloc.h>

static inline int grace_malloc_trim(void) {
    return malloc_trim(0);
}

static inline int grace_malloc_arena_max(int arenas) {
    return mallopt(M_ARENA_MAX, arenas);
}

static inline int grace_malloc_mmap_threshold(int bytes) {
    return mallopt(M_MMAP_THRESHOLD, bytes);
}
#endif
