// python_preload.node: makes one particular libpython global in this process before the CPython addon
// (wsgi_bridge.node) is loaded. The addon of a CPython version needs "libpython3.N.so.1.0"; the dynamic
// linker binds that need to an already loaded library of the same soname, so loading the libpython of
// the process group's Python first (by its full path) makes the addon use that installation's library,
// whichever installation of 3.N the addon was compiled against. RTLD_GLOBAL also lets the C extension
// modules Python loads later (_json, _ssl, _ctypes...) find libpython's symbols, which Node's
// RTLD_LOCAL loading of addons would hide (../shared/reference/embedding-notes.md).
// Node-API only, no Python.h: the same binary serves every Python version. Loaded only by
// src/native/index.ts.
#include <dlfcn.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>

// loadGlobal(path: string): void. Throws Error with dlerror()'s text when the library cannot be loaded.
static napi_value load_global(napi_env env, napi_callback_info info) {
    size_t argc = 1;
    napi_value argv[1];
    size_t len = 0;
    char *path;
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
        napi_get_value_string_utf8(env, argv[0], NULL, 0, &len) != napi_ok) {
        napi_throw_type_error(env, NULL, "loadGlobal(path): path must be a string");
        return NULL;
    }
    path = malloc(len + 1);
    if (!path) {
        napi_throw_error(env, NULL, "loadGlobal: out of memory");
        return NULL;
    }
    napi_get_value_string_utf8(env, argv[0], path, len + 1, &len);
    // Never closed: libpython stays loaded and global for the life of the process.
    if (strlen(path) != len || !dlopen(path, RTLD_NOW | RTLD_GLOBAL)) {
        const char *e = strlen(path) != len ? "path contains a NUL character" : dlerror();
        napi_throw_error(env, NULL, e ? e : "dlopen failed");
    }
    free(path);
    return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
    napi_value fn;
    if (napi_create_function(env, "loadGlobal", NAPI_AUTO_LENGTH, load_global, NULL, &fn) == napi_ok)
        napi_set_named_property(env, exports, "loadGlobal", fn);
    return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
