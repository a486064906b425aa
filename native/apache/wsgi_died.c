/*
 * A daemon process that dies mid-request (a crash, the kernel's OOM killer, a kill -9) closes its
 * connections a moment before the Apache parent reaps it and records how it ended in the ledger
 * (wsgi_ledger.h). The Apache child whose request it was waits a little for that record, so that its one
 * log line about the failed request says what happened: the pid, the signal or exit status, the reason.
 */
#include "wsgi_forward.h"
#include "wsgi_daemon.h"

#include "apr_strings.h"

#include <signal.h>

/* How long the child waits for the parent to record the death. The parent is woken by SIGCHLD at
 * once; this covers a busy machine. */
#define DEATH_WAIT_MS 500

const char *wsgi_daemon_death(wsgi_req *q)
{
    request_rec *r = q->r;
    wsgi_ledger *l = wsgi_daemons_ledger(r->server);
    wsgi_ledger_event ev;
    const char *how, *hint;
    /* Ends recorded since the request went out (a second earlier: the clocks are the same, but the
     * parent stamps the event when it reaps the process). */
    uint64_t since = (uint64_t)(q->sent_at > apr_time_from_sec(1) ? q->sent_at - apr_time_from_sec(1) : 0);

    if (!l || !wsgi_ledger_find_end(l, q->group->name, since, DEATH_WAIT_MS, &ev))
        return NULL;
    hint = "";
    if (ev.signal) {
        const char *name = sigabbrev_np(ev.signal);
        how = apr_psprintf(r->pool, "was killed by signal %d (SIG%s)%s", ev.signal, name ? name : "?",
                           ev.core ? ", core dumped" : "");
        /* A process killed while its group has a memory limit most likely ran out of memory. */
        if ((ev.signal == SIGKILL || ev.signal == SIGABRT || ev.signal == SIGSEGV) &&
            (q->group->memory_limit || q->group->virtual_memory_limit))
            hint = " (its group sets memory-limit or virtual-memory-limit, which it may have reached)";
    }
    else if (ev.exit_status >= 0)
        how = apr_psprintf(r->pool, "exited with status %d", ev.exit_status);
    else
        how = "ended";
    return apr_psprintf(r->pool, "daemon process %u (pid %u) %s, reason %s%s%s", ev.index, ev.old_pid, how,
                        wsgi_reason_name(ev.reason),
                        ev.new_pid ? apr_psprintf(r->pool, "; pid %u replaces it", ev.new_pid) : "", hint);
}
