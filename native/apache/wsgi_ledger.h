/*
 * The ledger: what the Apache parent vouches for about the daemons, in shared memory only the parent
 * writes (wsgi_ledger.c). The board (wsgi_board.h) holds what each daemon says about itself while it
 * lives; the ledger keeps what must outlive a process and be trusted:
 *   - the restart history: the last WSGI_LEDGER_HISTORY ends of daemon processes, each with its group,
 *     slot, process index, pid, successor's pid, reason word and exit status or signal;
 *   - per group (by name), the processes that ended by reason, and the request statistics of those
 *     processes (the STATS areas of their slots, added up when each ended), so that a group's counters
 *     never go backwards when a process is replaced;
 *   - whether Apache is stopping gracefully (the health endpoint answers 503 from then on);
 *   - how each daemon ended (exit status or signal), noted by the parent's SIGCHLD handler before Apache's
 *     main loop reaps it: the main loop hands on only a number that may be either.
 *
 * One anonymous MAP_SHARED mapping, made once per Apache process lifetime by the first post_config (so
 * before any child is forked, and kept across restarts), found again through the process pool. Apache's
 * children inherit it and make their copy read-only in child_init; daemons never have it (they exec).
 * Readers take a consistent view with the sequence lock (wsgi_ledger_read_begin/retry): the parent makes
 * seq odd while it changes anything, and moves a process's counters from its slot to its group's totals
 * and frees the slot under the same lock, so that no reader counts them twice or not at all.
 */
#ifndef WSGI_LEDGER_H
#define WSGI_LEDGER_H

#include "wsgi_board.h"

#include "apr_pools.h"

#include <signal.h>
#include <stdint.h>

#define WSGI_LEDGER_MAGIC       0x4c475357u     /* "WSGL" */
#define WSGI_LEDGER_VERSION     1
#define WSGI_LEDGER_HISTORY     50
#define WSGI_LEDGER_GROUPS      128             /* group names remembered; more are not accounted */
#define WSGI_LEDGER_WATCH       1024            /* daemon pids the SIGCHLD handler looks at */
#define WSGI_LEDGER_EXITS       128             /* exit notes kept (a ring) */
/* The f64 statistics of a slot (WSGI_SLOT_STATUS .. the end of its STATS area). */
#define WSGI_STATS_VALUES       ((WSGI_SLOT_STATS + WSGI_SLOT_STATS_SIZE - WSGI_SLOT_STATUS) / 8)

typedef struct {
    char name[WSGI_BOARD_NAME_MAX];
    uint64_t ended;                             /* processes that ended */
    uint64_t by_reason[WSGI_REASON_COUNT];      /* ... by reason */
    double cpu_seconds;                         /* CPU they used */
    double stats[WSGI_STATS_VALUES];            /* their request statistics, added up */
} wsgi_ledger_group;

/* One end of a daemon process. */
typedef struct {
    uint64_t time_us;                           /* when the parent saw it, µs since the epoch */
    uint32_t group;                             /* index into groups */
    uint32_t slot;
    uint32_t index;                             /* 1..processes */
    uint32_t generation;                        /* configuration generation that started it */
    uint32_t old_pid;
    uint32_t new_pid;                           /* its successor or replacement; 0 for none */
    uint32_t reason;                            /* WSGI_REASON_* */
    int32_t exit_status;                        /* -1: did not exit (a signal) or not known */
    int32_t signal;                             /* 0: none */
    uint32_t core;                              /* the signal dumped core */
} wsgi_ledger_event;

typedef struct {
    volatile int32_t pid;
    volatile int32_t code;                      /* CLD_EXITED, CLD_KILLED, CLD_DUMPED */
    volatile int32_t status;                    /* the exit status, or the signal */
} wsgi_exit_note;

