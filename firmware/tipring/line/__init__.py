"""Analog line logic, pure (no I/O, no clock): digit maps, regional profiles, tone strings.

Everything timed takes `now` (monotonic seconds) and returns the next deadline, so the FXS state
machine and the tests drive it with any clock.
"""
