/*
 * libFuzzer harness for the Apache module's decoder of what a daemon sends (docs/protocol.md): the
 * response relay (wsgi_response.c: HEAD, BODY, FILE, END, ERROR, GOAWAY, VAR_LOOKUP answered by
 * wsgi_lookup.c) and the hook exchange (wsgi_auth_call.c: AUTH_RESULT, ERROR, GOAWAY, VAR_LOOKUP),
 * over the module's own connection code (wsgi_conn.c). The module's sources are compiled unchanged;
 * what they need from Apache's binary is stubbed below (the functions they call from APR are real).
 *
 * Input: byte 0 chooses the path and the client's behaviour, byte 1 header-buffer-size; the rest is
 * the daemon's byte stream, written into one end of a socketpair (closed after, so the relay sees end
 * of stream) with, on request, a file descriptor attached to its first byte as a FILE frame's would be.
 * AddressSanitizer and UBSan watch every access; ap_pass_brigade reads every bucket passed down.
 *
 * Built by test/fuzz/c-decoder.test.ts with clang -fsanitize=fuzzer,address,undefined; a standalone
 * main (-DRELAY_FUZZ_STANDALONE) replays files given on the command line.
 */
#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_ssl.h"
#include "ap_mpm.h"
#include "apr_buckets.h"
#include "apr_strings.h"
#include "util_filter.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "wsgi_forward.h"
#include "wsgi_auth.h"

/* The hook exchange is static in its file: take the file whole. */
#include "wsgi_auth_call.c"

module AP_MODULE_DECLARE_DATA wsgi_module;

/* ---------------------------------------------------------------------------------------------- */
/* What the module needs from Apache's binary                                                     */

static int client_fails;        /* ap_pass_brigade reports the client gone */
static unsigned long sink;      /* bytes read from buckets, so that the reads cannot be elided */

AP_DECLARE(void) ap_log_rerror_(const char *file, int line, int module_index, int level,
                                apr_status_t status, const request_rec *r, const char *fmt, ...)
{
    char buf[8192];
    va_list ap;

    /* Formatting touches every argument: a bad pointer or length shows here. */
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    sink += strlen(buf);
    if (getenv("RELAY_FUZZ_LOG"))
        fprintf(stderr, "log: %s\n", buf);
}

AP_DECLARE(apr_status_t) ap_pass_brigade(ap_filter_t *next, apr_bucket_brigade *bb)
{
    apr_bucket *b;

    for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb); b = APR_BUCKET_NEXT(b)) {
        const char *data;
        apr_size_t len, i;

        if (APR_BUCKET_IS_METADATA(b))
            continue;
        /* File buckets of a daemon's descriptor: read at most a little of them. */
        if (APR_BUCKET_IS_FILE(b) && b->length > 4096)
            apr_bucket_split(b, 4096);
        if (apr_bucket_read(b, &data, &len, APR_BLOCK_READ) != APR_SUCCESS)
            continue;
        for (i = 0; i < len; ++i)
            sink += (unsigned char)data[i];
    }
    return client_fails ? APR_ECONNABORTED : APR_SUCCESS;
}

AP_DECLARE(apr_bucket *) ap_bucket_error_create(int error, const char *buf, apr_pool_t *p,
                                               apr_bucket_alloc_t *list)
{
    return apr_bucket_immortal_create("", 0, list);
}

AP_DECLARE(void) ap_set_content_type(request_rec *r, const char *ct)
{
    r->content_type = ct;
}

AP_DECLARE(void) ap_content_type_tolower(char *s)
{
    for (; *s && *s != ';'; ++s)
        *s = (char)apr_tolower(*s);
}

AP_DECLARE(void) ap_update_mtime(request_rec *r, apr_time_t dependency_mtime)
{
    if (dependency_mtime > r->mtime)
        r->mtime = dependency_mtime;
}

AP_DECLARE(void) ap_set_last_modified(request_rec *r)
{
}

AP_DECLARE(void) ap_internal_redirect_handler(const char *new_uri, request_rec *r)
{
    sink += strlen(new_uri);
}

AP_DECLARE(const char *) ap_ssl_var_lookup(apr_pool_t *p, server_rec *s, conn_rec *c, request_rec *r,
                                          const char *name)
{
    /* Some set, some not, one long. */
    if (name[0] == 'L')
        return apr_psprintf(p, "%0*d", 20000, 7);
    return (strlen(name) & 1) ? apr_pstrcat(p, "value-of-", name, NULL) : NULL;
}

