"""The one exception tree of backstate. `api/errors.py` maps it to HTTP in one place.

    BackstateError                      root; never raised directly
    ├── NotFoundError                   a machine, version, instance, key... does not exist
    ├── ConflictError                   exists already / wrong state (paused, has instances)
    │   ├── InstanceChangedError        a step that read without the lease lost the race;
    │   │                               it wrote nothing and runs again holding the lease
    │   ├── TimerSupersededError        a claimed timer was cancelled, re-armed or delivered
    │   │                               by another process: its delivery writes nothing
    │   └── UpgradeFailedError          the instance's pending upgrade (desired version)
    │                                   could not be applied: it stays on its old version
    ├── InvalidRequestError             malformed input (carries the offending `parameter`)
    │   ├── PayloadTooLargeError        an event or upload over its size limit
    │   └── NoMigrationPathError        no chain of migrations leads to the desired version
    ├── AuthError                       bad, expired, forged or wrong-key token
    │   └── MissingScopeError           valid token, but its key lacks the scope
    ├── RejectedByAuthorizerError       allowRead / allowWrite said no
    ├── BundleError                     an uploaded bundle is not a valid machine module
    ├── EgressDeniedError               a machine's fetch refused by the egress policy (the
    │                                   machine sees a rejected fetch, not this error)
    ├── HostCallError                   a malformed synchronous request from the guest
    ├── UnsupportedError                a feature this server does not have (or was set up
    │                                   without): says so rather than failing silently
    ├── UnavailableError                the database could not be reached (connection refused,
    │                                   lost or timed out); the request may be tried again
    └── MachineError                    running the machine failed; nothing was committed
        ├── ScriptError                 a JavaScript exception escaped to the host
        ├── ContextError                context not JSON, or over the size limit
        └── SandboxError                the VM hit a limit; the VM is discarded
            ├── TimeLimitError          a synchronous slice or the settle window ran out
            ├── MemoryLimitError        the VM's memory cap was hit
            └── StackOverflowError      the VM's stack was exhausted

Class names carry the retry semantics: a MachineError on a timer delivery is retried (the
machine may behave differently later, or the instance be resumed); the others are final.
"""

from __future__ import annotations

from collections.abc import Sequence

from runtime.results import LogLine


class BackstateError(Exception):
    """Root of every error backstate raises on purpose."""

    code: str = "internal-error"
    # The console lines a failed step printed before it failed (runtime/step.py attaches them):
    # they are kept as the machine's logs although nothing of the step was committed.
    logs: Sequence[LogLine] = ()

    def __init__(self, message: str, *, parameter: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.parameter = parameter
        if code is not None:
            self.code = code


class NotFoundError(BackstateError):
    code = "not-found"


class ConflictError(BackstateError):
    code = "invalid-state"


class InstanceChangedError(ConflictError):
    code = "instance-busy"


class ChangedAfterWritesError(InstanceChangedError):
    """An instance changed, found only after some of a commit's writes: unlike its parent,
    the transaction holding them must be rolled back (see the group committer)."""


class TimerSupersededError(ConflictError):
    code = "timer-superseded"


class UpgradeFailedError(ConflictError):
    """The migration path to the instance's desired version threw, ran out of time or memory,
    or led to states the new version does not have. Nothing was written; the desired version
    stays set, so the next event tries again (with a fixed migration, once one is deployed).
    `logs` holds the migrations' console output and the reason, for the instance's logs."""

    code = "upgrade-failed"

    def __init__(self, message: str, *, logs: Sequence[LogLine] | None = None):
        super().__init__(message)
        self.logs = list(logs or [])


class InvalidRequestError(BackstateError):
    code = "invalid-parameter"


class PayloadTooLargeError(InvalidRequestError):
    code = "payload-too-large"


class NoMigrationPathError(InvalidRequestError):
    code = "no-migration-path"


class AuthError(BackstateError):
    code = "unauthorized"


class MissingScopeError(AuthError):
    code = "missing-scope"


class RejectedByAuthorizerError(BackstateError):
    code = "rejected-by-machine-authorizer"


class BundleError(BackstateError):
    code = "invalid-bundle"


class EgressDeniedError(BackstateError):
    code = "egress-denied"


class HostCallError(BackstateError):
    code = "host-call-error"


class UnsupportedError(BackstateError):
    code = "not-implemented"


class UnavailableError(BackstateError):
    code = "database-unavailable"


class MachineError(BackstateError):
    code = "machine-error"


class ScriptError(MachineError):
    """`js_stack` holds the guest's stack trace."""

    def __init__(self, message: str, js_stack: str = ""):
        super().__init__(message)
        self.js_stack = js_stack


class ContextError(MachineError):
    code = "invalid-context"


class SandboxError(MachineError):
    code = "sandbox-error"


class TimeLimitError(SandboxError):
    code = "time-limit-exceeded"


class MemoryLimitError(SandboxError):
    code = "memory-limit-exceeded"


class StackOverflowError(SandboxError):
    code = "stack-overflow"
