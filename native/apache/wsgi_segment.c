/*
 * Creating and removing the board's segments (wsgi_board.h). A segment is a memfd: the Apache parent maps
 * it, Apache's children inherit the mapping when they are forked, and each daemon of the pool maps it
 * from fd 4. Sealed against growing or shrinking, so that no daemon can make a reader fault.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "wsgi_segment.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

wsgi_segment *wsgi_segment_create(const char *name, int slots, int processes, int threads, int generation)
{
    size_t size = WSGI_BOARD_HEADER_SIZE + (size_t)slots * WSGI_BOARD_SLOT_SIZE;
    wsgi_segment *seg = calloc(1, sizeof(*seg));
    unsigned char *base;
    size_t n;
    int fd, saved;

    if (!seg)
        return NULL;
    fd = memfd_create("mod_wsgi-board", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        free(seg);
        return NULL;
    }
    if (ftruncate(fd, (off_t)size) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0 ||
        (base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
        saved = errno;
        close(fd);
        free(seg);
        errno = saved;
        return NULL;
    }
    *(uint32_t *)(base + WSGI_BOARD_H_MAGIC) = WSGI_BOARD_MAGIC;
    *(uint32_t *)(base + WSGI_BOARD_H_VERSION) = WSGI_BOARD_VERSION;
    *(uint32_t *)(base + WSGI_BOARD_H_SLOTS) = (uint32_t)slots;
    *(uint32_t *)(base + WSGI_BOARD_H_SLOT_SIZE) = WSGI_BOARD_SLOT_SIZE;
    *(uint32_t *)(base + WSGI_BOARD_H_PROCESSES) = (uint32_t)processes;
    *(uint32_t *)(base + WSGI_BOARD_H_THREADS) = (uint32_t)threads;
    *(uint32_t *)(base + WSGI_BOARD_H_GENERATION) = (uint32_t)generation;
    n = strlen(name);
    if (n >= WSGI_BOARD_NAME_MAX)
        n = WSGI_BOARD_NAME_MAX - 1;
    memcpy(base + WSGI_BOARD_H_NAME, name, n);
    seg->fd = fd;
    seg->base = base;
    seg->size = size;
    seg->slots = (uint32_t)slots;
    return seg;
}

void wsgi_segment_destroy(wsgi_segment *seg)
{
    if (!seg)
        return;
    munmap(seg->base, seg->size);
    close(seg->fd);
    free(seg);
}
