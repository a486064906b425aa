/*
 * Daemon process supervision in the Apache parent (wsgi_daemon.c), the pools of daemons that serve a
 * group (wsgi_pool.c), the doorbell through which a daemon gets the parent's attention (wsgi_doorbell.c)
 * and the start of one daemon process (wsgi_spawn.c), as docs/daemon-config.md describes.
 *
 * Lifetimes. Apache re-reads its configuration into a cleared pconf on every restart, and may load
 * mod_wsgi.so again at another address. What must outlive a configuration generation is plain data kept
 * with malloc in the process pool's supervisor (no function pointers): every running daemon, every pool
 * (a group's listening socket and board segment, kept across a graceful restart when the group's
 * configuration did not change), the doorbell. Everything else, including the registration of each
 * process with apr_proc_other_child_register, belongs to pconf and is redone by each generation.
 *
 * Start before stop (docs/restarts.md). A daemon that is to be replaced (maximum-requests, a changed
 * script, SIGUSR1, limits, timeouts) asks for a successor on the board and rings the doorbell; the parent
 * starts the successor in another slot of the pool; the old process serves until the successor says it
 * is ready, then drains and exits. A crash is replaced at once. A group whose configuration changed on a
 * graceful restart gets a new pool; its socket replaces the old one once every new daemon is ready.
 */
#ifndef WSGI_DAEMON_H
#define WSGI_DAEMON_H

#include "wsgi_config.h"
#include "wsgi_ledger.h"
#include "wsgi_segment.h"

#include "apr_thread_proc.h"

/* The daemons of one group with one configuration: a listening socket and a board segment. */
typedef struct wsgi_pool {
    struct wsgi_pool *next;
    char *name;
    char *fingerprint;          /* the group's configuration as its daemons get it, minus per-process
                                   fields: equal across a restart means the pool is kept */
    int generation;             /* the newest configuration generation it serves */
    char *socket_path;          /* the group's stable path */
    char *pending_path;         /* while its daemons start to replace an older pool: where it listens,
                                   renamed onto socket_path once they are ready; NULL once in place */
    int listen_fd;
    unsigned long listen_ino;   /* its inode: how status pages ask the kernel for its accept queue */
    wsgi_segment *seg;
    int processes;
    int retired;                /* replaced, or its group removed: no new daemons, the old ones drain */
} wsgi_pool;

/* One running daemon process. Allocated with malloc: it outlives configuration generations. */
typedef struct wsgi_daemon {
    struct wsgi_daemon *next;
    struct wsgi_supervisor *sup;
    apr_proc_t proc;
    wsgi_pool *pool;
    uint32_t slot;              /* its slot on the pool's segment */
    int index;                  /* 1..processes */
    int generation;             /* configuration generation that started it */
    apr_time_t started;
    apr_time_t stop_sent;       /* when it was told to stop; 0 while it serves */
    int stop_signal;            /* SIGTERM, or 0: told to drain through the board */
    int stop_timeout;           /* seconds it may take after stop_sent */
    int shutdown_timeout;       /* the group's options, kept for stopping */
    int graceful_timeout;
    int killed;                 /* SIGKILL sent */
    int registered;             /* known to apr_proc_other_child */
    int quick_exits;            /* consecutive exits soon after starting */
    int successor_failures;     /* successors that died before they were ready, in a row */
    apr_time_t successor_after; /* no new successor before this (back-off after a failure) */
} wsgi_daemon;

/* What one configuration generation runs (pconf). */
typedef struct wsgi_runtime {
    apr_pool_t *pconf;
    server_rec *server;
    wsgi_state *state;
    int generation;
    const char *node;           /* Node.js binary */
    const char *daemon_main;    /* lib/daemon/main.js */
    char **node_flags;          /* MOD_WSGI_NODE_FLAGS split into words (profiling), NULL-terminated */
} wsgi_runtime;

/* The doorbell (wsgi_doorbell.c): a process of the parent's that exits when a daemon writes to it. */
typedef struct wsgi_doorbell {
    int read_fd;                /* the watcher's end */
    int write_fd;               /* fd 5 of every daemon */
    apr_proc_t proc;            /* the watcher, pid 0 when none */
    int registered;
} wsgi_doorbell;

/* Process-pool data shared by all generations. */
typedef struct wsgi_supervisor {
    wsgi_daemon *daemons;
    wsgi_pool *pools;
    wsgi_runtime *current;      /* NULL between generations */
    wsgi_doorbell bell;
    wsgi_ledger *ledger;        /* what the parent vouches for (wsgi_ledger.h); NULL if it could not be made */
} wsgi_supervisor;

/* post_config (not the dry run): pools, daemons, hand-over from the previous generation. */
int wsgi_daemons_start(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s);

/* child_init: Apache children must not hold the daemons' sockets, segments or the doorbell. */
void wsgi_daemons_child_init(apr_pool_t *pchild, server_rec *s);

/* monitor hook (Apache parent, about every 10 s): backstop for daemons that do not stop. */
int wsgi_daemons_monitor(apr_pool_t *p, server_rec *s);

/* Apache's graceful stop has begun: tell the daemons (the APACHE_STOPPING flag on their board slots) to
 * serve on until it ends (wsgi_stop.c). */
void wsgi_daemons_apache_stopping(server_rec *s);

/* wsgi_ends.c: how a daemon ended and its record in the ledger. */
typedef struct {
    int exit_status;            /* -1: none known */
    int sig;                    /* 0: none */
    int core;
    int code;                   /* what Apache passed: APR's decoded code, a raw wait status, or -1 */
} wsgi_end;

/* From the SIGCHLD handler's note, else what Apache passed. */
wsgi_end wsgi_end_of(wsgi_supervisor *sup, wsgi_daemon *d, int status);

