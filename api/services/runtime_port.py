"""What the server needs from the machine runtime (`runtime.engine.Runtime` provides it).

All calls block (they run wasm); callers run them on the step thread pool, never on the loop.
"""

from __future__ import annotations

from typing import Any, Protocol

from runtime.results import CommitHook, StepResult


class StepRuntime(Protocol):
    def load(self, version_key: str, bundle_source: str) -> Any:
        """Compile and validate a bundle (cached by key); raises `BundleError`."""
        ...

    def validate_bundle(self, bundle_source: str) -> None:
        """Raise `BundleError` naming what is wrong with a bundle."""
        ...

    def describe_bundle(self, bundle_source: str) -> dict[str, Any]:
        """Validate a bundle like `validate_bundle`; its machine's definition (the chart's
        structure, `runtime/definitions.py`)."""
        ...

    def create(
        self,
        version: Any,
        *,
        instance_name: str,
        context: dict[str, Any] | None,
        auth_context: dict[str, Any],
        on_commit: CommitHook,
    ) -> StepResult: ...

    def read(
        self, version: Any, *, instance_name: str, state_json: str, auth_context: dict[str, Any]
    ) -> None: ...

    def send(
        self,
        version: Any,
        *,
        instance_name: str,
        state_json: str,
        event: str | dict[str, Any],
        auth_context: dict[str, Any],
        on_commit: CommitHook,
        cut_off: list[str],
        trusted: bool = False,
    ) -> StepResult: ...