AP_DECLARE(int) ap_ssl_conn_is_ssl(conn_rec *c)
{
    return 1;
}

AP_DECLARE(apr_status_t) ap_get_brigade(ap_filter_t *f, apr_bucket_brigade *bb, ap_input_mode_t mode,
                                       apr_read_type_e block, apr_off_t readbytes)
{
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(bb->bucket_alloc));
    return APR_SUCCESS;
}

AP_DECLARE(apr_status_t) ap_mpm_query(int query_code, int *result)
{
    *result = 1;
    return APR_SUCCESS;
}

/* The relay watches the client's socket while it waits for the daemon when there is one; here none. */
AP_DECLARE(apr_socket_t *) ap_get_conn_socket(conn_rec *c) { return NULL; }
/* The request id every log line about a request carries (wsgi_forward.c), and what the Apache parent
 * recorded of a daemon that died mid-request (wsgi_died.c: none here). */
const char *wsgi_request_id(const request_rec *r) { return "fuzz"; }
const char *wsgi_daemon_death(wsgi_req *q) { return NULL; }

/* Not reached by the fuzzed paths; defined so that the module's files link. */
#define UNREACHED(what) do { fprintf(stderr, "relay_fuzz: %s reached\n", what); abort(); } while (0)
AP_DECLARE(const char *) ap_document_root(request_rec *r) { UNREACHED("ap_document_root"); }
AP_DECLARE(char *) ap_escape_html2(apr_pool_t *p, const char *s, int toasc) { UNREACHED("ap_escape_html2"); }
AP_DECLARE(module *) ap_find_linked_module(const char *name) { UNREACHED("ap_find_linked_module"); }
AP_DECLARE(int) ap_find_path_info(const char *uri, const char *path_info) { UNREACHED("ap_find_path_info"); }
AP_DECLARE(const char *) ap_get_remote_host(conn_rec *conn, void *dir_config, int type, int *str_is_ip)
{
    UNREACHED("ap_get_remote_host");
}
AP_DECLARE(const char *) ap_get_server_banner(void) { UNREACHED("ap_get_server_banner"); }
AP_DECLARE(const char *) ap_get_server_name(request_rec *r) { UNREACHED("ap_get_server_name"); }
AP_DECLARE(apr_port_t) ap_get_server_port(const request_rec *r) { UNREACHED("ap_get_server_port"); }
AP_DECLARE(const char *) ap_psignature(const char *prefix, request_rec *r) { UNREACHED("ap_psignature"); }
const char *wsgi_expand_group(request_rec *r, const char *s, int dflt_resource) { UNREACHED("wsgi_expand_group"); }
const char *wsgi_request_process_group(request_rec *r) { UNREACHED("wsgi_request_process_group"); }
wsgi_group *wsgi_group_find(const wsgi_state *st, const char *name) { UNREACHED("wsgi_group_find"); }
int wsgi_group_visible(const wsgi_group *g, const server_rec *s) { UNREACHED("wsgi_group_visible"); }
wsgi_state *wsgi_state_get(apr_pool_t *pconf) { UNREACHED("wsgi_state_get"); }
/* The requests here are never WebSocket upgrades (q->upgrade is 0): a HEAD that would switch to a
 * tunnel is refused as malformed before wsgi_tunnel.c could be reached. */
int wsgi_tunnel_run(wsgi_req *q, wsgi_conn *c) { UNREACHED("wsgi_tunnel_run"); }

/* ---------------------------------------------------------------------------------------------- */
/* One input                                                                                      */

static apr_pool_t *root;
static apr_bucket_alloc_t *balloc;
static int devnull = -1;

