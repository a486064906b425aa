/*
 * The request side of forwarding: the REQUEST frame (CGI variables as mod_wsgi computes them, plus the
 * mod_wsgi.* control variables of docs/protocol.md) and the request body as BODY frames.
 *
 * The whole REQUEST frame is built in one buffer from r->pool and sent with one write; a body of up to
 * WSGI_BUFFERED_BODY bytes is read first and appended (BODY + BODY_END), so a small POST also costs a
 * single write and can be sent again if the daemon answers GOAWAY.
 */
#include "wsgi_forward.h"

#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_ssl.h"
#include "util_filter.h"
#include "util_script.h"
#include "apr_strings.h"

APLOG_USE_MODULE(wsgi);

#include "wsgi_log.h"

#define BODY_READ_SIZE  65536
#define BODY_IOV_MAX    64

/* apache.version in the environ, from the headers built against (as mod_wsgi does). */
#define APACHE_VERSION APR_STRINGIFY(AP_SERVER_MAJORVERSION_NUMBER) "." \
    APR_STRINGIFY(AP_SERVER_MINORVERSION_NUMBER) "." APR_STRINGIFY(AP_SERVER_PATCHLEVEL_NUMBER)

typedef struct {
    const char *name;
    const char *value;
} wsgi_var;

/* Appends one of mod_wsgi's own variables; the array grows as needed (nothing is bounded by hand). */
static void add_var(apr_array_header_t *vars, const char *name, const char *value)
{
    wsgi_var *v = apr_array_push(vars);

    v->name = name;
    v->value = value;
}

/* mod_wsgi collapses repeated slashes in SCRIPT_NAME and PATH_INFO: some applications mishandle them. */
static const char *collapse_slashes(apr_pool_t *p, const char *s)
{
    char *out, *w;

    if (!strstr(s, "//"))
        return s;
    out = w = apr_pstrdup(p, s);
    for (; *s; ++s) {
        if (*s == '/' && s[1] == '/')
            continue;
        *w++ = *s;
    }
    *w = '\0';
    return out;
}

/* What mod_wsgi 4.1.0 takes as HTTPS being set: "On" in any case, or "1". */
static int https_on(const char *v)
{
    return !strcasecmp(v, "on") || !strcmp(v, "1");
}

/* Names never copied from subprocess_env: our own variables, and what mod_wsgi removes (HTTPS, and
 * the PATH that ap_add_common_vars adds from Apache's own environment). */
static int excluded(const char *key)
{
    return !strncasecmp(key, "mod_wsgi.", 9) || !strcasecmp(key, "HTTPS") ||
           !strcasecmp(key, "HTTP_AUTHORIZATION") || !strcmp(key, "PATH") ||
           !strcmp(key, "apache.version");
}

/* An earlier entry of the same name wins, as for apr_table_get(): variables are unique on the wire. */
static int duplicate(const apr_table_entry_t *e, int i)
{
    int j;

    for (j = 0; j < i; ++j) {
        if (e[j].key && e[j].key_checksum == e[i].key_checksum && !strcasecmp(e[j].key, e[i].key))
            return 1;
    }
    return 0;
}

/* Reads a body of known small length completely (before connecting to the daemon). */
static int read_small_body(request_rec *r, apr_size_t length, unsigned char *dst, apr_size_t *got)
{
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    apr_size_t total = 0;
    int eos = 0;

    while (!eos) {
        apr_status_t rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES, APR_BLOCK_READ,
                                         length > total ? length - total : BODY_READ_SIZE);
        apr_bucket *b;

        if (rv != APR_SUCCESS) {
            /* AP_FILTER_ERROR: an input filter already answered (413, 400): not our error. */
            wsgi_rlog(rv == AP_FILTER_ERROR ? APLOG_INFO : APLOG_ERR, rv, r,
                          WSGILOGNO(01210) "Request data read error when reading the request body");
            return ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
        }
        for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb); b = APR_BUCKET_NEXT(b)) {
            const char *data;
            apr_size_t len;
            if (APR_BUCKET_IS_EOS(b)) {
                eos = 1;
                break;
            }
            if (APR_BUCKET_IS_METADATA(b))
                continue;
            rv = apr_bucket_read(b, &data, &len, APR_BLOCK_READ);
            if (rv != APR_SUCCESS || total + len > length) {
                wsgi_rlog(APLOG_ERR, rv, r, WSGILOGNO(01211)
                              "Request body read error or longer than its Content-Length");
                return HTTP_BAD_REQUEST;
            }
            memcpy(dst + total, data, len);
            total += len;
        }
        apr_brigade_cleanup(bb);
    }
    *got = total;
    return OK;
}

