"""Hardware abstraction: interfaces in `api`, one module per driver (imported lazily by profile)."""