static void init_once(void)
{
    if (root)
        return;
    apr_initialize();
    apr_pool_create(&root, NULL);
    balloc = apr_bucket_alloc_create(root);
    devnull = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
    if (devnull < 0)
        devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Writes the daemon's bytes (as much as fits: the relay does not read while we write), with a
 * descriptor on the first byte when asked. Returns the socket the module reads, or -1. */
static int daemon_stream(const uint8_t *data, size_t size, int with_fd)
{
    int sv[2], sndbuf = 4 << 20;
    struct timeval tv = { 1, 0 };

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf));
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUFFORCE, &sndbuf, sizeof(sndbuf));
    /* The module's own writes (VAR_VALUE) and reads are bounded, as socket-timeout bounds them. */
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    if (size && with_fd) {
        union {
            struct cmsghdr align;
            char buf[CMSG_SPACE(sizeof(int))];
        } control;
        struct iovec iov = { (void *)data, 1 };
        struct msghdr mh;
        struct cmsghdr *cm;

        memset(&mh, 0, sizeof(mh));
        memset(&control, 0, sizeof(control));
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = control.buf;
        mh.msg_controllen = sizeof(control.buf);
        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &devnull, sizeof(int));
        if (sendmsg(sv[1], &mh, MSG_NOSIGNAL) == 1) {
            data++;
            size--;
        }
    }
    while (size) {
        ssize_t n = send(sv[1], data, size, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        data += n;
        size -= (size_t)n;
    }
    close(sv[1]);
    return sv[0];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int hbs[4] = { 8192, 32768, 65536, 131072 };
    apr_pool_t *p;
    request_rec *r;
    conn_rec *cc;
    server_rec *s;
    wsgi_group *g;
    wsgi_conn_pool *pool;
    wsgi_conn *c;
    wsgi_req *q;
    int fd, mode, retry = 0;

    if (size < 2)
        return 0;
    init_once();
    mode = data[0];
    apr_pool_create(&p, root);

    s = apr_pcalloc(p, sizeof(*s));
    s->timeout = apr_time_from_sec(1);
    cc = apr_pcalloc(p, sizeof(*cc));
    cc->pool = p;
    cc->bucket_alloc = balloc;
    cc->base_server = s;
    r = apr_pcalloc(p, sizeof(*r));
    r->pool = p;
    r->connection = cc;
    r->server = s;
    r->filename = "/srv/app.wsgi";
    r->uri = "/app";
    r->method = "GET";
    r->status = HTTP_OK;
    r->headers_in = apr_table_make(p, 4);
    r->headers_out = apr_table_make(p, 4);
    r->err_headers_out = apr_table_make(p, 4);
    r->subprocess_env = apr_table_make(p, 4);
    r->notes = apr_table_make(p, 4);
    r->output_filters = apr_pcalloc(p, sizeof(ap_filter_t));
    r->input_filters = apr_pcalloc(p, sizeof(ap_filter_t));

    g = apr_pcalloc(p, sizeof(*g));
    g->name = "fuzz";
    g->processes = 1;
    g->header_buffer_size = hbs[data[1] & 3];
    g->socket_timeout_us = apr_time_from_sec(1);
    pool = apr_pcalloc(p, sizeof(*pool));
    pool->group = g;
    pool->max_idle = 0;    /* a released connection is closed (and freed) at once */
    apr_thread_mutex_create(&pool->mutex, APR_THREAD_MUTEX_DEFAULT, p);
    g->rt = apr_pcalloc(p, sizeof(*g->rt));
    g->rt->conns = pool;

    fd = daemon_stream(data + 2, size - 2, (mode & 0x10) != 0);
    if (fd < 0) {
        apr_pool_destroy(p);
        return 0;
    }
    c = malloc(sizeof(*c));
    memset(c, 0, offsetof(wsgi_conn, buf));
    c->pool = pool;
    c->fd = fd;
    client_fails = (mode & 0x04) != 0;

    if ((mode & 3) == 2) {
        wsgi_auth_result res;
        res.outcome = WSGI_AUTH_ERROR;
        res.values = apr_array_make(p, 4, sizeof(const char *));
        exchange(r, g, c, "/srv/auth.wsgi", &res);
        wsgi_conn_close(c);
    }
    else {
        q = apr_pcalloc(p, sizeof(*q));
        q->r = r;
        q->group = g;
        q->process_group = "fuzz";
        q->ssl = (mode & 3) == 1;
        q->error_override = (mode & 0x08) != 0;
        q->enable_sendfile = (mode & 0x20) != 0;
        q->body_started = (mode & 0x40) != 0;
        wsgi_response_relay(q, c, &retry);
    }
    apr_pool_destroy(p);
    return 0;
}

#ifdef RELAY_FUZZ_STANDALONE
/* Replays inputs given as files (no libFuzzer): for a crash found elsewhere, or a build without it. */
int main(int argc, char **argv)
{
    int i;

    for (i = 1; i < argc; ++i) {
        FILE *f = fopen(argv[i], "rb");
        static uint8_t buf[1 << 20];
        size_t n;

        if (!f) {
            perror(argv[i]);
            return 2;
        }
        n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
    }
    return 0;
}
#endif
