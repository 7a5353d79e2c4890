"""Record the config file's shape and a full example file for the current schema version.

    .venv/bin/python tests/record_config_schema.py [--replace]

writes tests/data/config_schema/N.json (`schema_shape()`) and N.toml (`example_config()` as
`render_config` writes it), N = CURRENT_SCHEMA_VERSION. test_config_shape.py checks the firmware
against the first and loads every N.toml, so files from each schema keep loading after the
next one. An existing recording is never overwritten unless asked (`--replace`), and that is
only for a schema no release has shipped yet: a released one is what its files are.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tipring.config import (
    AccountConfig,
    Config,
    DeviceConfig,
    LineConfig,
    NetworkConfig,
    Secret,
    SipConfig,
    WebConfig,
    render_config,
)
from tipring.config.migrations import CURRENT_SCHEMA_VERSION
from tipring.config.schema import FeatureCodes, SshConfig
from tipring.config.shape import schema_shape

RECORDS = Path(__file__).resolve().parent / "data" / "config_schema"

# Public test material only: a CA certificate and an SSH public key made for this file; the
# password hash is of a phrase that is used nowhere else.
EXAMPLE_CA = """\
-----BEGIN CERTIFICATE-----
MIIBnTCCAUOgAwIBAgIUcQBtGvN+4kkMdEWGfGSPuarLUhwwCgYIKoZIzj0EAwIw
IzEhMB8GA1UEAwwYRXhhbXBsZSBQcm92aWRlciBUZXN0IENBMCAXDTI2MTEyMTEz
MjI1M1oYDzIxMjYxMDI4MTMyMjUzWjAjMSEwHwYDVQQDDBhFeGFtcGxlIFByb3Zp
ZGVyIFRlc3QgQ0EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASWGto7zFW3KAK7
V0UT6n3OkUVkFqZWV3HRFyIVcG1Vk3rPgiHMsWJdDyypf3EzBxcMjw0QZCQfGLqs
1vjYXgLjo1MwUTAdBgNVHQ4EFgQUyllkntVf+a3VcYZCjKzoWeAl65UwHwYDVR0j
BBgwFoAUyllkntVf+a3VcYZCjKzoWeAl65UwDwYDVR0TAQH/BAUwAwEB/zAKBggq
hkjOPQQDAgNIADBFAiEAuaUA/grqDzQcsd0jYoDCVCCEWe22OQj3gUmL5+D8F4wC
IBQ/++4kwdzEd+hNlS1RTLbVLIagxAtw9sGLEj/TMOVj
-----END CERTIFICATE-----
"""
EXAMPLE_SSH_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPTUoZhMQx0jlQBjnj15lXzVrVOrAhukgf26c2rYbD"
                   "mc admin@example")
EXAMPLE_ADMIN_HASH = ("scrypt$16384$8$1$MI6LbgcUk5Crg6Af4Z6e4g==$"
                      "3KuprmeCWJW87HlU+5QIphdEAOF0CYcyR9Gy7zwMRvU=")


def example_config() -> Config:
    """Every section, two lines, two accounts, and values other than the defaults where that
    costs one word, so a migration or a stricter check that breaks an old file shows."""
    return Config(
        device=DeviceConfig(name="hall-ata", region="GB", timezone="Europe/London",
                            log_level="debug"),
        lines=(
            LineConfig(account="provider", fallback_account="office", ring_frequency_hz=25,
                       tx_gain_db=-3.0, rx_gain_db=1.5, flash_min_ms=90, flash_max_ms=600,
                       caller_id="etsi-fsk", message_lamp="sdmf", message_lamp_alert="rp-as",
                       dial_tone="f1=350@-13,f2=440@-13,c=0/0;", ring_cadence="400/200,400/2000",
                       forward_busy="+441632960123", no_answer_s=25, do_not_disturb=True),
            LineConfig(enabled=False, account="office", call_waiting=False, direct_ip=True,
                       hide_caller_id=True, anonymous_rejection=True,
                       forward_no_answer="sip:desk@pbx.example.net", dial_plan="(x.)"),
        ),
        accounts=(
            AccountConfig(id="provider", display_name="Hall", user="+441632960000",
                          auth_user="441632960000", password=Secret("example-password"),
                          domain="sip.example.net", registrar="reg.example.net:5061",
                          transport="tls", outbound_proxy="edge.example.net", expires=600,
                          srtp="mandatory", dtmf="info", codecs=("PCMA",), keepalive_s=15,
                          message_waiting="unsolicited", outbound=True, voicemail="*97"),
            AccountConfig(id="office", user="201", domain="192.168.1.5", transport="tcp",
                          allow_sip_from="any", message_waiting="off", keepalive_s=0),
        ),
        features=FeatureCodes(redial="*60", voice_menu="", call_return="#69"),
        sip=SipConfig(tls_ca=EXAMPLE_CA),
        network=NetworkConfig(mode="static", address="192.168.1.20/24", gateway="192.168.1.1",
                              dns=("192.168.1.1", "2001:db8::53"), ntp_servers=("ntp.example",),
                              vlan=20),
        web=WebConfig(listen="0.0.0.0", port=443, https=True, redirect_port=80,
                      admin_password_hash=Secret(EXAMPLE_ADMIN_HASH)),
        ssh=SshConfig(enabled=True, authorized_keys=(EXAMPLE_SSH_KEY,)),
    )


def shape_document(version: int) -> str:
    """The N.json text: deterministic (sorted keys), pretty-printed, with a word for readers."""
    document = {
        "about": f"The shape of config.toml in schema {version}, recorded by "
                 "tests/record_config_schema.py. Never edit it once a release has shipped "
                 "this schema: change the schema version instead (see migrations.py).",
        "schema_version": version,
        "keys": schema_shape(),
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def record(directory: Path, *, replace: bool = False) -> list[str]:
    """Write N.json and N.toml for the current schema into `directory`; what was done, a line
    per file. Raises FileExistsError rather than overwrite a different recording unasked."""
    version = CURRENT_SCHEMA_VERSION
    wanted = {directory / f"{version}.json": shape_document(version),
              directory / f"{version}.toml": render_config(example_config())}
    clashes = [path for path, text in wanted.items()
               if path.exists() and path.read_text(encoding="utf-8") != text]
    if clashes and not replace:
        raise FileExistsError(
            f"schema {version} is recorded already, differently ({', '.join(map(str, clashes))}). "
            "If its shape changed, bump CURRENT_SCHEMA_VERSION and register a migration instead; "
            "--replace is only for a schema that no release has shipped.")
    done = []
    directory.mkdir(parents=True, exist_ok=True)
    for path, text in wanted.items():
        if path.exists() and path.read_text(encoding="utf-8") == text:
            done.append(f"{path}: unchanged")
        else:
            path.write_text(text, encoding="utf-8")
            done.append(f"{path}: written")
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--replace", action="store_true",
                        help="overwrite a different recording of the current schema "
                             "(only before any release ships it)")
    parser.add_argument("--dir", type=Path, default=RECORDS, help=f"default: {RECORDS}")
    args = parser.parse_args(argv)
    try:
        done = record(args.dir, replace=args.replace)
    except FileExistsError as error:
        print(f"record_config_schema: {error}", file=sys.stderr)
        return 1
    print("\n".join(done))
    return 0


if __name__ == "__main__":
    sys.exit(main())
