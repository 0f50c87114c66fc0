"""The line of servers waiting to start: first come, first served (HUBSTACK_SPAWN_CONCURRENCY).

The engine starts servers fastest a few at a time (README.md, 'Benchmarks'):
the hub lets that many start at once and keeps the others in line, in the
order they asked, instead of sending them away to retry (JupyterHub's
concurrent_spawn_limit answers 429 and the browser comes back after a
random wait, so a crowd was served in random order with idle gaps). A place
is taken before JupyterHub's start timeout begins (the spawner's pre-spawn
hook) and given back when the start ends, however it ends.
"""

import asyncio


class StartLine:
    def __init__(self, places=0):
        self.places = places  # 0: no line
        self.starting = set()
        self.waiting = []  # (who, event), in the order they came

    def ahead_of(self, who):
        """How many wait before who (None: who is not waiting)."""
        for index, (someone, _) in enumerate(self.waiting):
            if someone == who:
                return index
        return None

    async def enter(self, who):
        """Return once who may start (at once when a place is free)."""
        if not self.places or who in self.starting:
            return
        event = asyncio.Event()
        self.waiting.append((who, event))
        self._admit()
        try:
            await event.wait()
        except BaseException:
            self.leave(who)
            raise

    def leave(self, who):
        """who started, failed or gave up: its place goes to the next in line."""
        self.waiting = [(w, e) for w, e in self.waiting if w != who]
        if who in self.starting:
            self.starting.discard(who)
        self._admit()

    def _admit(self):
        while self.waiting and len(self.starting) < self.places:
            who, event = self.waiting.pop(0)
            self.starting.add(who)
            event.set()
