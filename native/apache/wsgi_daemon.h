/*
 * Daemon process supervision in the Apache parent (wsgi_daemon.c) and the start of one daemon process
 * (wsgi_spawn.c), as docs/daemon-config.md describes.
 *
 * Lifetimes. Apache re-reads its configuration into a cleared pconf on every restart, and may load
 * mod_wsgi.so again at another address. What must outlive a configuration generation, the record of
 * every running daemon, is plain data kept in the process pool (wsgi_supervisor, no function
 * pointers); everything else, including the registration of each daemon with
 * apr_proc_other_child_register, belongs to pconf and is redone by each generation's post_config.
 */
#ifndef WSGI_DAEMON_H
#define WSGI_DAEMON_H

#include "wsgi_config.h"

#include "apr_thread_proc.h"

/* One running daemon process. Allocated with malloc: it outlives configuration generations. */
typedef struct wsgi_daemon {
    struct wsgi_daemon *next;
    struct wsgi_supervisor *sup;
    apr_proc_t proc;
    char *group;                /* process group name */
    int index;                  /* 1..processes */
    int generation;             /* configuration generation that started it */
    apr_time_t started;
    apr_time_t stop_sent;       /* when it was told to stop; 0 while it serves */
    int stop_signal;            /* SIGUSR1 (drain) or SIGTERM */
    int stop_timeout;           /* seconds it may take after stop_sent */
    int shutdown_timeout;       /* the group's options, kept for stopping */
    int graceful_timeout;
    int killed;                 /* SIGKILL sent */
    int registered;             /* known to apr_proc_other_child */
    int quick_exits;            /* consecutive exits soon after starting */
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

/* Process-pool data shared by all generations. */
typedef struct wsgi_supervisor {
    wsgi_daemon *daemons;
    wsgi_runtime *current;      /* NULL between generations */
    char **socket_paths;        /* malloc'd: socket files of the current generation */
    int socket_count;
} wsgi_supervisor;

/* post_config (not the dry run): sockets, daemons, hand-over from the previous generation. */
int wsgi_daemons_start(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s);

/* child_init: Apache children must not hold the daemons' listening sockets. */
void wsgi_daemons_child_init(apr_pool_t *pchild, server_rec *s);

/* monitor hook (Apache parent, about every 10 s): backstop for daemons that do not stop. */
int wsgi_daemons_monitor(apr_pool_t *p, server_rec *s);

/* Apache's graceful stop has begun: tell the daemons (SIGUSR2) to serve on until it ends (wsgi_stop.c). */
void wsgi_daemons_apache_stopping(server_rec *s);

/* register_hooks: noticing Apache's graceful stop (wsgi_stop.c). */
void wsgi_stop_register_hooks(apr_pool_t *p);

/*
 * Forks and executes one daemon process of group g with index `index`; the child first waits
 * `delay` seconds (restart back-off). Returns APR_SUCCESS and fills *proc, or an error (logged).
 */
apr_status_t wsgi_spawn(wsgi_runtime *rt, wsgi_group *g, int index, int delay, apr_proc_t *proc);

#endif /* WSGI_DAEMON_H */
