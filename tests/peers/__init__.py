"""Real SIP peers started by the tests on loopback: Kamailio, baresip and SIPp.

    from peers.kamailio import Kamailio
    from peers.baresip import Baresip
    from peers.sipp import Sipp

Each class writes its configuration under a directory it is given (pytest's ``tmp_path``),
starts its program from the Debian package, waits until it is ready with a deadline, and kills
its whole process group on ``stop()``. Fixtures for them are in ``peers.fixtures``.
"""

from .baresip import Baresip
from .kamailio import Contact, Kamailio
from .ports import free_port
from .process import PeerError
from .sipp import Sipp, SippResult

__all__ = ["Baresip", "Contact", "Kamailio", "PeerError", "Sipp", "SippResult", "free_port"]