/* "code 9 (killed by signal 9, SIGKILL)" and the like, for log lines. */
const char *wsgi_end_describe(apr_pool_t *p, const wsgi_end *e);

/* Its end into the ledger (history, its group's totals) and its slot freed; the event's number, to add
 * the pid of a replacement started after (wsgi_ledger_set_new_pid). */
uint64_t wsgi_end_record(wsgi_supervisor *sup, wsgi_daemon *d, const wsgi_end *e, uint32_t reason, uint32_t new_pid);

/* For the status pages (wsgi_status.c), in any process: the pools this process knows (an Apache child:
 * those that existed when it was forked; their segments are mapped) and the ledger, or NULL. */
wsgi_pool *wsgi_daemons_pools(server_rec *s);
wsgi_ledger *wsgi_daemons_ledger(server_rec *s);

/* register_hooks: noticing Apache's graceful stop (wsgi_stop.c). */
void wsgi_stop_register_hooks(apr_pool_t *p);

/* wsgi_supervise.c: the daemons of a running generation. */

/* The process pool's supervisor (made on first use). */
wsgi_supervisor *wsgi_supervisor_get(apr_pool_t *process_pool);

/* Starts a daemon in `slot` of the pool: the first of its index, a replacement of a process that died
 * (`quick_exits` in a row soon after starting: it waits a growing delay first), or the successor of
 * `predecessor`. NULL on failure (logged). */
wsgi_daemon *wsgi_start_daemon(wsgi_supervisor *sup, wsgi_pool *pool, wsgi_group *g, uint32_t slot, int index,
                               int quick_exits, wsgi_daemon *predecessor);

/* apr_proc_other_child callback of every daemon (the parent's main loop). */
void wsgi_daemon_maintenance(int reason, void *data, int status);

/* Its slot on its pool's board. */
unsigned char *wsgi_daemon_slot(const wsgi_daemon *d);

/* Tells a daemon to stop with `sig` (SIGTERM), or through the board to drain (a newer pool is ready, its
 * group is gone); the monitor kills one that does not stop in time. */
void wsgi_send_stop(wsgi_daemon *d, int sig);
void wsgi_send_drain(wsgi_daemon *d);

/* Forgets a daemon that has been reaped. */
void wsgi_unlink_daemon(wsgi_supervisor *sup, wsgi_daemon *d);

/* Looks at the board and acts: successors to start, a pending pool to switch to; closes pools no daemon
 * uses any more (wsgi_collect_pools). Called on the doorbell, on every death and by the monitor. */
void wsgi_supervise(wsgi_supervisor *sup);
void wsgi_collect_pools(wsgi_supervisor *sup);

/* The doorbell's callback: wsgi_supervise, then listen again. */
void wsgi_doorbell_rang(void *data);

/* wsgi_pool.c: sockets and pools. */

/* The stable socket path of a group. */
const char *wsgi_pool_socket_path(apr_pool_t *p, const char *prefix, const char *name);

/* A new pool for group g: its socket bound at `path` (renamed later when `pending`), its segment. NULL on
 * failure (logged). */
wsgi_pool *wsgi_pool_create(server_rec *s, wsgi_group *g, const char *socket_path, int pending, int generation,
                            const char *fingerprint);

/* Puts a pending pool's socket in place (rename over the stable path). 0 on failure (logged). */
int wsgi_pool_activate(server_rec *s, wsgi_pool *pool);

/* Closes and frees a pool that no daemon uses any more; unlinks its socket when `unlink_path`. */
void wsgi_pool_destroy(wsgi_pool *pool, int unlink_path);

/* Can the Apache children's user search every directory down to the socket directory, and is it safe?
 * OK or an HTTP error status (logged). */
int wsgi_pool_check_dir(server_rec *s, const char *prefix, apr_pool_t *ptemp);

/* wsgi_doorbell.c */

/* Creates the pipe once (0 on failure, logged). */
int wsgi_doorbell_init(wsgi_doorbell *bell, server_rec *s);

/* Starts the watcher if none runs, and registers it with pconf: `rang` is called from the parent's main
 * loop when it exits (a daemon rang, or it died). */
void wsgi_doorbell_arm(wsgi_doorbell *bell, apr_pool_t *pconf, server_rec *s, void (*rang)(void *), void *data);

/* Stops the watcher (Apache stops). */
void wsgi_doorbell_stop(wsgi_doorbell *bell);

/* wsgi_spawn.c */

/* What a daemon is started as, beyond its group's configuration. */
typedef struct wsgi_spawn_info {
    wsgi_pool *pool;
    uint32_t slot;
    int index;                  /* 1..processes */
    int delay;                  /* seconds the child waits first (restart back-off) */
    int bell_fd;                /* the doorbell's write end, or -1 */
    /* A successor: the process it replaces (pid 0 for none), why, and the scripts it had loaded (the
     * predecessor's slot, read defensively: a daemon wrote it). */
    long predecessor_pid;
    uint32_t reason;
    const unsigned char *scripts;
} wsgi_spawn_info;

/* In a process forked from the Apache parent: every signal back to its default, none blocked (Apache's
 * parent blocks and catches signals; its helpers start from a clean slate). */
void wsgi_reset_signals(void);

/* Forks and executes one daemon process of group g. Returns APR_SUCCESS and fills *proc, or an error
 * (logged). */
apr_status_t wsgi_spawn(wsgi_runtime *rt, wsgi_group *g, const wsgi_spawn_info *info, apr_proc_t *proc);

/* The group's configuration as its daemons get it, without per-process fields: a pool is kept across a
 * restart when this does not change. */
const char *wsgi_spawn_fingerprint(apr_pool_t *p, wsgi_runtime *rt, wsgi_group *g);

#endif /* WSGI_DAEMON_H */
