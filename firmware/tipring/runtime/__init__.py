"""The only layer with asyncio, sockets, threads and the wall clock: wiring the device together."""
