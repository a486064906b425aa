/*
 * The board's segments in the Apache module (native/common/wsgi_board.h has the layout): one per live
 * pool of daemons (wsgi_daemon.h), created by the Apache parent in post_config, before Apache's
 * children are forked, so that each child sees every segment that exists while it lives.
 */
#ifndef WSGI_SEGMENT_H
#define WSGI_SEGMENT_H

#include "wsgi_board.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct wsgi_segment {
    int fd;                     /* the memfd, fd 4 of each daemon of the pool */
    unsigned char *base;        /* its mapping, shared with Apache's children and the daemons */
    size_t size;
    uint32_t slots;
} wsgi_segment;

/* A segment with `slots` free slots for group `name`; NULL on failure (errno set). malloc'd: it lives as
 * long as its pool, across configuration generations. */
wsgi_segment *wsgi_segment_create(const char *name, int slots, int processes, int threads, int generation);

/* Unmaps and closes it, and frees the struct. */
void wsgi_segment_destroy(wsgi_segment *seg);

/* Slot i's first byte. */
static inline unsigned char *wsgi_slot(const wsgi_segment *seg, uint32_t i)
{
    return seg->base + WSGI_BOARD_HEADER_SIZE + (size_t)i * WSGI_BOARD_SLOT_SIZE;
}

/* Fields are read and written whole, at their natural alignment (volatile: another process writes). */
static inline uint32_t wsgi_slot_u32(const unsigned char *slot, size_t off)
{
    return *(const volatile uint32_t *)(slot + off);
}

static inline void wsgi_slot_set_u32(unsigned char *slot, size_t off, uint32_t v)
{
    *(volatile uint32_t *)(slot + off) = v;
}

static inline uint64_t wsgi_slot_u64(const unsigned char *slot, size_t off)
{
    return *(const volatile uint64_t *)(slot + off);
}

static inline void wsgi_slot_set_u64(unsigned char *slot, size_t off, uint64_t v)
{
    *(volatile uint64_t *)(slot + off) = v;
}

/* Clears a slot for a new process (every field), as the parent does before it spawns one there. */
static inline void wsgi_slot_clear(unsigned char *slot)
{
    memset(slot, 0, WSGI_BOARD_SLOT_SIZE);
}

#endif /* WSGI_SEGMENT_H */
