// A complete MOD_WSGI_DAEMON_CONFIG object as docs/daemon-config.md shows it, for tests to vary.
export interface SampleOverrides {
  group?: string
  server?: Record<string, unknown>
  python?: Record<string, unknown>
  options?: Record<string, unknown>
}

export function sampleConfig(o: SampleOverrides = {}): Record<string, unknown> {
  return {
    format: 1,
    group: o.group ?? 'myapp',
    process_index: 1,
    generation: 0,
    server: {
      hostname: 'localhost',
      server_root: '/etc/apache2',
      apache_user: 'www-data',
      apache_uid: 33,
      apache_gid: 33,
      timeout: 300,
      log_level: 'warn',
      error_log: '/var/log/apache2/error.log',
      ...o.server,
    },
    python: {
      home: null,
      path: [],
      hash_seed: null,
      dont_write_bytecode: false,
      optimize: 0,
      warnings: [],
      restrict_signal: true,
      restrict_stdin: true,
      restrict_stdout: true,
      verbose_debugging: false,
      import_scripts: [],
      ...o.python,
    },
    options: {
      processes: 1,
      multiprocess: false,
      threads: 15,
      user: 'www-data',
      uid: 33,
      group: 'www-data',
      gid: 33,
      supplementary_groups: null,
      umask: null,
      home: null,
      display_name: null,
      lang: null,
      locale: null,
      cpu_priority: 0,
      python_path: [],
      python_home: null,
      python_eggs: null,
      stack_size: 0,
      maximum_requests: 0,
      shutdown_timeout: 5,
      deadlock_timeout: 300,
      inactivity_timeout: 0,
      request_timeout: 0,
      graceful_timeout: 0,
      cpu_time_limit: 0,
      memory_limit: 0,
      virtual_memory_limit: 0,
      listen_backlog: 100,
      send_buffer_size: 0,
      receive_buffer_size: 0,
      connect_timeout: 15,
      socket_timeout: 300,
      queue_timeout: 0,
      header_buffer_size: 32768,
      ...o.options,
    },
  }
}
