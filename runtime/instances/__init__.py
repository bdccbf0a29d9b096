"""An instance's life: create, send, deliver a timer, read, pause, delete, and the feed of
committed states, behind one facade (`Instances`, in `facade.py`).

Modules, in the order a step meets them: `mailbox.py` (the per-process queue of each
instance; events queued together run as one step, answered by `batches.py`), `lanes.py`
(admission to the CPU), `threads.py` (step and database threads), `runner.py` (one step
serialized across processes: `leases.py` for this process's side of the leases, `commits.py`
for how each reply's macrosteps are written, `committer.py` for the transactions steps share,
`upgrades.py` for the desired version and the upgrade a step applies before its event),
`versions.py` (the compiled versions this process keeps), `feed.py` (who learns of every
committed state), `timers.py` (the scheduler's view of the timer table).
"""

from runtime.instances.facade import Instances, InstancesConfig
from runtime.instances.feed import Feed, StateCommitted

__all__ = ["Feed", "Instances", "InstancesConfig", "StateCommitted"]
