{
  # The CPython addon: build/Release/wsgi_bridge.node, loaded only by src/native/index.ts.
  # Debian's CPython is embedded (PYTHON_CONFIG, default /usr/bin/python3.11-config), never the
  # python3 first on PATH. scripts/build.sh runs node-gyp with --nodedir so nothing is downloaded.
  'variables': {
    'python_config%': '<!(echo ${PYTHON_CONFIG:-/usr/bin/python3.11-config})',
  },
  'targets': [
    {
      'target_name': 'wsgi_bridge',
      'sources': [
        'native/addon/addon.cc',
        'native/addon/bridge.cc',
        'native/addon/options.cc',
        'native/addon/process_control.cc',
        'native/addon/py/auth.cc',
        'native/addon/py/environ.cc',
        'native/addon/py/file_wrapper.cc',
        'native/addon/py/input.cc',
        'native/addon/py/interp.cc',
        'native/addon/py/log.cc',
        'native/addon/py/log_handler.cc',
        'native/addon/py/log_object.cc',
        'native/addon/py/metrics.cc',
        'native/addon/py/module.cc',
        'native/addon/py/pool.cc',
        'native/addon/py/request.cc',
        'native/addon/py/response.cc',
        'native/addon/py/runtime.cc',
        'native/addon/py/script.cc',
        'native/addon/py/ssl_vars.cc',
        'native/addon/py/wsgi_call.cc',
      ],
      'dependencies': [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except",
      ],
      'include_dirs': [
        'native/common',
      ],
      'defines': [
        'NODE_ADDON_API_DISABLE_DEPRECATED',
      ],
      'cflags': [
        '<!@(<(python_config) --includes)',
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
        '<!@(<(python_config) --embed --ldflags)',
      ],
      'libraries': [
        '<!@(<(python_config) --embed --libs)',
      ],
    },
  ],
}
