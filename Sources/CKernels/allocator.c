#include "callocator.h"

#if defined(__GLIBC__)
#include <malloc.h>

int ck_keep_freed_memory(void) {
    int mmap_ok = mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    int trim_ok = mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
    return mmap_ok == 1 && trim_ok == 1;
}
#else
int ck_keep_freed_memory(void) { return 0; }
#endif
