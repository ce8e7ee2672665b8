"""The asyncio API: every long `Vault` operation as a coroutine that runs off the event loop.

The blocking API releases the GIL for all its work, so running it in the default executor (a
thread) keeps the loop free: other tasks run while a record is sealed or a chain verified.

    async with await medshare.aio.Vault.memory() as v:
        rec = await v.publish(alice, b"...")
"""

import asyncio
import functools
from typing import Any, Callable, Optional, TypeVar

from . import _native
from ._native import Identity

T = TypeVar("T")


async def _run(f: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(f, *args, **kwargs))


class Vault:
    """An asyncio face of `medshare.Vault`: the same methods, awaited."""

    def __init__(self, inner: _native.Vault) -> None:
        self.sync_vault = inner

    @staticmethod
    async def memory(authority: Optional[Identity] = None, network: str = "medshare-local") -> "Vault":
        return Vault(await _run(_native.Vault.memory, authority, network))

    @staticmethod
    async def open(path: Any, authority: Optional[Identity] = None, network: str = "medshare-local") -> "Vault":
        return Vault(await _run(_native.Vault.open, path, authority, network))

    @staticmethod
    async def with_store(store: Any, authority: Optional[Identity] = None, network: str = "medshare-local") -> "Vault":
        return Vault(await _run(_native.Vault.with_store, store, authority, network))

    @staticmethod
    async def connect(nodes: list[str], genesis: str, store: Any = None, gateways: Optional[list[str]] = None, timeout: float = 30.0) -> "Vault":
        return Vault(await _run(_native.Vault.connect, nodes, genesis, store, gateways, timeout))

    def __getattr__(self, name: str) -> Callable[..., Any]:
        attr = getattr(self.sync_vault, name)
        if not callable(attr):
            return attr  # type: ignore[no-any-return]

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await _run(attr, *args, **kwargs)

        return call

    async def __aenter__(self) -> "Vault":
        return self

    async def __aexit__(self, *exc: object) -> bool:
        self.sync_vault.close()
        return False


__all__ = ["Vault"]
