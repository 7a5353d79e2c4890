"""Kamailio as a registrar and proxy with digest auth, no database, on loopback.

Credentials live in an ``htable`` filled when the module starts; the location table is
in memory (usrloc ``db_mode`` 0) and is read back over the jsonrpcs datagram socket, so a test
can assert what the registrar actually stored.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .ports import free_port
from .process import PeerError, PeerProcess

KAMAILIO = "/usr/sbin/kamailio"
KAMCMD = "/usr/sbin/kamcmd"
MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules"
_SAFE = re.compile(r"^[A-Za-z0-9._~!*+=,;:@%-]+$")


@dataclass(frozen=True)
class Contact:
    """One binding in the location table."""

    aor: str
    address: str
    expires: int
    call_id: str
    cseq: int
    user_agent: str
    received: str
    socket: str
    instance: str
    reg_id: int


class Kamailio:
    """A Kamailio registrar/proxy; use as a context manager or call start()/stop().

    ``min_expires``: a REGISTER asking for less (and not 0) gets 423 with Min-Expires.
    ``invite_auth``: initial INVITE/MESSAGE/SUBSCRIBE from a listed user is challenged (407).
    ``bad_credentials_reply``: 401 re-challenges a wrong password, 403 refuses it.
    ``max_lifetime``: Kamailio is killed after this many seconds whatever happens.
    ``tls``: (certificate, key) PEM files: also listen TLS on ``tls_port`` (default: port + 1;
    needs the kamailio-tls-modules package). Client certificates are not asked for, and
    Kamailio does not verify ours when it connects to a TLS contact.
    ``flow_timer``: run the registrar as an RFC 5626 outbound registrar (``outbound_mode`` 1:
    outbound when the UA asks) that sends this Flow-Timer, and answer STUN Binding requests
    on the SIP UDP port (the ``stun`` module; kamailio-outbound-modules has ``outbound``).
    ``qop``: what challenges offer: "auth", "auth-int" (alone) or "" (RFC 2069, no qop).
    ``algorithm``: "MD5" or "SHA-256" (the auth module's ``algorithm``).
    ``nonce_expire``: seconds a nonce is good for; credentials with an older one are
    challenged again with ``stale=true``.
    ``upstream``: "host:port" of another Kamailio: run as an outbound proxy in front of it
    instead of a registrar, challenging every request from a listed user with 407 in its own
    ``realm`` (a second realm) and relaying all of them there.
    ``tcp_lifetime``: close TCP/TLS connections idle this many seconds (Kamailio's
    ``tcp_connection_lifetime``; a client must then reconnect).
    ``client_ca``: with ``tls``, demand a client certificate signed by this CA (PEM) from
    every TLS peer (``verify_certificate`` and ``require_certificate``).
    """

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        *,
        host: str = "127.0.0.1",
        transport: str = "udp",
        users: Mapping[str, str] | None = None,
        realm: str = "tipring.test",
        min_expires: int | None = None,
        max_expires: int | None = None,
        record_route: bool = True,
        invite_auth: bool = True,
        bad_credentials_reply: int = 401,
        debug: int = 2,
        max_lifetime: int = 600,
        tls: tuple[Path, Path] | None = None,
        tls_port: int | None = None,
        flow_timer: int | None = None,
        qop: str = "auth",
        algorithm: str = "MD5",
        nonce_expire: int = 60,
        upstream: str | None = None,
        client_ca: Path | None = None,
        tcp_lifetime: int | None = None,
    ) -> None:
        if transport not in ("udp", "tcp", "tls"):
            raise ValueError("transport must be 'udp', 'tcp' or 'tls'")
        if transport == "tls" and tls is None:
            raise ValueError("transport 'tls' needs tls=(certificate, key)")
        if bad_credentials_reply not in (401, 403):
            raise ValueError("bad_credentials_reply must be 401 or 403")
        if qop not in ("auth", "auth-int", ""):
            raise ValueError("qop must be 'auth', 'auth-int' or ''")
        if algorithm not in ("MD5", "SHA-256"):
            raise ValueError("algorithm must be 'MD5' or 'SHA-256'")
        if upstream is not None and not _SAFE.match(upstream):
            raise ValueError(f"unsafe character in upstream {upstream!r}")
        self.users = dict({"1001": "secret1001", "1002": "secret1002"} if users is None else users)
        for name, value in [*self.users.items(), ("realm", realm)]:
            if not _SAFE.match(name) or not _SAFE.match(value):
                raise ValueError(f"unsafe character in user/password/realm {name!r}")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = port or free_port(host, span=2 if tls else 1)
        self.tls = tls
        self.flow_timer = flow_timer
        self.qop = qop
        self.algorithm = algorithm
        self.nonce_expire = nonce_expire
        self.upstream = upstream
        self.client_ca = client_ca
        self.tcp_lifetime = tcp_lifetime
        self.tls_port = (tls_port or self.port + 1) if tls else None
        self.transport = transport
        self.realm = realm
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.record_route = record_route
        self.invite_auth = invite_auth
        self.bad_credentials_reply = bad_credentials_reply
        self.debug = debug
        self.max_lifetime = max_lifetime
        # Unix socket paths are limited to 107 bytes and pytest's tmp_path can be longer, so the
        # control sockets live in a short directory of their own, made by write_config().
        self._sockdir: Path | None = None
        self.config_path = self.workdir / "kamailio.cfg"
        self.log_path = self.workdir / "kamailio.log"
        self.process: PeerProcess | None = None
        self.startup_seconds: float | None = None

    # --- addresses -------------------------------------------------------------------------

    @property
    def hostport(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def tls_hostport(self) -> str:
        """host:port of the TLS listener."""
        assert self.tls_port is not None, "started without tls="
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.tls_port}"

    @property
    def uri(self) -> str:
        """The proxy/registrar URI, e.g. ``sip:127.0.0.1:5060`` (``;transport=tcp`` for TCP)."""
        if self.transport == "tls":
            return f"sip:{self.tls_hostport};transport=tls"
        suffix = ";transport=tcp" if self.transport == "tcp" else ""
        return f"sip:{self.hostport}{suffix}"

    def aor(self, user: str) -> str:
        return f"sip:{user}@{self.hostport}"

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def rpc_socket(self) -> Path:
        """The jsonrpcs datagram socket (see :meth:`rpc`)."""
        assert self._sockdir is not None, "write_config() or start() first"
        return self._sockdir / "rpc.sock"

    @property
    def ctl_socket(self) -> Path:
        """The ctl (binrpc) socket ``kamcmd -s unix:PATH`` talks to."""
        assert self._sockdir is not None, "write_config() or start() first"
        return self._sockdir / "ctl.sock"

    def write_config(self) -> Path:
        if self._sockdir is None:
            self._sockdir = Path(tempfile.mkdtemp(prefix="kam-", dir="/tmp"))
        self.config_path.write_text(self._config())
        return self.config_path

    def start(self, timeout: float = 10.0) -> Kamailio:
        self.write_config()
        started = time.monotonic()
        # coreutils timeout bounds Kamailio's life even if the test process dies without teardown.
        argv = ["timeout", "-k", "5", str(self.max_lifetime)]
        argv += [KAMAILIO, "-DD", "-E", "-m", "32", "-M", "8", "-f", str(self.config_path)]
        self.process = PeerProcess("kamailio", argv, self.log_path, cwd=self.workdir)
        self.process.start()
        try:
            self._wait_ready(started + timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        if self._sockdir is not None:
            shutil.rmtree(self._sockdir, ignore_errors=True)

    def __enter__(self) -> Kamailio:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_text(self) -> str:
        return self.process.log_text() if self.process else ""

    def _wait_ready(self, deadline: float) -> None:
        """Ready = answers an OPTIONS over UDP with 200 and its RPC socket answers."""
        assert self.process is not None
        last_error = "no reply"
        while time.monotonic() < deadline:
            if not self.process.running():
                raise PeerError(f"kamailio exited ({self.process.returncode()})\n{self.process.log_tail()}")
            try:
                status = options_ping(self.host, self.port, timeout=0.3)
                if status == 200 and self.rpc_socket.exists():
                    self.rpc("core.version")
                    return
                last_error = f"OPTIONS answered {status}"
            except (OSError, PeerError) as exc:
                last_error = str(exc)
            time.sleep(0.05)
        raise PeerError(f"kamailio not ready ({last_error})\n{self.process.log_tail()}")

    # --- management ------------------------------------------------------------------------

    def rpc(self, method: str, *params: Any, timeout: float = 3.0) -> Any:
        """One JSON-RPC call over the jsonrpcs Unix datagram socket; returns ``result``."""
        request = {"jsonrpc": "2.0", "method": method, "id": 1}
        if params:
            request["params"] = list(params)
        assert self._sockdir is not None, "not started"
        reply_path = self._sockdir / f"c-{uuid.uuid4().hex[:12]}.sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(str(reply_path))
            try:
                sock.settimeout(timeout)
                sock.sendto(json.dumps(request).encode(), str(self.rpc_socket))
                try:
                    data = sock.recv(1 << 20)
                except TimeoutError:
                    raise PeerError(f"kamailio rpc {method}: no reply within {timeout} s") from None
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(reply_path)
        reply = json.loads(data)
        if "error" in reply:
            raise PeerError(f"kamailio rpc {method}: {reply['error']}")
        return reply.get("result")

    def kamcmd(self, *args: str, timeout: float = 5.0) -> str:
        """Run ``kamcmd`` against the ctl (binrpc) socket; its text output."""
        import subprocess

        done = subprocess.run(
            [KAMCMD, "-s", f"unix:{self.ctl_socket}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise PeerError(f"kamcmd {' '.join(args)} failed: {done.stderr or done.stdout}")
        return done.stdout

    def contacts(self, user: str | None = None) -> list[Contact]:
        """The location table (or one user's bindings), as stored by the registrar."""
        found: list[Contact] = []
        result = self.rpc("ul.dump")
        for domain in result.get("Domains", []):
            for entry in domain.get("Domain", {}).get("AoRs", []):
                info = entry.get("Info", {})
                aor = info.get("AoR", "")
                if user is not None and aor != user:
                    continue
                for item in info.get("Contacts", []):
                    c = item.get("Contact", {})
                    found.append(
                        Contact(
                            aor=aor,
                            address=c.get("Address", ""),
                            expires=int(c.get("Expires", -1)) if str(c.get("Expires", "")).lstrip("-").isdigit() else -1,
                            call_id=c.get("Call-ID", ""),
                            cseq=int(c.get("CSeq", 0)),
                            user_agent=c.get("User-Agent", ""),
                            received=c.get("Received", ""),
                            socket=c.get("Socket", ""),
                            instance=c.get("Instance", ""),
                            reg_id=int(c.get("Reg-Id", 0)),
                        )
                    )
        return found

    def wait_for_contacts(self, user: str, timeout: float = 5.0, count: int = 1) -> list[Contact]:
        """Wait until ``user`` has at least ``count`` bindings (``count=0``: none at all)."""
        deadline = time.monotonic() + timeout
        while True:
            current = self.contacts(user)
            if (count == 0 and not current) or (count > 0 and len(current) >= count):
                return current
            if time.monotonic() > deadline:
                raise PeerError(f"{user}: {len(current)} binding(s) after {timeout} s, wanted {count}: {current}")
            time.sleep(0.05)

    # --- configuration ---------------------------------------------------------------------

    def _config(self) -> str:
        listen = [f"listen=udp:{self.hostport}", f"listen=tcp:{self.hostport}"]
        tls_modules = ""
        if self.tls is not None:
            listen.append(f"listen=tls:{self.tls_hostport}")
            cert, key = self.tls
            tls_modules = f"""loadmodule "tls.so"
modparam("tls", "certificate", "{cert}")
modparam("tls", "private_key", "{key}")
modparam("tls", "tls_method", "TLSv1.2+")
modparam("tls", "verify_certificate", {1 if self.client_ca else 0})
modparam("tls", "require_certificate", {1 if self.client_ca else 0})
{f'modparam("tls", "ca_list", "{self.client_ca}")' if self.client_ca else ""}
"""
        fill = "\n".join(f'    $sht(users=>{u}) = "{p}";' for u, p in sorted(self.users.items()))
        registrar_min = self.min_expires if self.min_expires is not None else 0
        max_expires = self.max_expires if self.max_expires is not None else 0
        min_check = ""
        if self.min_expires is not None:
            min_check = f"""
    # RFC 3261 10.3 step 7: refuse (not silently raise) an interval below the minimum.
    $var(exp) = -1;
    if (is_present_hf("Contact") && $ct != "*") {{
        if ($(ct{{tobody.params}}{{param.value,expires}}) != "") {{
            $var(exp) = $(ct{{tobody.params}}{{param.value,expires}}{{s.int}});
        }} else if (is_present_hf("Expires")) {{
            $var(exp) = $(hdr(Expires){{s.int}});
        }}
    }}
    if ($var(exp) > 0 && $var(exp) < {self.min_expires}) {{
        append_to_reply("Min-Expires: {self.min_expires}\\r\\n");
        sl_send_reply("423", "Interval Too Brief");
        exit;
    }}
"""
        flags = {"auth": 1, "auth-int": 2, "": 0}[self.qop]
        bad_reply = (
            'sl_send_reply("403", "Forbidden");'
            if self.bad_credentials_reply == 403
            else f'auth_challenge("{self.realm}", "{flags}");'
        )
        record_route = (
            """
    if (is_method("INVITE|SUBSCRIBE")) {
        record_route();
    }"""
            if self.record_route
            else ""
        )
        invite_auth = (
            """
    if (is_method("INVITE|MESSAGE|SUBSCRIBE|REFER") && $sht(users=>$fU) != $null) {
        route(AUTH);
    }"""
            if self.invite_auth
            else ""
        )
        outbound = ""
        if self.flow_timer is not None:
            outbound = f"""loadmodule "stun.so"
loadmodule "outbound.so"
modparam("registrar", "outbound_mode", 1)
modparam("registrar", "flow_timer", {self.flow_timer})
"""
        return f"""#!KAMAILIO
# Written by tests/peers/kamailio.py for one test: registrar + proxy, digest auth, no database.

debug={self.debug}
log_stderror=yes
log_prefix="{{$mt $hdr(CSeq) $ci}} "
fork=yes
children=2
tcp_children=2
{f"tcp_connection_lifetime={self.tcp_lifetime}" if self.tcp_lifetime else ""}
{chr(10).join(listen)}
alias="{self.realm}"
auto_aliases=no
dns=no
rev_dns=no
dns_try_ipv6=no
dns_try_naptr=no
use_dns_cache=off
enable_tls={"yes" if self.tls is not None else "no"}
run_dir="{self._sockdir}"
server_header="Server: kamailio-tipring-test"
user_agent_header="User-Agent: kamailio-tipring-test"

mpath="{MODULES}/"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "sanity.so"
loadmodule "htable.so"
loadmodule "auth.so"
loadmodule "ctl.so"
loadmodule "jsonrpcs.so"
{tls_modules}{outbound}
modparam("ctl", "binrpc", "unix:{self.ctl_socket}")
modparam("jsonrpcs", "transport", 4)
modparam("jsonrpcs", "dgram_socket", "{self.rpc_socket}")
modparam("tm", "fr_timer", 5000)
modparam("tm", "fr_inv_timer", 30000)
modparam("rr", "enable_full_lr", 0)
modparam("rr", "append_fromtag", 1)
modparam("usrloc", "db_mode", 0)
modparam("usrloc", "use_domain", 0)
modparam("registrar", "min_expires", {registrar_min})
modparam("registrar", "max_expires", {max_expires})
modparam("registrar", "default_expires", 3600)
modparam("htable", "htable", "users=>size=4;autoexpire=0;")
modparam("auth", "nonce_expire", {self.nonce_expire})
modparam("auth", "algorithm", "{self.algorithm}")

event_route[htable:mod-init] {{
{fill}
}}

{self._front_routes(flags) if self.upstream else
 self._registrar_routes(flags, bad_reply, min_check, invite_auth, record_route)}
route[RELAY] {{
    if (!t_relay()) {{
        sl_reply_error();
    }}
    exit;
}}
"""

    def _front_routes(self, flags: int) -> str:
        """An outbound proxy with its own realm: 407 for a listed user's requests, then
        everything (credentials for the registrar's realm untouched) on to `upstream`."""
        return f"""request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (is_method("OPTIONS") && uri == myself && $rU == $null && !is_present_hf("Route")) {{
        sl_send_reply("200", "Keepalive");
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{
            route(RELAY);
        }}
        exit;
    }}
    if (has_totag()) {{
        if (loose_route()) {{
            route(RELAY);
        }}
        if (is_method("ACK")) {{
            if (t_check_trans()) {{
                route(RELAY);
            }}
            exit;
        }}
        sl_send_reply("404", "Not Here");
        exit;
    }}
    if (is_method("ACK")) {{
        if (t_check_trans()) {{
            route(RELAY);
        }}
        exit;
    }}
    t_check_trans();
    if ($sht(users=>$fU) != $null) {{
        if (!has_credentials("{self.realm}") || $sht(users=>$au) == $null) {{
            proxy_challenge("{self.realm}", "{flags}");
            exit;
        }}
        $var(rc) = pv_proxy_authenticate("{self.realm}", "$sht(users=>$au)", "0");
        if ($var(rc) < 0) {{
            xlog("L_NOTICE", "$rm for $fU from $si:$sp: proxy auth result $var(rc)\\n");
            proxy_challenge("{self.realm}", "{flags}");
            exit;
        }}
        consume_credentials();
    }}
    remove_hf("Route");
    if (is_method("INVITE|SUBSCRIBE")) {{
        record_route();
    }}
    $du = "sip:{self.upstream}";
    route(RELAY);
}}
"""

    def _registrar_routes(self, flags: int, bad_reply: str, min_check: str, invite_auth: str,
                          record_route: str) -> str:
        return f"""request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (!sanity_check("17895", "7")) {{
        xlog("L_WARN", "malformed request from $si:$sp\\n");
        exit;
    }}
    if (is_method("OPTIONS") && uri == myself && $rU == $null) {{
        sl_send_reply("200", "Keepalive");
        exit;
    }}
    if (has_totag()) {{
        route(WITHINDLG);
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{
            route(RELAY);
        }}
        exit;
    }}
    if (!is_method("ACK")) {{
        t_check_trans();
    }}
    remove_hf("Route");
    if (is_method("REGISTER")) {{
        route(REGISTRAR);
        exit;
    }}
    if ($rU == $null) {{
        sl_send_reply("484", "Address Incomplete");
        exit;
    }}
{invite_auth}
{record_route}
    route(LOCATION);
}}

route[WITHINDLG] {{
    if (loose_route()) {{
        route(RELAY);
        exit;
    }}
    if (is_method("ACK")) {{
        if (t_check_trans()) {{
            route(RELAY);
        }}
        exit;
    }}
    sl_send_reply("404", "Not Here");
}}

# Digest check of the request's credentials (Authorization for REGISTER, else
# Proxy-Authorization); challenges with 401/407 when absent, stale or for an unknown user.
route[AUTH] {{
    if ($au == $null || $sht(users=>$au) == $null) {{
        auth_challenge("{self.realm}", "{flags}");
        exit;
    }}
    $var(rc) = pv_auth_check("{self.realm}", "$sht(users=>$au)", "0", "1");
    if ($var(rc) < 0) {{
        xlog("L_NOTICE", "$rm for $tU from $si:$sp: auth result $var(rc)\\n");
        if ($var(rc) == -2) {{
            {bad_reply}
        }} else if ($var(rc) == -4) {{
            auth_challenge("{self.realm}", "{flags | 16}");
        }} else {{
            auth_challenge("{self.realm}", "{flags}");
        }}
        exit;
    }}
    consume_credentials();
}}

route[REGISTRAR] {{
    route(AUTH);
{min_check}
    if (!save("location")) {{
        sl_reply_error();
    }}
}}

route[LOCATION] {{
    $var(rc) = lookup("location");
    if ($var(rc) < 0) {{
        t_newtran();
        switch ($var(rc)) {{
            case -1:
            case -3:
                t_reply("404", "Not Found");
                exit;
            case -2:
                sl_send_reply("405", "Method Not Allowed");
                exit;
        }}
    }}
    route(RELAY);
}}
"""


def options_ping(host: str, port: int, timeout: float = 1.0) -> int:
    """Send one OPTIONS over UDP and return the status code of the first final response."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        sock.settimeout(timeout)
        local_port = sock.getsockname()[1]
        bracket = f"[{host}]" if ":" in host else host
        tag = uuid.uuid4().hex[:8]
        msg = (
            f"OPTIONS sip:{bracket}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {bracket}:{local_port};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@{bracket}>;tag={tag}\r\n"
            f"To: <sip:{bracket}:{port}>\r\n"
            f"Call-ID: {uuid.uuid4().hex}@{bracket}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        sock.sendto(msg.encode(), (host, port))
        end = time.monotonic() + timeout
        while True:
            sock.settimeout(max(0.01, end - time.monotonic()))
            try:
                data = sock.recv(65535)
            except TimeoutError:
                raise PeerError(f"no reply to OPTIONS from {bracket}:{port}") from None
            match = re.match(rb"SIP/2\.0 (\d{3}) ", data)
            if match and int(match.group(1)) >= 200:
                return int(match.group(1))
