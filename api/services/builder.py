"""Single-file machines bundled on the server, as `smply machines create --node` (0.1.18) does.

smply runs esbuild with `bundle, format esm, platform browser, minify, keepNames, legalComments
none, define process.env.NODE_ENV="production", drop debugger`, inlining xstate. So do we, with
the same esbuild (0.18, pinned in `js_shims/package.json`) run as its native binary: no Node at
run time. xstate is inlined from `js_shims/node_modules` (the runtime's 4.38.3); `npm:xstate`
stays an import, which the sandbox resolves. `@statebacked/machine` (0.6.0, also pinned there) is
inlined the same way.

A build must not read the server's files, so it runs in two passes: the first marks every
import external and reads only the machine's own file, to list what it imports; anything but
xstate and @statebacked/machine is refused before the second pass, the real bundle, reads a byte
of it.
"""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import BundleError, UnsupportedError

JS_SHIMS = Path(__file__).resolve().parents[2] / "js_shims"

ALLOWED_IMPORTS = re.compile(r"^(npm:xstate|xstate|@statebacked/machine)(/.*)?$")
SOURCE_SUFFIXES = (".ts", ".js", ".mjs", ".mts", ".cjs", ".cts", ".tsx", ".jsx")
SMPLY_FLAGS = [
    "--bundle",
    "--format=esm",
    "--platform=browser",
    "--minify",
    "--keep-names",
    "--legal-comments=none",
    '--define:process.env.NODE_ENV="production"',
    "--drop:debugger",
    "--external:npm:xstate",
]
_ERROR = re.compile(r"^\S*\s*\[ERROR\] (?P<message>.+)$")
_WHERE = re.compile(r"^\s+(?P<where>[^\s:]+:\d+:\d+):\s*$")


@dataclass(frozen=True)
class Built:
    code: str
    warnings: str


class Builder:
    def __init__(self, esbuild: Path | None = None, *, timeout_s: float = 30.0, at_once: int = 2):
        self._esbuild = esbuild or bundled_esbuild()
        self._timeout_s = timeout_s
        self._slots = threading.BoundedSemaphore(at_once)  # esbuild uses every core it sees

    def build(self, source: str, file_name: str | None) -> Built:
        """The bundle of one machine file; BundleError (400) with esbuild's words if it does
        not build, or if it imports anything but xstate and @statebacked/machine."""
        if not self._esbuild.is_file():
            raise UnsupportedError(
                f"this server cannot bundle machines: esbuild's binary is missing at "
                f"{self._esbuild} (run `make setup`, or set BACKSTATE_ESBUILD_PATH)")
        name = _entry_name(file_name)
        with self._slots, tempfile.TemporaryDirectory(prefix="backstate-build-") as tmp:
            work = Path(tmp)
            (work / name).write_text(source, encoding="utf-8")
            self._check_imports(work, name)
            out = self._run(work, [name, *SMPLY_FLAGS, "--outfile=bundle.js"])
            return Built((work / "bundle.js").read_text(encoding="utf-8"), out)

    def _check_imports(self, work: Path, name: str) -> None:
        flags = ["--bundle", "--external:*", "--format=esm", "--platform=browser"]
        self._run(work, [name, *flags, "--metafile=imports.json", "--outfile=scan.js"])
        meta = json.loads((work / "imports.json").read_text())
        paths = sorted({i["path"] for i in meta["inputs"][name]["imports"]})
        refused = [path for path in paths if not ALLOWED_IMPORTS.match(path)]
        if refused:
            listed = ", ".join(repr(path) for path in refused)
            raise BundleError(
                f"the machine imports {listed}; a single-file machine may import only xstate "
                "and @statebacked/machine (bundle it yourself, e.g. with smply, and deploy the "
                "bundle instead)",
                parameter="source",
            )

    def _run(self, work: Path, args: list[str]) -> str:
        env = {"NODE_PATH": str(JS_SHIMS / "node_modules")}
        command = [str(self._esbuild), *args, "--log-level=warning", "--color=false"]
        try:
            done = subprocess.run(
                command, cwd=work, env=env, capture_output=True, text=True,
                timeout=self._timeout_s, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BundleError(
                f"bundling took longer than {self._timeout_s:g} s", parameter="source"
            ) from exc
        if done.returncode != 0:
            raise BundleError(
                f"the machine does not build: {_errors(done.stderr)}", parameter="source"
            )
        return done.stderr.strip()


def bundled_esbuild() -> Path:
    """The native esbuild npm installed for this platform (`@esbuild/<os>-<cpu>`)."""
    cpu = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    os_name = "darwin" if sys.platform == "darwin" else sys.platform.rstrip("0123456789")
    return JS_SHIMS / "node_modules" / "@esbuild" / f"{os_name}-{cpu}" / "bin" / "esbuild"


def _entry_name(file_name: str | None) -> str:
    """A safe name for the machine's file in the build folder; its suffix picks the loader."""
    base = re.sub(r"[^A-Za-z0-9._-]", "_", Path(file_name or "").name).lstrip(".")
    if not base:
        return "machine.ts"
    return base if base.endswith(SOURCE_SUFFIXES) else base + ".ts"


def _errors(stderr: str) -> str:
    """esbuild's errors as one line each: `message (file:line:col)`."""
    found: list[str] = []
    lines = stderr.splitlines()
    for i, line in enumerate(lines):
        error = _ERROR.match(line)
        if error is None:
            continue
        where = next((m["where"] for m in map(_WHERE.match, lines[i + 1 : i + 4]) if m), None)
        found.append(error["message"] + (f" ({where})" if where else ""))
    return "; ".join(found[:5]) or stderr.strip()[:2000] or "esbuild failed"
