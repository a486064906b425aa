/*
 * Apache's graceful stop (SIGWINCH: `apachectl -k graceful-stop`, `docker stop` of the official httpd
 * image, whose STOPSIGNAL it is), seen from the Apache parent.
 *
 * On a graceful stop the parent closes its listeners, tells its children to finish what they are doing
 * and waits until they are gone (for ever, or GracefulShutdownTimeout); only then, as on any stop, are
 * the daemons told to stop (SIGTERM). Requests the children are still forwarding are served in the
 * meantime, but nothing bounds them but Apache's own timeouts. So as the stop begins the daemons are told
 * (the APACHE_STOPPING flag on their board slots, which they watch) that Apache is stopping: each goes on serving, idle or not, until the SIGTERM that follows
 * its children's end, for at most its group's graceful-timeout when one is set; then its normal
 * shutdown (shutdown-timeout) answers what still runs with 503, the children finish and Apache exits.
 *
 * No hook runs in the parent while a graceful stop waits for its children, but the first thing the
 * parent does is log "caught SIGWINCH, shutting down gracefully", a notice (logged whatever LogLevel
 * says): the error_log hook is the cue, and the MPM's own state says whether a graceful stop is under
 * way (not a restart, not an ungraceful stop).
 */
#include "wsgi_daemon.h"

#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_main.h"
#include "ap_mpm.h"
#include "unixd.h"

#include <unistd.h>

static pid_t parent_pid;        /* the process that ran post_config: Apache's parent */
static int noticed;             /* this graceful stop has been handled */

static int graceful_stop_under_way(void)
{
    ap_unixd_mpm_retained_data *mpm;

    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_RUN_MPM)
        return 0;
    mpm = ap_unixd_mpm_get_retained_data();
    return mpm && mpm->mpm_state == AP_MPMQ_STOPPING && !mpm->restart_pending &&
           !mpm->is_ungraceful;
}

static void error_log_hook(const ap_errorlog_info *info, const char *errstr)
{
    /* Every line of every process passes here: the cheap tests first. Children inherit parent_pid. */
    if (noticed || parent_pid != getpid() || !graceful_stop_under_way())
        return;
    noticed = 1;        /* before anything that logs: this hook sees those lines too */
    wsgi_daemons_apache_stopping(ap_server_conf);
}

static int post_config_hook(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    parent_pid = getpid();
    noticed = 0;
    return OK;
}

void wsgi_stop_register_hooks(apr_pool_t *p)
{
    ap_hook_post_config(post_config_hook, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_error_log(error_log_hook, NULL, NULL, APR_HOOK_MIDDLE);
}
