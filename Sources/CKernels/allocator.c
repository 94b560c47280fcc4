#include "callocator.h"

#include <stdlib.h> /* defines __GLIBC__ on glibc */

#if defined(__GLIBC__)
#include <malloc.h>

int ck_keep_freed_memory(void) {
    int mmap_ok = mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    int trim_ok = mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
    /* One arena: tensors made on worker threads would otherwise come from per-thread heaps, which glibc unmaps
       when they empty, so their next tensors fault their pages in again. */
    int arena_ok = mallopt(M_ARENA_MAX, 1);
    return mmap_ok == 1 && trim_ok == 1 && arena_ok == 1;
}
#else
int ck_keep_freed_memory(void) { return 0; }
#endif