int wsgi_request_build(wsgi_req *q)
{
    request_rec *r = q->r;
    conn_rec *c = r->connection;
    apr_table_t *env = r->subprocess_env;
    const apr_array_header_t *arr;
    const apr_table_entry_t *e;
    apr_array_header_t *extra_vars = apr_array_make(r->pool, 16 + WSGI_LEARN_MAX, sizeof(wsgi_var));
    const wsgi_var *extra;
    const char *value, *scheme = "http";
    apr_off_t body_length = 0;
    apr_size_t size, body_got = 0, n;
    unsigned char *p, *body = NULL;
    apr_uint32_t count = 0;
    int i, nextra, status;

    ap_add_common_vars(r);
    if (r->path_info && *r->path_info && wsgi_asgi_known(q)) {
        /* An ASGI application has no use for PATH_TRANSLATED, which costs a sub-request: the CGI
         * variables without it, SCRIPT_NAME and PATH_INFO as ap_add_cgi_vars sets them. */
        const char *path_info = r->path_info;
        r->path_info = NULL;
        ap_add_cgi_vars(r);
        r->path_info = (char *)path_info;
        apr_table_setn(env, "SCRIPT_NAME",
                       apr_pstrndup(r->pool, r->uri, ap_find_path_info(r->uri, path_info)));
        apr_table_setn(env, "PATH_INFO", path_info);
    }
    else {
        ap_add_cgi_vars(r);
    }

    /* As mod_wsgi: HEAD becomes GET when a filter may need the body to compute the headers. */
    if (r->method_number == M_GET && r->header_only &&
        r->output_filters->frec->ftype < AP_FTYPE_PROTOCOL)
        apr_table_setn(env, "REQUEST_METHOD", "GET");

    q->ssl = ap_ssl_conn_is_ssl(r->connection);
    if (q->ssl || ((value = apr_table_get(env, "HTTPS")) != NULL && https_on(value)))
        scheme = "https";

    value = apr_table_get(env, "SCRIPT_NAME");
    if (value && *value)
        apr_table_setn(env, "SCRIPT_NAME", collapse_slashes(r->pool, value));
    value = apr_table_get(env, "PATH_INFO");
    apr_table_setn(env, "PATH_INFO", value ? collapse_slashes(r->pool, value) : "");

    if (q->pass_authorization && (value = apr_table_get(r->headers_in, "Authorization")) != NULL) {
        add_var(extra_vars, "HTTP_AUTHORIZATION", value);
    }
    add_var(extra_vars, "mod_wsgi.process_group", q->process_group);
    add_var(extra_vars, "mod_wsgi.application_group", q->application_group);
    add_var(extra_vars, "mod_wsgi.callable_object", q->callable_object);
    if (q->application_type)
        add_var(extra_vars, "mod_wsgi.application_type", q->application_type);
    add_var(extra_vars, "mod_wsgi.script_reloading", q->script_reloading ? "1" : "0");
    add_var(extra_vars, "mod_wsgi.enable_sendfile", q->enable_sendfile ? "1" : "0");
    add_var(extra_vars, "mod_wsgi.handler_script", q->handler_script ? q->handler_script : "");
    add_var(extra_vars, "mod_wsgi.url_scheme", scheme);
    add_var(extra_vars, "mod_wsgi.request_id", wsgi_request_id(r));
    /* Informational, as mod_wsgi 4.1.0 puts them in the environ. */
    add_var(extra_vars, "mod_wsgi.request_handler", r->handler);
    add_var(extra_vars, "mod_wsgi.listener_host",
            c->local_addr->hostname ? c->local_addr->hostname : "");
    add_var(extra_vars, "mod_wsgi.listener_port", apr_itoa(r->pool, c->local_addr->port));
    /* The handler only lets "chunked" through, and reads bodies without ap_setup_client_block. */
    add_var(extra_vars, "mod_wsgi.input_chunked",
            r->read_chunked || apr_table_get(r->headers_in, "Transfer-Encoding") ? "1" : "0");
    add_var(extra_vars, "mod_wsgi.queue_start",
            apr_psprintf(r->pool, "%" APR_TIME_T_FMT, apr_time_now()));
    add_var(extra_vars, "apache.version", APACHE_VERSION);
    if (q->ssl) {
        /* SSL variables the group's applications asked for before (wsgi_lookup.c). */
        const char *names[WSGI_LEARN_MAX], *values[WSGI_LEARN_MAX];
        int k, np = wsgi_lookup_prefetch(r, q->group, names, values);
        for (k = 0; k < np; ++k) {
            add_var(extra_vars, names[k], values[k]);
        }
    }

    /* The body: none, small (read now, sent with the head), or streamed after the head. */
    if (r->read_chunked || apr_table_get(r->headers_in, "Transfer-Encoding")) {
        q->body_follows = 1;
    }
    else if ((value = apr_table_get(r->headers_in, "Content-Length")) != NULL) {
        char *end;
        if (apr_strtoff(&body_length, value, &end, 10) != APR_SUCCESS || *end || body_length < 0) {
            wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01212)
                          "Invalid Content-Length header value of '%s' was supplied", value);
            return HTTP_BAD_REQUEST;
        }
        if (body_length > WSGI_BUFFERED_BODY)
            q->body_follows = 1;
    }

    /* Sizes first, then one buffer. */
    extra = (const wsgi_var *)extra_vars->elts;
    nextra = extra_vars->nelts;
    arr = apr_table_elts(env);
    e = (const apr_table_entry_t *)arr->elts;
    size = WSGI_WIRE_HEADER_SIZE + WSGI_REQUEST_FIXED_SIZE;
    for (i = 0; i < arr->nelts; ++i) {
        if (!e[i].key || excluded(e[i].key) || duplicate(e, i))
            continue;
        size += 8 + strlen(e[i].key) + (e[i].val ? strlen(e[i].val) : 0);
        ++count;
    }
    for (i = 0; i < nextra; ++i)
        size += 8 + strlen(extra[i].name) + strlen(extra[i].value);
    count += (apr_uint32_t)nextra;
    if (size - WSGI_WIRE_HEADER_SIZE > WSGI_LIMIT_REQUEST) {
        wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01213)
                      "Request variables too large for the daemon (%" APR_SIZE_T_FMT " bytes)", size);
        return HTTP_REQUEST_ENTITY_TOO_LARGE;
    }
    n = size;
    if (!q->body_follows && body_length > 0)
        size += 2 * WSGI_WIRE_HEADER_SIZE + (apr_size_t)body_length;

    q->upgrade = wsgi_tunnel_wanted(r);
    q->head = p = apr_palloc(r->pool, size);
    wsgi_frame_header_pack(p, WSGI_FRAME_REQUEST, 0, (uint32_t)(n - WSGI_WIRE_HEADER_SIZE));
    p += WSGI_WIRE_HEADER_SIZE;
    wsgi_put_u32(p, (q->body_follows || body_length > 0 ? WSGI_REQUEST_BODY_FOLLOWS : 0) |
                    (q->body_follows ? WSGI_REQUEST_STREAMED : 0) |
                    (q->ssl ? WSGI_REQUEST_SSL : 0) | (q->upgrade ? WSGI_REQUEST_UPGRADE : 0));
    wsgi_put_u64(p + 4, (uint64_t)r->request_time);
    wsgi_put_u32(p + 12, count);
    p += WSGI_REQUEST_FIXED_SIZE;
    for (i = 0; i < arr->nelts; ++i) {
        const char *v;
        if (!e[i].key || excluded(e[i].key) || duplicate(e, i))
            continue;
        v = e[i].val ? e[i].val : "";
        p += wsgi_write_string(p, e[i].key, (uint32_t)strlen(e[i].key));
        p += wsgi_write_string(p, v, (uint32_t)strlen(v));
    }
    for (i = 0; i < nextra; ++i) {
        p += wsgi_write_string(p, extra[i].name, (uint32_t)strlen(extra[i].name));
        p += wsgi_write_string(p, extra[i].value, (uint32_t)strlen(extra[i].value));
    }

    if (!q->body_follows && body_length > 0) {
        body = p + WSGI_WIRE_HEADER_SIZE;
        status = read_small_body(r, (apr_size_t)body_length, body, &body_got);
        if (status != OK)
            return status;
        if (body_got) {
            wsgi_frame_header_pack(p, WSGI_FRAME_BODY, 0, (uint32_t)body_got);
            p = body + body_got;
        }
        wsgi_frame_header_pack(p, WSGI_FRAME_BODY_END, 0, 0);
        p += WSGI_WIRE_HEADER_SIZE;
    }
    q->head_len = (apr_size_t)(p - q->head);
    return OK;
}

