{
  # The CPython addon (wsgi_bridge.node) and its libpython preloader (python_preload.node), loaded only
  # by src/native/index.ts. Included by the root binding.gyp (the default build, build/Release: Debian's
  # CPython 3.11) and by build/py3.N/binding.gyp, which scripts/build.sh writes for another CPython.
  # The Python flags come from scripts/build.sh (MOD_WSGI_PY_CFLAGS / _LDFLAGS / _LIBS); without them,
  # from PYTHON_CONFIG (default /usr/bin/python3.11-config), never the python3 first on PATH.
  # scripts/build.sh runs node-gyp with --nodedir so nothing is downloaded.
  'variables': {
    'python_config%': '<!(echo ${PYTHON_CONFIG:-/usr/bin/python3.11-config})',
  },
  'targets': [
    {
      'target_name': 'wsgi_bridge',
      'sources': [
        'addon.cc',
        'bridge.cc',
        'options.cc',
        'process_control.cc',
        'py/asgi_apps.cc',
        'py/asgi_glue.cc',
        'py/asgi_head.cc',
        'py/asgi_http.cc',
        'py/asgi_http_send.cc',
        'py/asgi_hub.cc',
        'py/asgi_loop.cc',
        'py/asgi_scope.cc',
        'py/asgi_websocket.cc',
        'py/asgi_ws_send.cc',
        'py/auth.cc',
        'py/crash_trace.cc',
        'py/environ.cc',
        'py/file_wrapper.cc',
        'py/input.cc',
        'py/interrupt.cc',
        'py/interp.cc',
        'py/log.cc',
        'py/log_handler.cc',
        'py/log_object.cc',
        'py/metrics.cc',
        'py/module.cc',
        'py/pool.cc',
        'py/request.cc',
        'py/response.cc',
        'py/runtime.cc',
        'py/script.cc',
        'py/ssl_vars.cc',
        'py/stacks.cc',
        'py/subinterp.cc',
        'py/watchdog.cc',
        'py/wsgi_call.cc',
      ],
      'dependencies': [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except",
      ],
      'include_dirs': [
        '../common',
      ],
      'defines': [
        'NODE_ADDON_API_DISABLE_DEPRECATED',
      ],
      'cflags': [
        '<!@(echo ${MOD_WSGI_PY_CFLAGS:-$(<(python_config) --includes)})',
        '-Wall',
        '-Wextra',
        '-Wno-unused-parameter',
        '-Wno-missing-field-initializers',
        '-Wno-cast-function-type',
      ],
      'cflags_cc': [
        '-std=gnu++17',
      ],
      'ldflags': [
        '<!@(echo ${MOD_WSGI_PY_LDFLAGS:-$(<(python_config) --embed --ldflags)})',
      ],
      'libraries': [
        '<!@(echo ${MOD_WSGI_PY_LIBS:-$(<(python_config) --embed --libs)})',
      ],
    },
    {
      'target_name': 'python_preload',
      'sources': ['preload/python_preload.c'],
      'cflags': ['-Wall', '-Wextra'],
      'libraries': ['-ldl'],
    },
  ],
}
