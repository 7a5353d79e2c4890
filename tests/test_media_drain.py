"""How the audio thread empties a leg's RTP socket each frame: every waiting packet in one pass,
with one receive per packet (the socket is asked whether more wait, rather than read until
EAGAIN), and zero-length datagrams, which that question cannot see past, never holding packets
back."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator

import pytest

from tipring.hal.sim import create_sim_board
from tipring.media.rtp import RtpPacket
from tipring.media.stream import RtpStream, StreamConfig
from tipring.runtime.media import MediaThread


class CountingSocket(socket.socket):
    """A UDP socket that counts its receive calls."""

    receives = 0

    def recvmsg(self, *args: int) -> tuple:  # type: ignore[override]
        self.receives += 1
        return super().recvmsg(*args)


@pytest.fixture
def rig() -> Iterator[tuple[MediaThread, CountingSocket, socket.socket]]:
    board = create_sim_board(1)
    rtp, rtcp = CountingSocket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(
        socket.AF_INET, socket.SOCK_DGRAM)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for sock in (rtp, rtcp, peer):
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
    thread = MediaThread(board.lines[0].audio, lambda event: None, realtime_priority=None)
    thread.attach(RtpStream(StreamConfig(0, peer.getsockname()), rng=random.Random(1)), rtp, rtcp)
    thread._run_commands()  # the attach, as the thread would run it between frames
    try:
        yield thread, rtp, peer
    finally:
        for sock in (rtp, rtcp, peer):
            sock.close()
        board.close()


def send(peer: socket.socket, to: socket.socket, *sequences: int | None) -> None:
    """RTP packets with these sequence numbers (None: a zero-length datagram), in this order."""
    for seq in sequences:
        data = b"" if seq is None else RtpPacket(0, seq, seq * 160, 0xBEEF,
                                                 payload=bytes(160)).serialize()
        peer.sendto(data, to.getsockname())


def drain(thread: MediaThread) -> None:
    thread._drain(thread.legs[""], 1.0, drain_rtcp=False)


def received(thread: MediaThread) -> int:
    stream = thread.stream
    assert stream is not None
    return stream.stats.received_packets


def test_a_burst_is_taken_in_one_pass_with_one_receive_per_packet(rig) -> None:
    thread, rtp, peer = rig
    send(peer, rtp, 1, 2, 3)
    drain(thread)
    assert received(thread) == 3
    assert rtp.receives == 3  # no fourth receive failing with EAGAIN
    send(peer, rtp, 4)
    drain(thread)
    assert received(thread) == 4 and rtp.receives == 4
    drain(thread)  # nothing waits: one receive finds that out
    assert received(thread) == 4 and rtp.receives == 5


def test_zero_length_datagrams_do_not_hold_packets_back(rig) -> None:
    thread, rtp, peer = rig
    send(peer, rtp, None, 1, 2)
    drain(thread)
    assert received(thread) == 2
    # From now on the leg reads to EAGAIN: packets behind junk come the same frame.
    send(peer, rtp, 3, None, 4, None, None, 5)
    drain(thread)
    assert received(thread) == 5
    stream = thread.stream
    assert stream is not None and stream.stats.dropped["malformed"] == 4
