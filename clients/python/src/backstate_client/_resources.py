"""The resources both clients expose, built once over a client's runner."""

from __future__ import annotations

from typing import Generic

from backstate_client._identity import IdentityProviders, TokenProviders, Tokens
from backstate_client._instances import MachineInstances
from backstate_client._logs import Logs
from backstate_client._machines import Machines, MachineVersionMigrations, MachineVersions
from backstate_client._namespace import Mode, Runner
from backstate_client._orgs import BillingInfo, Keys, Orgs


class Resources(Generic[Mode]):
    """Every API namespace, named as the official client names them (in snake case)."""

    def __init__(self, runner: Runner) -> None:
        self.machines: Machines[Mode] = Machines(runner)
        self.machine_versions: MachineVersions[Mode] = MachineVersions(runner)
        self.machine_version_migrations: MachineVersionMigrations[Mode] = (
            MachineVersionMigrations(runner)
        )
        self.machine_instances: MachineInstances[Mode] = MachineInstances(runner)
        self.logs: Logs[Mode] = Logs(runner)
        self.identity_providers: IdentityProviders[Mode] = IdentityProviders(runner)
        self.token_providers: TokenProviders[Mode] = TokenProviders(runner)
        self.tokens: Tokens[Mode] = Tokens(runner)
        self.orgs: Orgs[Mode] = Orgs(runner)
        self.keys: Keys[Mode] = Keys(runner)
        self.billing: BillingInfo[Mode] = BillingInfo(runner)
