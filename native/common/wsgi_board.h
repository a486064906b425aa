/*
 * The board: shared memory through which the Apache parent, the daemons of a process group and Apache's
 * children see each other (docs/board.md). One segment per process group and configuration generation,
 * created by the Apache parent in post_config (a memfd, mapped before Apache's children are forked, so
 * that every child can read it) and passed to each daemon of the group as fd 4.
 *
 *   segment = header (WSGI_BOARD_HEADER_SIZE bytes) + slot_count slots of WSGI_BOARD_SLOT_SIZE bytes
 *
 * A slot belongs to one daemon process at a time. Each field is written by one side only (P: the Apache
 * parent, D: the daemon in the slot); readers take what they find (32-bit fields are written whole, the
 * 64-bit counters by the one writer: a reader may see a counter a moment old). Nothing a daemon writes
 * is trusted for anything but its own group: a group's daemons can only mislead about that group.
 *
 * All integers are little-endian host order (the segment never leaves the machine), at their natural
 * alignment. src/protocol/board-layout.ts mirrors this file; test/unit/wire-agreement.test.ts checks both.
 */
#ifndef WSGI_BOARD_H
#define WSGI_BOARD_H

#include <stdint.h>

#define WSGI_BOARD_MAGIC            0x42475357u     /* "WSGB" */
#define WSGI_BOARD_VERSION          1
#define WSGI_BOARD_HEADER_SIZE      256
#define WSGI_BOARD_SLOT_SIZE        4096

/* Header */
#define WSGI_BOARD_H_MAGIC          0       /* u32 */
#define WSGI_BOARD_H_VERSION        4       /* u32 */
#define WSGI_BOARD_H_SLOTS          8       /* u32: slot count */
#define WSGI_BOARD_H_SLOT_SIZE      12      /* u32 */
#define WSGI_BOARD_H_PROCESSES      16      /* u32: the group's processes= */
#define WSGI_BOARD_H_THREADS        20      /* u32: the group's threads= */
#define WSGI_BOARD_H_GENERATION     24      /* u32: Apache's configuration generation */
#define WSGI_BOARD_H_NAME           64      /* the group's name, NUL-terminated, at most 127 bytes */
#define WSGI_BOARD_NAME_MAX         128

/* Slot: the stable part (states, the hand-over between a process and its successor) */
#define WSGI_SLOT_STATE             0       /* u32 P: FREE, STARTING; D: READY, DRAINING, STOPPING */
#define WSGI_SLOT_PID               4       /* u32 P */
#define WSGI_SLOT_INDEX             8       /* u32 P: which of the group's processes (1..processes) */
#define WSGI_SLOT_FLAGS             12      /* u32 P and D, each its own bits (WSGI_SLOT_F_*) */
#define WSGI_SLOT_REASON            16      /* u32 D: why it wants a successor, or is stopping (WSGI_REASON_*) */
#define WSGI_SLOT_SUCCESSOR         20      /* u32 P: slot number + 1 of its successor, 0 for none */
#define WSGI_SLOT_SUCCESSOR_PID     24      /* u32 P */
#define WSGI_SLOT_PREDECESSOR       28      /* u32 P: slot number + 1 of the process it replaces, 0 for none */
#define WSGI_SLOT_STARTED_US        32      /* u64 P: spawned, microseconds since the epoch */
#define WSGI_SLOT_READY_US          40      /* u64 D: ready to serve */
#define WSGI_SLOT_HEARTBEAT_US      48      /* u64 D: last update of the counters below */
#define WSGI_SLOT_GENERATION        56      /* u32 P */

/* Slot: what the daemon reports (D), for status and metrics */
#define WSGI_SLOT_REQUESTS          64      /* u64 requests completed */
#define WSGI_SLOT_ACTIVE            72      /* u32 requests in progress */
#define WSGI_SLOT_THREADS_BUSY      76      /* u32 threads running a request */
#define WSGI_SLOT_QUEUED            80      /* u32 requests waiting for a thread */
#define WSGI_SLOT_WEBSOCKETS        84      /* u32 open WebSocket connections */
#define WSGI_SLOT_RSS               88      /* u64 resident set, bytes */
#define WSGI_SLOT_CPU_US            96      /* u64 user + system CPU, microseconds */
#define WSGI_SLOT_STATS             128     /* 384 bytes of request statistics (below) */
#define WSGI_SLOT_STATS_SIZE        384

