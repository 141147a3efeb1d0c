"""A local broker of a test's own, on a free port, that the test kills with -9 and starts again on the same port
(it comes back empty: the local broker keeps everything in memory). The shared broker of the run must keep its
topics, so broker faults happen here."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from deploy.stack.broker import TansuBroker
from deploy.stack.process import free_port, port_open
from runtime.settings import Settings


class PrivateBroker:
    def __init__(self, home: Path) -> None:
        self.spec = TansuBroker(home=home, port=free_port())
        self.process: asyncio.subprocess.Process | None = None

    def settings(self, settings: Settings) -> Settings:
        """``settings`` pointed at this broker, with what the local broker needs (see the local stack)."""
        broker = settings.broker.model_copy(
            update={"bootstrap_servers": self.spec.bootstrap_servers, "idempotence": False, "fetch_max_wait_ms": 50}
        )
        return settings.model_copy(update={"broker": broker})

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.spec.command(), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        async with asyncio.timeout(30):
            while not port_open(self.spec.port):  # noqa: ASYNC110 - another process starting
                await asyncio.sleep(0.05)

    async def kill(self) -> None:
        """SIGKILL, and wait until its listener is gone."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        async with asyncio.timeout(10):
            while port_open(self.spec.port):  # noqa: ASYNC110 - the listener goes away with the process
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """At the end of the test, whatever state it is in."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()
