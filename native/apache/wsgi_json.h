/*
 * A small JSON writer for MOD_WSGI_DAEMON_CONFIG and the status page (wsgi_json.c). It writes into a growing buffer from a
 * pool; strings are escaped as JSON requires (quote, backslash, control characters), other bytes are
 * passed through (configuration text is UTF-8).
 */
#ifndef WSGI_JSON_H
#define WSGI_JSON_H

#include "apr_pools.h"

typedef struct {
    apr_pool_t *pool;
    char *buf;
    apr_size_t len;
    apr_size_t cap;
    int need_comma;             /* a value was written at this nesting level */
} wsgi_json;

void wsgi_json_init(wsgi_json *j, apr_pool_t *p);

/* Containers: object_open/array_open start a value; key() names the next value inside an object. */
void wsgi_json_object_open(wsgi_json *j);
void wsgi_json_object_close(wsgi_json *j);
void wsgi_json_array_open(wsgi_json *j);
void wsgi_json_array_close(wsgi_json *j);
void wsgi_json_key(wsgi_json *j, const char *key);

/* Values; a NULL string is written as null. */
void wsgi_json_string(wsgi_json *j, const char *s);
void wsgi_json_int(wsgi_json *j, apr_int64_t v);
void wsgi_json_number(wsgi_json *j, double v);      /* integers without a fraction; not finite: null */
void wsgi_json_bool(wsgi_json *j, int v);
void wsgi_json_null(wsgi_json *j);

/* A member of the open object: its key, then the value. */
void wsgi_json_int_member(wsgi_json *j, const char *key, apr_int64_t v);
void wsgi_json_string_member(wsgi_json *j, const char *key, const char *s);

/* The text written so far, NUL-terminated. */
const char *wsgi_json_text(wsgi_json *j);

#endif /* WSGI_JSON_H */