/* Slot: request statistics (D), written as each request ends, for status and metrics. Every field is an
 * f64 (an IEEE double, written whole: one aligned 8-byte store): the daemon's JavaScript writes doubles
 * cheaply, and counts stay exact below 2^53. A reader treats a value that is not finite or is negative as
 * 0 (a daemon can only mislead about its own group). Requests answered by the daemon count here: those
 * its application answered and those it answered itself (queue-timeout, a forced stop); not those sent
 * back with GOAWAY (another process serves them), nor access/authentication hooks.
 *   STATUS       6 counters: requests answered 1xx, 2xx, 3xx, 4xx, 5xx, and other (600-999)
 *   DURATION     WSGI_BOARD_BUCKETS counters, then the sum in seconds: how long requests took, from when
 *                Apache read the request line (request_start) to the end of the response in the daemon
 *   QUEUE_WAIT   the same for the wait before an application thread took the request (from
 *                request_start; for a request that timed out in the queue, its whole wait)
 * A histogram's counters are per bucket (not cumulative): a request adds 1 to the first bucket whose
 * bound (wsgi_board_bounds) is >= its time, the last bucket being +Inf; its count is their sum. */
#define WSGI_SLOT_STATUS            128     /* f64 x WSGI_BOARD_STATUS_CLASSES */
#define WSGI_BOARD_STATUS_CLASSES   6
#define WSGI_SLOT_DURATION          176     /* f64 x WSGI_BOARD_BUCKETS */
#define WSGI_SLOT_DURATION_SUM      304     /* f64 seconds */
#define WSGI_SLOT_QUEUE_WAIT        312     /* f64 x WSGI_BOARD_BUCKETS */
#define WSGI_SLOT_QUEUE_WAIT_SUM    440     /* f64 seconds */
#define WSGI_BOARD_BUCKETS          16

/* Slot: the scripts the process has loaded (D, written when it asks for a successor, which imports
 * them before it is ready): u32 count, then count x (string script, string application group), each
 * string a u32 length and its bytes. */
#define WSGI_SLOT_SCRIPTS           512
#define WSGI_SLOT_SCRIPTS_SIZE      (WSGI_BOARD_SLOT_SIZE - WSGI_SLOT_SCRIPTS)

/* States */
#define WSGI_STATE_FREE             0
#define WSGI_STATE_STARTING         1       /* spawned, not yet serving */
#define WSGI_STATE_READY            2       /* accepting requests */
#define WSGI_STATE_DRAINING         3       /* no longer accepting; finishing what runs */
#define WSGI_STATE_STOPPING         4       /* ending Python, exiting */

/* Flags */
#define WSGI_SLOT_F_WANT_SUCCESSOR  0x01u   /* D: start my successor; I serve until it is ready */
#define WSGI_SLOT_F_SUCCESSOR_FAILED 0x100u /* P: the successor died before it was ready */
#define WSGI_SLOT_F_DRAIN           0x200u  /* P: stop now (a newer generation of the group is ready) */
#define WSGI_SLOT_F_APACHE_STOPPING 0x400u  /* P: Apache's graceful stop began: serve on until told to stop */
#define WSGI_SLOT_F_REPLACE         0x800u  /* P: Apache restarted gracefully: ask for a successor */

/* Reasons: why a process wants a successor or stops, the same words everywhere (log lines, status,
 * history, metric labels): wsgi_reason_name(). */
#define WSGI_REASON_NONE                0
#define WSGI_REASON_MAXIMUM_REQUESTS    1
#define WSGI_REASON_RESTART_INTERVAL    2
#define WSGI_REASON_MEMORY_RECYCLE      3
#define WSGI_REASON_MEMORY_LIMIT        4
#define WSGI_REASON_CPU_TIME_LIMIT      5
#define WSGI_REASON_REQUEST_TIMEOUT     6
#define WSGI_REASON_DEADLOCK_TIMEOUT    7
#define WSGI_REASON_INACTIVITY_TIMEOUT  8
#define WSGI_REASON_STARTUP_TIMEOUT     9
#define WSGI_REASON_SCRIPT_RELOAD       10
#define WSGI_REASON_SIGNAL              11      /* SIGUSR1 sent to the daemon */
#define WSGI_REASON_GRACEFUL_RESTART    12      /* apachectl graceful, the group's configuration changed */
#define WSGI_REASON_CRASH               13
#define WSGI_REASON_STARTUP_FAILURE     14
#define WSGI_REASON_STOP                15      /* Apache stops, SIGTERM */
#define WSGI_REASON_INTERNAL_ERROR      16
#define WSGI_REASON_COUNT               17

/* The upper bounds of the histogram buckets, in seconds; the last bucket (+Inf) has none. The same in
 * board-layout.ts (BUCKET_BOUNDS). */
static const double wsgi_board_bounds[WSGI_BOARD_BUCKETS - 1] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60
};

static inline const char *wsgi_reason_name(uint32_t reason)
{
    static const char *const names[WSGI_REASON_COUNT] = {
        "none", "maximum-requests", "restart-interval", "memory-recycle", "memory-limit",
        "cpu-time-limit", "request-timeout", "deadlock-timeout", "inactivity-timeout",
        "startup-timeout", "script-reload", "signal", "graceful-restart", "crash",
        "startup-failure", "stop", "internal-error"
    };
    return reason < WSGI_REASON_COUNT ? names[reason] : "unknown";
}

#endif /* WSGI_BOARD_H */
