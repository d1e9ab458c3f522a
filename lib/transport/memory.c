/* memory.c - see memory.h. */
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "transport/memory.h"

#define PAGE 4096u

static _Atomic size_t process_used;
static _Atomic size_t process_limit;    /* 0: the default */

void mem_process_limit(size_t bytes)
{
    size_t cur = atomic_load(&process_limit);
    while (bytes && (!cur || bytes < cur) &&
           !atomic_compare_exchange_weak(&process_limit, &cur, bytes))
        ;
}

size_t mem_process_used(void)
{
    return atomic_load_explicit(&process_used, memory_order_relaxed);
}

/* Take bytes from the process's share: false when over its ceiling. */
static bool process_take(size_t bytes)
{
    size_t limit = atomic_load_explicit(&process_limit, memory_order_relaxed);
    if (!limit)
        limit = MEM_PROCESS_DEFAULT;
    size_t cur = atomic_load_explicit(&process_used, memory_order_relaxed);
    do {
        if (cur + bytes > limit && cur)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&process_used, &cur,
                 cur + bytes, memory_order_relaxed, memory_order_relaxed));
    return true;
}

bool mem_reserve(struct mem_account *a, size_t bytes)
{
    size_t limit = a->limit ? a->limit : MEM_CONNECTION_DEFAULT;
    if (!a->used && bytes <= MEM_FREE_PASS) {
        mem_charge(a, bytes);
        return true;
    }
    if (a->used && a->used + bytes > limit)
        return false;
    if (!process_take(bytes))
        return false;
    a->used += bytes;
    return true;
}

void mem_charge(struct mem_account *a, size_t bytes)
{
    atomic_fetch_add_explicit(&process_used, bytes, memory_order_relaxed);
    a->used += bytes;
}

void mem_release(struct mem_account *a, size_t bytes)
{
    a->used -= bytes;
    atomic_fetch_sub_explicit(&process_used, bytes, memory_order_relaxed);
}

size_t mem_size(size_t size)
{
    return size < MEM_MAP_MIN ? size : (size + PAGE - 1) & ~(size_t)(PAGE - 1);
}

void *mem_alloc(size_t size)
{
    if (size < MEM_MAP_MIN)
        return malloc(size);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void mem_free(void *p, size_t size)
{
    if (size < MEM_MAP_MIN)
        free(p);
    else if (p)
        munmap(p, size);
}
