"""What a server process measures, in Prometheus' terms (`prometheus-client`).

Each metric is a module-level object, as the library expects: the code that sees something
happen counts it where it happens, with one call (`metrics.COMMITS.inc()`), and the edge
(`api/metrics.py`) exposes them at `/metrics`. Labelled children used on hot paths are bound
here once (`labels()` looks them up under a lock on every call).

Several processes (`backstate serve --workers N`): the library's multiprocess mode. When
`PROMETHEUS_MULTIPROC_DIR` is set before this module is imported (the command line sets it for
its workers, `api/cli.py`), every value lives in a memory-mapped file of its process in that
folder, and a scrape served by any worker adds up every process's files
(`prometheus_client.multiprocess`): counters and histograms are summed (a dead worker's counts
stay in the sums, so totals never go backwards), gauges of processes still alive are summed
(`livesum`; the supervisor removes a dead worker's gauges). Without it, values are plain floats
in this process.

Every name starts with `backstate_`; the list, with what each means, is in README.md
("Operations"). No metric is labelled by org, machine or instance: the series stay few, and
the metrics say nothing about any tenant's data.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# `_created` series double every counter for little use, and multiprocess mode has none.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Buckets, in seconds: requests and steps take milliseconds, and may wait for a 90 s window.
LATENCY_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
             30.0, 90.0)
# A timer is late by the poll interval at most when all goes well, by a claim's expiry when a
# process died, by minutes under a backlog.
LATENESS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
              300.0)

# --- events and instances (runtime/instances/facade.py) -------------------------------------
EVENTS = Counter("backstate_events", "Client events answered, by outcome (ok or error)",
                 ["outcome"])
EVENTS_OK = EVENTS.labels("ok")
EVENTS_FAILED = EVENTS.labels("error")
EVENT_SECONDS = Histogram(
    "backstate_event_seconds",
    "From a client event's arrival in the core to its answer: its turn in the instance's "
    "queue, the lease, the step and its commits", buckets=LATENCY_S)
INSTANCES_CREATED = Counter("backstate_instances_created", "Instances created")

# --- the sandbox (runtime/engine.py, runtime/step.py, runtime/pool.py) -----------------------
STEP_SECONDS = Histogram(
    "backstate_step_sandbox_seconds",
    "JavaScript time of one step in its VM (calls and promise jobs; commits and fetches are "
    "not counted)", buckets=LATENCY_S)
VMS = Gauge("backstate_vms", "VMs alive, idle or running a step", multiprocess_mode="livesum")
VM_CLONES = Counter("backstate_vm_clones", "VMs made from a version's snapshot")
VM_RESETS = Counter("backstate_vm_resets", "Used VMs reset to their snapshot (strict pools)")
VM_WARM_HITS = Counter("backstate_vm_warm_hits",
                       "Steps served by a VM that kept their instance live (warm pools)")
VM_DROPS = Counter("backstate_vm_drops",
                   "VMs dropped: a step failed in them, recycled, or over the pool's bounds")

# --- commits (runtime/instances/committer.py) -------------------------------------------------
COMMITS = Counter("backstate_commits", "Group-commit transactions committed")
COMMIT_SECONDS = Histogram("backstate_commit_seconds",
                           "Duration of a group-commit transaction, sync included",
                           buckets=LATENCY_S)
# A counter, not a histogram of writes per commit: writes / commits is the mean batch, and a
# histogram's observation costs several counters' (its buckets are searched one by one).
COMMIT_WRITES = Counter("backstate_commit_writes",
                        "Steps' writes committed in group-commit transactions")
COMMIT_SPLITS = Counter("backstate_commit_splits",
                        "Group commits that failed and were retried one write at a time")

# --- leases (runtime/instances/leases.py) ----------------------------------------------------
LEASE_WAITS = Counter("backstate_lease_waits",
                      "Steps that found an instance's lease held and waited in line for it")
LEASE_WAIT_SECONDS = Histogram("backstate_lease_wait_seconds",
                               "How long steps that waited for a lease waited",
                               buckets=LATENCY_S)
LEASE_TIMEOUTS = Counter("backstate_lease_timeouts",
                         "Steps that gave up waiting for a lease (instance-busy)")
LEASES_HELD = Gauge("backstate_leases_held", "Leases this process holds and renews",
                    multiprocess_mode="livesum")
LEASE_RENEWAL_FAILURES = Counter("backstate_lease_renewal_failures",
                                 "Lease renewals that failed (the database was unreachable)")
LEASES_LOST = Counter("backstate_leases_lost",
                      "Leases given up because they expired before a renewal succeeded")

# --- durable timers (runtime/scheduler.py) ----------------------------------------------------
TIMERS_CLAIMED = Counter("backstate_timers_claimed", "Due timers this process claimed")
TIMERS_DELIVERED = Counter("backstate_timers_delivered", "Timers delivered (committed)")
TIMER_LATENESS = Histogram("backstate_timer_lateness_seconds",
                           "A delivered timer's delivery time minus its due time "
                           "(a retried timer's due time is its retry's)", buckets=LATENESS_S)
TIMERS_RETRIED = Counter("backstate_timers_retried",
                         "Timer deliveries that failed and were put back for a retry")
TIMERS_DROPPED = Counter("backstate_timers_dropped",
                         "Timers dropped: delivery failed for good, or the instance is gone",
                         ["reason"])
TIMERS_DROPPED_FAILED = TIMERS_DROPPED.labels("failed")
TIMERS_DROPPED_GONE = TIMERS_DROPPED.labels("instance-gone")
TIMERS_SUPERSEDED = Counter("backstate_timers_superseded",
                            "Claimed timers cancelled, re-armed or delivered elsewhere before "
                            "their delivery committed (nothing written)")
TIMERS_DEFERRED = Counter("backstate_timers_deferred",
                          "Deliveries stopped by an unreachable database: the claim expires "
                          "and the timer is delivered again, by any process")

# --- WebSockets (api/realtime/connection.py) -------------------------------------------------
WEBSOCKETS = Gauge("backstate_websocket_connections", "/rt connections open",
                   multiprocess_mode="livesum")
WEBSOCKETS_OPENED = Counter("backstate_websocket_connections_opened", "/rt connections accepted")
WEBSOCKET_FRAMES = Counter("backstate_websocket_frames", "/rt frames, by direction",
                           ["direction"])
WEBSOCKET_FRAMES_SENT = WEBSOCKET_FRAMES.labels("sent")
WEBSOCKET_FRAMES_RECEIVED = WEBSOCKET_FRAMES.labels("received")

# --- errors (api/errors.py: the one place errors become HTTP) --------------------------------
ERRORS = Counter("backstate_errors", "Error responses, by HTTP status and error code",
                 ["status", "code"])


def event_answered(started: float, *, ok: bool) -> None:
    """A client event answered; `started` is its `time.perf_counter()` on arrival."""
    EVENT_SECONDS.observe(time.perf_counter() - started)
    (EVENTS_OK if ok else EVENTS_FAILED).inc()


def error_answered(status: int, code: str) -> None:
    ERRORS.labels(str(status), code).inc()
