/*
 * The ledger (wsgi_ledger.h): memory only the Apache parent writes, read by Apache's children.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE     /* sigabbrev_np */
#endif
#include "wsgi_ledger.h"

#include "apr_strings.h"
#include "apr_time.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define LEDGER_KEY "mod_wsgi_ledger"

/* The handler cannot take an argument: the ledger it writes to (set by wsgi_ledger_get, in the parent). */
static wsgi_ledger *handler_ledger;

static int usable(const wsgi_ledger *l)
{
    return l->magic == WSGI_LEDGER_MAGIC && l->version == WSGI_LEDGER_VERSION && l->size == sizeof(*l);
}

wsgi_ledger *wsgi_ledger_find(apr_pool_t *process_pool)
{
    void *data = NULL;

    apr_pool_userdata_get(&data, LEDGER_KEY, process_pool);
    return data && usable(data) ? data : NULL;
}

wsgi_ledger *wsgi_ledger_get(apr_pool_t *process_pool)
{
    wsgi_ledger *l = wsgi_ledger_find(process_pool);
    void *map;

    /* A module built with another layout, loaded by a restart, makes a new ledger (the old one stays
     * mapped: children of the old generation may still read it). */
    if (!l) {
        map = mmap(NULL, sizeof(*l), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (map == MAP_FAILED)
            return NULL;
        l = map;
        l->magic = WSGI_LEDGER_MAGIC;
        l->version = WSGI_LEDGER_VERSION;
        l->size = sizeof(*l);
        /* _set, not _setn: the key must not point into this module, which a restart may unload. */
        apr_pool_userdata_set(l, LEDGER_KEY, NULL, process_pool);
    }
    handler_ledger = l;
    return l;
}

void wsgi_ledger_child_init(wsgi_ledger *l)
{
    if (l)
        mprotect(l, sizeof(*l), PROT_READ);
}

/* ---------------------------------------------------------------------------------------------- */
/* Exits, noted by the parent's SIGCHLD handler                                                    */

static void note_exit(wsgi_ledger *l, int32_t pid, int code, int status)
{
    uint32_t i, n = l->exits_next;

    /* Noted already (a later signal found it again)? */
    for (i = 0; i < 8 && i < n; ++i)
        if (l->exits[(n - 1 - i) % WSGI_LEDGER_EXITS].pid == pid)
            return;
    l->exits[n % WSGI_LEDGER_EXITS].code = code;
    l->exits[n % WSGI_LEDGER_EXITS].status = status;
    l->exits[n % WSGI_LEDGER_EXITS].pid = pid;
    l->exits_next = n + 1;
}

/*
 * Async-signal-safe: waitid() and plain stores. SIGCHLD signals that arrive together merge into one, so
 * besides the child the signal is about, every watched pid is looked at without reaping it (WNOWAIT):
 * Apache's main loop reaps them afterwards.
 */
void wsgi_ledger_sigchld(int sig, siginfo_t *info, void *context)
{
    wsgi_ledger *l = handler_ledger;
    int saved = errno, i;

    (void)sig;
    (void)context;
    if (!l)
        return;
    if (info && info->si_code != SI_USER && info->si_pid > 0 &&
        (info->si_code == CLD_EXITED || info->si_code == CLD_KILLED || info->si_code == CLD_DUMPED))
        note_exit(l, info->si_pid, info->si_code, info->si_status);
    for (i = 0; i < WSGI_LEDGER_WATCH; ++i) {
        siginfo_t si;
        int32_t pid = l->watch[i];
        if (pid <= 0)
            continue;
        memset(&si, 0, sizeof(si));
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
            note_exit(l, pid, si.si_code, si.si_status);
    }
    errno = saved;
}

void wsgi_ledger_watch(wsgi_ledger *l, int32_t pid, int on)
{
    int i;

    if (!l || pid <= 0)
        return;
    for (i = 0; i < WSGI_LEDGER_WATCH; ++i) {
        if (on && l->watch[i] == 0) {
            l->watch[i] = pid;
            return;
        }
        if (!on && l->watch[i] == pid) {
            l->watch[i] = 0;
            return;
        }
    }
}

int wsgi_ledger_exit_of(wsgi_ledger *l, int32_t pid, int *code, int *status)
{
    uint32_t i, n;

    if (!l)
        return 0;
    n = l->exits_next;
    for (i = 0; i < WSGI_LEDGER_EXITS && i < n; ++i) {
        const wsgi_exit_note *e = &l->exits[(n - 1 - i) % WSGI_LEDGER_EXITS];
        if (e->pid == pid) {
            *code = e->code;
            *status = e->status;
            return 1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Writing (the parent) and reading (everyone)                                                     */

static void write_begin(wsgi_ledger *l)
{
    __atomic_store_n(&l->seq, l->seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static void write_end(wsgi_ledger *l)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    __atomic_store_n(&l->seq, l->seq + 1, __ATOMIC_RELEASE);
}

uint32_t wsgi_ledger_read_begin(const wsgi_ledger *l)
{
    uint32_t seq;
    int spins = 0;

    /* The parent holds it for a few stores: wait it out (bounded: a parent stopped mid-write, say by a
     * debugger, must not hang the handler). */
    while (((seq = __atomic_load_n(&l->seq, __ATOMIC_ACQUIRE)) & 1) && ++spins < 10000)
        sched_yield();
    return seq & ~1u;
}

int wsgi_ledger_read_retry(const wsgi_ledger *l, uint32_t seq)
{
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    return __atomic_load_n(&l->seq, __ATOMIC_RELAXED) != seq;
}

double wsgi_ledger_sane(double v)
{
    return isfinite(v) && v > 0 ? v : 0;
}

int wsgi_ledger_group_of(const wsgi_ledger *l, const char *name)
{
    uint32_t i;

    for (i = 0; i < l->ngroups && i < WSGI_LEDGER_GROUPS; ++i)
        if (!strncmp(l->groups[i].name, name, WSGI_BOARD_NAME_MAX - 1))
            return (int)i;
    return -1;
}

uint64_t wsgi_ledger_record(wsgi_ledger *l, const char *group, unsigned char *slot, const wsgi_ledger_event *ev)
{
    uint64_t n;
    volatile const double *stats = (volatile const double *)(slot + WSGI_SLOT_STATUS);
    int g = wsgi_ledger_group_of(l, group);
    wsgi_ledger_event *e;
    int i;

    write_begin(l);
    if (g < 0 && l->ngroups < WSGI_LEDGER_GROUPS) {
        g = (int)l->ngroups;
        strncpy(l->groups[g].name, group, WSGI_BOARD_NAME_MAX - 1);
        l->ngroups++;
    }
    if (g >= 0) {
        wsgi_ledger_group *lg = &l->groups[g];
        lg->ended++;
        lg->by_reason[ev->reason < WSGI_REASON_COUNT ? ev->reason : WSGI_REASON_INTERNAL_ERROR]++;
        lg->cpu_seconds += (double)*(volatile const uint64_t *)(slot + WSGI_SLOT_CPU_US) / 1e6;
        for (i = 0; i < WSGI_STATS_VALUES; ++i)
            lg->stats[i] += wsgi_ledger_sane(stats[i]);
    }
    n = l->events;
    e = &l->history[n % WSGI_LEDGER_HISTORY];
    *e = *ev;
    e->group = g >= 0 ? (uint32_t)g : UINT32_MAX;
    l->events = n + 1;
    *(volatile uint32_t *)(slot + WSGI_SLOT_STATE) = WSGI_STATE_FREE;
    *(volatile uint32_t *)(slot + WSGI_SLOT_PID) = 0;
    write_end(l);
    return n;
}

void wsgi_ledger_set_new_pid(wsgi_ledger *l, uint64_t n, uint32_t pid)
{
    if (n >= l->events || l->events - n > WSGI_LEDGER_HISTORY)
        return;
    write_begin(l);
    l->history[n % WSGI_LEDGER_HISTORY].new_pid = pid;
    write_end(l);
}

void wsgi_ledger_set_stopping(wsgi_ledger *l)
{
    if (!l)
        return;
    write_begin(l);
    l->apache_stopping = 1;
    write_end(l);
}

int wsgi_ledger_find_end(const wsgi_ledger *l, const char *group, uint64_t since_us, int wait_ms,
                         wsgi_ledger_event *out)
{
    int waited = 0;

    if (!l)
        return 0;
    for (;;) {
        int g = wsgi_ledger_group_of(l, group), found = 0;
        uint64_t n = l->events, k;
        for (k = 0; g >= 0 && k < WSGI_LEDGER_HISTORY && k < n && !found; ++k) {
            uint32_t seq = wsgi_ledger_read_begin(l);
            wsgi_ledger_event ev = l->history[(n - 1 - k) % WSGI_LEDGER_HISTORY];
            if (wsgi_ledger_read_retry(l, seq))
                break;
            if (ev.time_us < since_us)
                break;
            if (ev.group == (uint32_t)g) {
                *out = ev;
                found = 1;
            }
        }
        if (found)
            return 1;
        if (waited >= wait_ms)
            return 0;
        apr_sleep(apr_time_from_msec(10));
        waited += 10;
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Why a process ended                                                                            */

uint32_t wsgi_ledger_end_reason(const unsigned char *slot, int was_ready, int exit_status, int sig, int killed,
                                int drained)
{
    uint32_t state = *(volatile const uint32_t *)(slot + WSGI_SLOT_STATE);
    uint32_t said = *(volatile const uint32_t *)(slot + WSGI_SLOT_REASON);
    int deliberate = state == WSGI_STATE_STOPPING && said > WSGI_REASON_NONE && said < WSGI_REASON_COUNT;

    if (sig)
        /* Killed: by us after it did not stop in time (it was stopping, and says why), else a crash. */
        return killed ? (deliberate ? said : WSGI_REASON_STOP) : WSGI_REASON_CRASH;
    if (deliberate)
        return said;
    if (exit_status == 0 || exit_status == 4)
        return said > WSGI_REASON_NONE && said < WSGI_REASON_COUNT ? said
               : drained ? WSGI_REASON_GRACEFUL_RESTART : WSGI_REASON_STOP;
    if (!was_ready)
        return WSGI_REASON_STARTUP_FAILURE;
    return exit_status == 5 ? WSGI_REASON_INTERNAL_ERROR : WSGI_REASON_CRASH;
}

const char *wsgi_ledger_describe(apr_pool_t *p, int exit_status, int sig, int core, int code)
{
    if (sig) {
        const char *name = sigabbrev_np(sig);
        return apr_psprintf(p, "code %d (killed by signal %d, SIG%s%s)", sig, sig, name ? name : "?",
                            core ? ", core dumped" : "");
    }
    if (exit_status == 0)
        return "exit status 0";
    if (exit_status > 0)
        return apr_psprintf(p, "code %d (exit status %d)", exit_status, exit_status);
    if (code == -1)
        return "an unknown status (reaped elsewhere)";
    return apr_psprintf(p, "code %d (its exit status, or the signal that ended it)", code);
}
