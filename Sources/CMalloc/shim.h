#ifndef GRACE_CMALLOC_SHIM_H
#define GRACE_CMALLOC_SHIM_H
/*
 * glibc's malloc tuning (malloc_trim, mallopt and its M_ constants), which Swift's Glibc module
 * does not import: it is declared in malloc.h, outside the headers Glibc's module map covers.
 * Part of the C library, so nothing to link.
 */
#include <malloc.h>
#endif
