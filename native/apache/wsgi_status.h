/*
 * What the daemons are doing, as any Apache process sees it: one collector (wsgi_status.c) and its
 * renderings, each a handler that runs in whichever Apache child takes the request and only where the
 * configuration puts it (Apache's Require applies):
 *   SetHandler wsgi-status    JSON (wsgi_status_json.c)
 *   SetHandler wsgi-metrics   the Prometheus text format (wsgi_metrics.c)
 *   SetHandler wsgi-health    200 while every process group has a ready process and Apache is not
 *                             stopping, else 503 (wsgi_health.c)
 *   mod_status's page         a section for the daemon groups, HTML and ?auto (wsgi_status_page.c)
 *
 * The collector reads two kinds of shared memory that Apache's children inherited when they were forked:
 * the board segment of every pool of daemons the child knows (what each daemon says about itself, fresh
 * to within a second; its request counts at once) and the ledger (what the parent vouches for: the
 * restart history, the totals of processes that ended, whether Apache is stopping), both read under the
 * ledger's sequence lock so that a process that just ended is counted once. Nothing is asked of the
 * daemons themselves.
 */
#ifndef WSGI_STATUS_H
#define WSGI_STATUS_H

#include "httpd.h"

#include "wsgi_ledger.h"

/* One live daemon process (a slot that is not free). */
typedef struct {
    uint32_t slot;                      /* its slot on its pool's segment */
    uint32_t label;                     /* the slot as metrics label it: unique within the group */
    uint32_t index;                     /* 1..processes */
    uint32_t pid;
    uint32_t state;                     /* WSGI_STATE_* */
    uint32_t generation;                /* configuration generation that started it */
    uint64_t started_us, ready_us, heartbeat_us;
    uint64_t rss;
    double cpu_seconds;
    uint32_t active, threads_busy, queued, websockets;
    uint32_t threads;                   /* its group's threads= */
    double stats[WSGI_STATS_VALUES];    /* its request statistics (wsgi_board.h), sane */
    const char *start_reason;           /* why it was started: the reason its predecessor ended, or NULL */
} wsgi_status_process;

typedef struct {
    const char *name;                   /* the group's name; "" for the default group */
    const char *label;                  /* as shown: the name, or "(default)" */
    int configured;                     /* in this child's configuration (its health counts) */
    int processes, threads;             /* its processes= and threads= */
    apr_array_header_t *procs;          /* wsgi_status_process, by slot label */
    double stats[WSGI_STATS_VALUES];    /* live processes' and ended ones' request statistics */
    uint64_t ended;                     /* processes that ended */
    uint64_t by_reason[WSGI_REASON_COUNT];
    double ended_cpu_seconds;
    long accept_queue;                  /* connections waiting in its socket's backlog; -1: unknown */
    int by_state[WSGI_STATE_STOPPING + 1];  /* live processes by state */
    uint32_t active, threads_busy, threads_idle, queued, websockets;
} wsgi_status_group;

typedef struct {
    uint64_t time_us;
    const char *group;                  /* label */
    uint32_t slot, index, generation, old_pid, new_pid;
    const char *reason;
    int exit_status;                    /* -1: none */
    int signal;                         /* 0: none */
    int core;
} wsgi_status_restart;

typedef struct {
    apr_time_t now;
    int ledger;                         /* the ledger could be read */
    int apache_stopping;
    apr_array_header_t *groups;         /* wsgi_status_group: the configuration's, then others by name */
    apr_array_header_t *restarts;       /* wsgi_status_restart, newest first */
} wsgi_status;

/* Reads everything now, into r->pool. */
wsgi_status *wsgi_status_collect(request_rec *r);

/* Statistic helpers over a stats array (wsgi_board.h layout, indexes from WSGI_SLOT_STATUS). */
double wsgi_status_requests(const double *stats);               /* all status classes */
double wsgi_status_class(const double *stats, int cls);         /* 0: 1xx ... 4: 5xx, 5: other */
const double *wsgi_status_histogram(const double *stats, int queue_wait);  /* buckets, then the sum */
extern const char *const wsgi_status_class_names[WSGI_BOARD_STATUS_CLASSES];
extern const char *const wsgi_status_state_names[WSGI_STATE_STOPPING + 1];

/* Whether the health endpoint says ready; *why says why not (r->pool). */
int wsgi_status_healthy(const wsgi_status *st, const char **why);

/* The name of a signal, "SIGKILL"; "" for 0. */
const char *wsgi_status_signal_name(apr_pool_t *p, int sig);

/* The number of connections waiting in the backlog of the listening UNIX socket with inode `ino`
 * (wsgi_backlog.c, through the kernel's sock_diag), or -1. */
long wsgi_backlog_of(unsigned long ino);

/* Handlers (r->handler wsgi-status, wsgi-metrics, wsgi-health): DECLINED for others. */
int wsgi_status_json_handler(request_rec *r);
int wsgi_metrics_handler(request_rec *r);
int wsgi_health_handler(request_rec *r);

/* register_hooks: the handlers and mod_status's status_hook. */
void wsgi_status_register_hooks(apr_pool_t *p);

#endif /* WSGI_STATUS_H */
