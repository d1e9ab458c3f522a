/*
 * memory.h - the memory the connections of the network exports hold:
 * data buffers of requests in flight and spare buffers kept for reuse,
 * counted against a ceiling per connection and one for the whole process
 * (every connection of every export). A protocol reserves before it
 * allocates; when a reservation does not fit it applies back-pressure
 * (NBD takes no more requests until a release, iSCSI answers TASK SET
 * FULL) instead of growing.
 *
 * Large buffers are mapped rather than taken from the heap: freeing them
 * gives the memory back to the system at once (free() keeps heap memory
 * for the process), so spare buffers dropped after an idle second really
 * leave the resident set.
 */
#ifndef SPD_MEMORY_H
#define SPD_MEMORY_H

#include <stdbool.h>
#include <stddef.h>

/* Defaults of spd_server_options.max_memory, .max_connection_memory. */
#define MEM_PROCESS_DEFAULT    (1024ull * 1024 * 1024)
#define MEM_CONNECTION_DEFAULT (128ull * 1024 * 1024)
/* Neither ceiling may be set lower (a request larger than a ceiling is
 * served anyway when nothing else is held, so any ceiling works). */
#define MEM_CEILING_MIN        (1024ull * 1024)
/* A connection holding nothing may always take a request this small, even
 * beyond the process ceiling: a client the others crowd out still moves
 * (the process goes at most max_connections times this over). */
#define MEM_FREE_PASS          (128u * 1024)
/* Buffers from this size on are mapped. */
#define MEM_MAP_MIN            (64u * 1024)

/* One connection's account; its owner's lock guards it. */
struct mem_account {
    size_t used;
    size_t limit;               /* 0: MEM_CONNECTION_DEFAULT */
};

/* The process ceiling: the smallest nonzero value any server asked for,
 * else MEM_PROCESS_DEFAULT. */
void mem_process_limit(size_t bytes);
/* Bytes reserved by every account of the process. */
size_t mem_process_used(void);

/* Reserve bytes for a: true when they fit under a's ceiling and the
 * process's. A connection holding nothing may exceed its own ceiling, and
 * the process's when the process holds nothing or bytes is at most
 * MEM_FREE_PASS: a request larger than a ceiling is still served, alone. */
bool mem_reserve(struct mem_account *a, size_t bytes);
/* Reserve whatever the ceilings say (small bookkeeping of a refusal). */
void mem_charge(struct mem_account *a, size_t bytes);
void mem_release(struct mem_account *a, size_t bytes);

/* The bytes an allocation of size bytes really takes (mapped ones are
 * whole pages), and that allocation: memory aligned to 64 bytes at least
 * for mapped ones, 16 for the others; NULL when out of memory. */
size_t mem_size(size_t size);
void *mem_alloc(size_t size);
/* Free p of mem_size() bytes. */
void mem_free(void *p, size_t size);

#endif
