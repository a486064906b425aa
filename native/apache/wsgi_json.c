/*
 * JSON writer (see wsgi_json.h). Commas are placed by tracking whether the current nesting level
 * already holds a value: a key or a value at a level that has one is preceded by a comma.
 */
#include "wsgi_json.h"

#include "apr_strings.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void put(wsgi_json *j, const char *s, apr_size_t n)
{
    if (j->len + n + 1 > j->cap) {
        apr_size_t cap = j->cap ? j->cap : 1024;
        char *buf;
        while (j->len + n + 1 > cap)
            cap *= 2;
        buf = apr_palloc(j->pool, cap);
        if (j->len)
            memcpy(buf, j->buf, j->len);
        j->buf = buf;
        j->cap = cap;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = '\0';
}

static void puts_(wsgi_json *j, const char *s)
{
    put(j, s, strlen(s));
}

/* Before any value or key: a comma if this level already has one. */
static void separate(wsgi_json *j)
{
    if (j->need_comma)
        put(j, ",", 1);
    j->need_comma = 1;
}

static void quoted(wsgi_json *j, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    const unsigned char *run = p;

    put(j, "\"", 1);
    for (; *p; ++p) {
        char esc[7];
        const char *rep = NULL;
        if (*p >= 0x20 && *p != '"' && *p != '\\')
            continue;
        put(j, (const char *)run, p - run);
        switch (*p) {
        case '"':  rep = "\\\""; break;
        case '\\': rep = "\\\\"; break;
        case '\n': rep = "\\n"; break;
        case '\r': rep = "\\r"; break;
        case '\t': rep = "\\t"; break;
        default:
            esc[0] = '\\'; esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
            esc[4] = hex[*p >> 4]; esc[5] = hex[*p & 15]; esc[6] = '\0';
            rep = esc;
        }
        puts_(j, rep);
        run = p + 1;
    }
    put(j, (const char *)run, p - run);
    put(j, "\"", 1);
}

void wsgi_json_init(wsgi_json *j, apr_pool_t *p)
{
    memset(j, 0, sizeof(*j));
    j->pool = p;
    put(j, "", 0);
}

void wsgi_json_object_open(wsgi_json *j)
{
    separate(j);
    put(j, "{", 1);
    j->need_comma = 0;
}

void wsgi_json_object_close(wsgi_json *j)
{
    put(j, "}", 1);
    j->need_comma = 1;
}

void wsgi_json_array_open(wsgi_json *j)
{
    separate(j);
    put(j, "[", 1);
    j->need_comma = 0;
}

void wsgi_json_array_close(wsgi_json *j)
{
    put(j, "]", 1);
    j->need_comma = 1;
}

void wsgi_json_key(wsgi_json *j, const char *key)
{
    separate(j);
    quoted(j, key);
    put(j, ":", 1);
    j->need_comma = 0;      /* the value that follows takes no comma */
}

void wsgi_json_int_member(wsgi_json *j, const char *key, apr_int64_t v)
{
    wsgi_json_key(j, key);
    wsgi_json_int(j, v);
}

void wsgi_json_string_member(wsgi_json *j, const char *key, const char *s)
{
    wsgi_json_key(j, key);
    wsgi_json_string(j, s);
}

void wsgi_json_string(wsgi_json *j, const char *s)
{
    if (!s) {
        wsgi_json_null(j);
        return;
    }
    separate(j);
    quoted(j, s);
}

void wsgi_json_int(wsgi_json *j, apr_int64_t v)
{
    char num[32];

    separate(j);
    apr_snprintf(num, sizeof(num), "%" APR_INT64_T_FMT, v);
    puts_(j, num);
}

void wsgi_json_number(wsgi_json *j, double v)
{
    char num[48], *comma;

    if (!isfinite(v)) {
        wsgi_json_null(j);
        return;
    }
    separate(j);
    /* The C library's snprintf (APR's %g leaves out the 0 before the point, which JSON needs); integers
     * without a fraction; a locale's decimal comma becomes a point. */
    if (v > -1e15 && v < 1e15 && v == (double)(long long)v)
        snprintf(num, sizeof(num), "%lld", (long long)v);
    else
        snprintf(num, sizeof(num), "%.15g", v);
    if ((comma = strchr(num, ',')) != NULL)
        *comma = '.';
    puts_(j, num);
}

void wsgi_json_bool(wsgi_json *j, int v)
{
    separate(j);
    puts_(j, v ? "true" : "false");
}

void wsgi_json_null(wsgi_json *j)
{
    separate(j);
    puts_(j, "null");
}

const char *wsgi_json_text(wsgi_json *j)
{
    return j->buf;
}
