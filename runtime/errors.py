"""The one exception tree of backstate. `api/errors.py` maps it to HTTP in one place.

    BackstateError                      root; never raised directly
    ├── NotFoundError                   a machine, version, instance, key... does not exist
    ├── ConflictError                   exists already / wrong state (paused, has instances)
    ├── InvalidRequestError             malformed input (carries the offending `parameter`)
    ├── AuthError                       bad, expired, forged or wrong-key token
    │   └── MissingScopeError           valid token, but its key lacks the scope
    ├── RejectedByAuthorizerError       allowRead / allowWrite said no
    ├── BundleError                     an uploaded bundle is not a valid machine module
    └── MachineError                    running the machine failed; nothing was committed
        ├── ContextError                context not JSON, or over the size limit
        └── SandboxError                the VM hit a limit; the VM is discarded
            ├── TimeLimitError          a synchronous slice or the settle window ran out
            ├── MemoryLimitError        the VM's memory cap was hit
            └── StackOverflowError      the VM's stack was exhausted

Class names carry the retry semantics: a MachineError on a timer delivery is retried (the
machine may behave differently later, or the instance be resumed); the others are final.
"""

from __future__ import annotations


class BackstateError(Exception):
    """Root of every error backstate raises on purpose."""

    code: str = "internal-error"

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


class InvalidRequestError(BackstateError):
    code = "invalid-parameter"


class AuthError(BackstateError):
    code = "unauthorized"


class MissingScopeError(AuthError):
    code = "missing-scope"


class RejectedByAuthorizerError(BackstateError):
    code = "rejected-by-machine-authorizer"


class BundleError(BackstateError):
    code = "invalid-bundle"


class MachineError(BackstateError):
    code = "machine-error"


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