typedef struct wsgi_ledger {
    uint32_t magic;
    uint32_t version;
    uint32_t size;
    volatile uint32_t seq;                      /* odd while the parent writes */
    volatile uint32_t apache_stopping;          /* Apache's graceful stop began */
    uint32_t ngroups;
    uint64_t events;                            /* ends recorded so far; the newest is events - 1 */
    wsgi_ledger_group groups[WSGI_LEDGER_GROUPS];
    wsgi_ledger_event history[WSGI_LEDGER_HISTORY];     /* ring: event n at n % WSGI_LEDGER_HISTORY */
    volatile int32_t watch[WSGI_LEDGER_WATCH];  /* live daemon pids (0: free entry) */
    wsgi_exit_note exits[WSGI_LEDGER_EXITS];    /* ring */
    volatile uint32_t exits_next;
} wsgi_ledger;

/* The ledger of this Apache process, made on the first call (the parent's first post_config); NULL
 * if it could not be mapped (logged by the caller). */
wsgi_ledger *wsgi_ledger_get(apr_pool_t *process_pool);

/* The ledger if it exists (Apache's children, handlers), else NULL. */
wsgi_ledger *wsgi_ledger_find(apr_pool_t *process_pool);

/* child_init: this child's copy becomes read-only. */
void wsgi_ledger_child_init(wsgi_ledger *l);

/* Parent: the SIGCHLD handler to install (SA_SIGINFO), and the pids it watches. */
void wsgi_ledger_sigchld(int sig, siginfo_t *info, void *context);
void wsgi_ledger_watch(wsgi_ledger *l, int32_t pid, int on);

/* How pid ended, as the SIGCHLD handler noted it: 1 and *code, *status (CLD_EXITED and the exit status,
 * or CLD_KILLED/CLD_DUMPED and the signal), or 0 when it was not noted. */
int wsgi_ledger_exit_of(wsgi_ledger *l, int32_t pid, int *code, int *status);

/* Parent: a process ended. Under the lock: its statistics (the slot's STATS area, read defensively) go to
 * its group's totals, the event to the history, and the slot is freed (state FREE, pid 0). Returns the
 * event's number. */
uint64_t wsgi_ledger_record(wsgi_ledger *l, const char *group, unsigned char *slot, const wsgi_ledger_event *ev);

/* Parent: the pid of the process that replaced the one of event n (started after it was recorded). */
void wsgi_ledger_set_new_pid(wsgi_ledger *l, uint64_t n, uint32_t pid);

/* Parent: the reason word of a process that ended, from what it wrote on its slot (it says why when it
 * stops itself) and how it ended: exit_status (-1: none), sig (0: none), killed: we sent SIGKILL,
 * drained: we told it to drain (a newer pool of its group took over). */
uint32_t wsgi_ledger_end_reason(const unsigned char *slot, int was_ready, int exit_status, int sig, int killed,
                                int drained);

/* "code 9 (killed by signal 9, SIGKILL)", "code 4 (exit status 4)"; `code` is APR's number when neither
 * is known. */
const char *wsgi_ledger_describe(apr_pool_t *p, int exit_status, int sig, int core, int code);

/* Parent: Apache's graceful stop began. */
void wsgi_ledger_set_stopping(wsgi_ledger *l);

/* Readers: a consistent view is what was read between read_begin and a read_retry that returns 0. */
uint32_t wsgi_ledger_read_begin(const wsgi_ledger *l);
int wsgi_ledger_read_retry(const wsgi_ledger *l, uint32_t seq);

/* The index of group `name` in l->groups, or -1. */
int wsgi_ledger_group_of(const wsgi_ledger *l, const char *name);

/* A value of a slot's statistics as a reader may use it: not finite or negative is 0. */
double wsgi_ledger_sane(double v);

/*
 * Children: the newest end of a process of `group` seen at or after since_us, waiting up to wait_ms for
 * the parent to record it (a daemon that died mid-request closes its connections a moment before the
 * parent reaps it). 1 and *ev, or 0.
 */
int wsgi_ledger_find_end(const wsgi_ledger *l, const char *group, uint64_t since_us, int wait_ms,
                         wsgi_ledger_event *ev);

#endif /* WSGI_LEDGER_H */
