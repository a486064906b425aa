/*
 * How a daemon process ended, and its record in the ledger (wsgi_ledger.h), for wsgi_daemon.c.
 *
 * Apache's main loop hands other-child callbacks APR's decoded exit code (the exit status, or the number
 * of the signal that ended the process) without saying which; the parent's SIGCHLD handler noted which
 * in the ledger before the main loop reaped it (wsgi_ledger.c). ap_reclaim_child_processes hands a raw
 * wait status.
 */
#include "wsgi_daemon.h"

#include <string.h>
#include <sys/wait.h>

wsgi_end wsgi_end_of(wsgi_supervisor *sup, wsgi_daemon *d, int status)
{
    wsgi_end e = { -1, 0, 0, status };
    int code, st;

    if (wsgi_ledger_exit_of(sup->ledger, (int32_t)d->proc.pid, &code, &st)) {
        if (code == CLD_EXITED)
            e.exit_status = st;
        else {
            e.sig = st;
            e.core = code == CLD_DUMPED;
        }
    }
    else if (status > 255) {
        if (WIFEXITED(status))
            e.exit_status = WEXITSTATUS(status);
        else if (WIFSIGNALED(status))
            e.sig = WTERMSIG(status);
    }
    return e;
}

const char *wsgi_end_describe(apr_pool_t *p, const wsgi_end *e)
{
    return wsgi_ledger_describe(p, e->exit_status, e->sig, e->core, e->code);
}

uint64_t wsgi_end_record(wsgi_supervisor *sup, wsgi_daemon *d, const wsgi_end *e, uint32_t reason, uint32_t new_pid)
{
    unsigned char *slot = wsgi_slot(d->pool->seg, d->slot);
    wsgi_ledger_event ev;

    if (!sup->ledger) {
        wsgi_slot_set_u32(slot, WSGI_SLOT_STATE, WSGI_STATE_FREE);
        wsgi_slot_set_u32(slot, WSGI_SLOT_PID, 0);
        return 0;
    }
    memset(&ev, 0, sizeof(ev));
    ev.time_us = (uint64_t)apr_time_now();
    ev.slot = d->slot;
    ev.index = (uint32_t)d->index;
    ev.generation = (uint32_t)d->generation;
    ev.old_pid = (uint32_t)d->proc.pid;
    ev.new_pid = new_pid;
    ev.reason = reason;
    ev.exit_status = e->exit_status;
    ev.signal = e->sig;
    ev.core = (uint32_t)e->core;
    return wsgi_ledger_record(sup->ledger, d->pool->name, slot, &ev);
}
