"""The local stack's clients with hooks on every call (tests and benchmarks): count, check or fail the mutating ones."""

from __future__ import annotations

from toolkit.local.environment import LocalEnvironment

# The actions that change something (what a crash test kills after, what an invariant watcher checks after).
MUTATING = ("Create", "Update", "Modify", "Delete", "Put", "Set", "Attach", "Register", "Deregister", "Terminate")


class HookedAws(LocalEnvironment):
    """Clients whose calls pass through this object's methods named in ``HOOKS`` (botocore event -> method)."""

    HOOKS: tuple[tuple[str, str], ...] = ()

    def client(self, service, region=None):
        fresh = (service, region or self.region) not in self._clients
        client = super().client(service, region)
        if fresh:
            for event, method in self.HOOKS:
                client.meta.events.register(event, getattr(self, method))
        return client
