/*
 * What the Apache child knows of ASGI applications (docs/asgi.md): the daemon marks the HEAD frames of
 * ASGI responses (WSGI_HEAD_ASGI), and the child remembers, per process group, which scripts answered
 * so (a hash of script, callable and application group), to leave out for their later requests what
 * only a WSGI environ uses: PATH_TRANSLATED, which costs Apache a sub-request (a URL-to-file mapping)
 * per request with path info. An alias with application-type=asgi needs no learning; a HEAD frame
 * without the mark (the script became WSGI) unlearns it.
 */
#include "wsgi_forward.h"

#include "apr_thread_mutex.h"

static apr_uint64_t key_of(const wsgi_req *q)
{
    /* FNV-1a over script, callable and application group, NUL-separated. */
    const char *parts[3];
    apr_uint64_t h = APR_UINT64_C(14695981039346656037);
    int i;

    parts[0] = q->handler_script ? q->handler_script : q->r->filename;
    parts[1] = q->callable_object ? q->callable_object : "application";
    parts[2] = q->application_group ? q->application_group : "";
    for (i = 0; i < 3; ++i) {
        const unsigned char *p = (const unsigned char *)(parts[i] ? parts[i] : "");
        do {
            h ^= *p;
            h *= APR_UINT64_C(1099511628211);
        } while (*p++);
    }
    return h;
}

int wsgi_asgi_known(const wsgi_req *q)
{
    wsgi_conn_pool *pool = q->group->rt->conns;
    apr_uint64_t key;
    int i, found = 0;

    if (q->application_type)
        return !strcmp(q->application_type, "asgi");
    if (!pool || !pool->nasgi)
        return 0;
    key = key_of(q);
    apr_thread_mutex_lock(pool->mutex);
    for (i = 0; i < pool->nasgi && !found; ++i)
        found = pool->asgi[i] == key;
    apr_thread_mutex_unlock(pool->mutex);
    return found;
}

void wsgi_asgi_note(const wsgi_req *q, int asgi)
{
    wsgi_conn_pool *pool = q->group->rt->conns;
    apr_uint64_t key;
    int i;

    if (!pool || q->application_type || (!asgi && !pool->nasgi))
        return;
    key = key_of(q);
    apr_thread_mutex_lock(pool->mutex);
    for (i = 0; i < pool->nasgi && pool->asgi[i] != key; ++i)
        ;
    if (asgi && i == pool->nasgi) {
        /* A full table keeps its first entries: WSGI_ASGI_MAX applications per group is plenty. */
        if (pool->nasgi < WSGI_ASGI_MAX)
            pool->asgi[pool->nasgi++] = key;
    }
    else if (!asgi && i < pool->nasgi) {
        pool->asgi[i] = pool->asgi[--pool->nasgi];
    }
    apr_thread_mutex_unlock(pool->mutex);
}