static int send_frames(wsgi_req *q, wsgi_conn *c, struct iovec *iov, int n)
{
    /* Over SSL the application may look variables up meanwhile (wsgi_lookup.c). */
    apr_status_t rv = q->ssl ? wsgi_lookup_writev(q, c, iov, n) : wsgi_conn_writev(c, iov, n);

    if (rv == APR_SUCCESS)
        return OK;
    if (APR_STATUS_IS_TIMEUP(rv)) {
        wsgi_rlog(APLOG_ERR, rv, q->r, WSGILOGNO(01214)
                      "Timeout when sending the request body to daemon process '%s'", q->group->name);
        return HTTP_GATEWAY_TIME_OUT;
    }
    /* The daemon stopped reading; it may still have answered (e.g. an early 413). */
    wsgi_rlog(APLOG_INFO, rv, q->r, WSGILOGNO(01215)
                  "Daemon process '%s' stopped reading the request body", q->group->name);
    return DONE;
}

int wsgi_request_stream_body(wsgi_req *q, wsgi_conn *c)
{
    request_rec *r = q->r;
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    unsigned char hdr[WSGI_WIRE_HEADER_SIZE];
    struct iovec iov[BODY_IOV_MAX + 1];
    int eos = 0, status = OK;

    q->body_started = 1;
    while (!eos) {
        apr_status_t rv = q->ssl ? wsgi_lookup_get_body(q, c, bb, BODY_READ_SIZE)
                                 : ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES,
                                                  APR_BLOCK_READ, BODY_READ_SIZE);
        apr_size_t total = 0;
        apr_bucket *b;
        int n = 1;

        if (rv != APR_SUCCESS) {
            wsgi_rlog(rv == AP_FILTER_ERROR ? APLOG_INFO : APLOG_ERR, rv, r,
                          WSGILOGNO(01216) "Request data read error when proxying data to daemon "
                          "process '%s'", q->group->name);
            return ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
        }
        for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb); b = APR_BUCKET_NEXT(b)) {
            const char *data;
            apr_size_t len;
            if (APR_BUCKET_IS_EOS(b)) {
                eos = 1;
                break;
            }
            if (APR_BUCKET_IS_METADATA(b))
                continue;
            if ((rv = apr_bucket_read(b, &data, &len, APR_BLOCK_READ)) != APR_SUCCESS) {
                wsgi_rlog(APLOG_ERR, rv, r, WSGILOGNO(01217)
                              "Request data read error when proxying data to daemon process '%s'",
                              q->group->name);
                return HTTP_BAD_REQUEST;
            }
            if (!len)
                continue;
            if (n > BODY_IOV_MAX) {
                /* More buckets than iovecs: send what is gathered as one frame. */
                wsgi_frame_header_pack(hdr, WSGI_FRAME_BODY, 0, (uint32_t)total);
                iov[0].iov_base = hdr;
                iov[0].iov_len = sizeof(hdr);
                if (status == OK)
                    status = send_frames(q, c, iov, n);
                n = 1;
                total = 0;
            }
            iov[n].iov_base = (void *)data;
            iov[n++].iov_len = len;
            total += len;
        }
        if (total && status == OK) {
            wsgi_frame_header_pack(hdr, WSGI_FRAME_BODY, 0, (uint32_t)total);
            iov[0].iov_base = hdr;
            iov[0].iov_len = sizeof(hdr);
            status = send_frames(q, c, iov, n);
        }
        apr_brigade_cleanup(bb);
        if (status == HTTP_GATEWAY_TIME_OUT)
            return status;
    }
    if (status == OK) {
        wsgi_frame_header_pack(hdr, WSGI_FRAME_BODY_END, 0, 0);
        iov[0].iov_base = hdr;
        iov[0].iov_len = sizeof(hdr);
        status = send_frames(q, c, iov, 1);
    }
    /* DONE (daemon stopped reading): the whole client body was still consumed; read the answer. */
    return status == DONE ? OK : status;
}
