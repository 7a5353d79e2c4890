"""The `tipring` command: run the firmware, check a configuration file, print the version."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import tipring

DEFAULT_CONFIG = Path(os.environ.get("TIPRING_CONFIG", "/data/tipring/config.toml"))


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1..65535, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tipring", description="TipRing: SIP analog telephone adapter firmware."
    )
    parser.add_argument("--version", action="version", version=f"TipRing {tipring.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the firmware")
    run.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG,
        help=f"configuration file (default: $TIPRING_CONFIG or {DEFAULT_CONFIG})",
    )
    run.add_argument(
        "--board", default="sim",
        help="board profile name from hw/boards, or a path to a profile .toml (default: sim)",
    )
    run.add_argument("--listen", help="web server address, overriding the configuration")
    run.add_argument("--port", type=_port, help="web server port, overriding the configuration")
    run.add_argument("--sip-host", default="0.0.0.0",
                     help="address SIP and RTP bind to (default: all)")
    run.add_argument("--sip-port", type=_port, default=5060, help="SIP port (default 5060)")
    run.add_argument(
        "--console", metavar="SERIAL",
        help="run the management console on this serial port (e.g. /dev/serial0)",
    )

    config = commands.add_parser("config", help="configuration tools")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = config_commands.add_parser("check", help="validate a configuration file")
    check.add_argument("path", type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        from tipring.runtime.app import Options, run
        from tipring.web.server import start_web

        options = Options(args.config, args.board, args.listen, args.port, args.sip_host,
                          args.sip_port)
        services = [start_web]
        if args.console:
            from tipring.console import console_service

            services.append(console_service(args.console))
        return run(options, services=services)
    if args.command == "config":
        from tipring.config import check_file

        problems = check_file(args.path)
        for problem in problems:
            print(problem, file=sys.stderr)
        if not problems:
            print(f"{args.path}: ok")
        return 1 if problems else 0
    return 2  # pragma: no cover - argparse requires a command


if __name__ == "__main__":
    sys.exit(main())
