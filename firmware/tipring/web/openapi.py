"""The OpenAPI 3.1 description of /api/v1, served by the device itself.

Request bodies for configuration tables are described from the config schema's dataclasses
(type hints and defaults), so a field added to `tipring.config.schema` shows up here, typed,
without anyone editing this file: the API and its document cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Literal

import tipring
from tipring.config import AccountConfig, DeviceConfig, LineConfig, NetworkConfig, Secret
from tipring.config.schema import FeatureCodes

# Component name -> the config table its JSON body holds.
TABLES: dict[str, type] = {
    "Account": AccountConfig, "Line": LineConfig, "FeatureCodes": FeatureCodes,
    "Network": NetworkConfig, "Device": DeviceConfig,
}


def _type_schema(hint: Any) -> dict[str, Any]:
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is float:
        return {"type": "number"}
    if hint is Secret:
        return {"type": "string", "writeOnly": True,
                "description": "write-only; reads give {\"set\": true|false}"}
    origin = typing.get_origin(hint)
    if origin is Literal:
        values = list(typing.get_args(hint))
        return {"enum": values}
    if origin is tuple:
        return {"type": "array", "items": _type_schema(typing.get_args(hint)[0])}
    return {"type": "string"}


def table_schema(cls: type) -> dict[str, Any]:
    """A JSON Schema object for one config dataclass: every field, its type and default."""
    hints = typing.get_type_hints(cls)
    properties: dict[str, Any] = {}
    required = []
    for field in dataclasses.fields(cls):
        schema = _type_schema(hints[field.name])
        if field.default is not dataclasses.MISSING and not isinstance(field.default, Secret):
            default = field.default
            schema["default"] = list(default) if isinstance(default, tuple) else default
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            required.append(field.name)
        properties[field.name] = schema
    out: dict[str, Any] = {"type": "object", "properties": properties,
                           "additionalProperties": False}
    if required:
        out["required"] = required
    return out


def _op(summary: str, *, body: str | bool = False, ok: str = "200", public: bool = False,
        params: tuple[str, ...] = (), binary: str | None = None) -> dict[str, Any]:
    """One operation; `body` names a component schema (or True for a free-form object),
    `binary` a media type the request body is sent as."""
    out: dict[str, Any] = {
        "summary": summary,
        "responses": {ok: {"description": "done"},
                      "401": {"description": "no valid bearer token"},
                      **({"422": {"description": "invalid; one {field, reason} per problem"}}
                         if body or binary else {})},
    }
    if public:
        out["security"] = []
    if body:
        schema = ({"$ref": f"#/components/schemas/{body}"} if isinstance(body, str)
                  else {"type": "object"})
        out["requestBody"] = {"required": True,
                              "content": {"application/json": {"schema": schema}}}
    if binary:
        out["requestBody"] = {"required": True, "content": {binary: {
            "schema": {"type": "string", "contentMediaType": binary}}}}
    if params:
        out["parameters"] = [{"name": p, "in": "path", "required": True,
                              "schema": {"type": "string"}} for p in params]
    return out


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "TipRing ATA API", "version": tipring.__version__,
                 "description": "Configure and watch a TipRing analog telephone adapter."},
        "servers": [{"url": "/api/v1"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {name: table_schema(cls) for name, cls in TABLES.items()},
        },
        "security": [{"bearer": []}],
        "paths": _paths(),
    }


def _paths() -> dict[str, Any]:
    return {
        "/token": {"post": _op("Get a bearer token: {password, name?, expires_in? (s)}; the "
                               "token is in this reply only (the device keeps its SHA-256)",
                               body=True, public=True),
                   "delete": _op("Revoke this token", ok="204")},
        "/tokens": {"get": _op("API tokens: id, name, created, last_used, expires (Unix "
                               "seconds); never the tokens")},
        "/tokens/{id}": {"delete": _op("Revoke a token by id", ok="204", params=("id",))},
        "/status": {"get": _op("Lines (with registration in words and the current call "
                               "with live RTP statistics), board, configuration source "
                               "and system facts")},
        "/calls": {"get": _op("The call log, newest first (?limit=N): time (Unix seconds), "
                              "started (ISO 8601 in the device's time zone, with its "
                              "offset), line, direction, number, name, duration_s, outcome, "
                              "status, reason, codec, rtp")},
        "/config": {"get": _op("The configuration; secrets show only whether they are set")},
        "/logs": {"get": _op("Recent log lines")},
        "/accounts": {"get": _op("SIP accounts"),
                      "post": _op("Add a SIP account", body="Account")},
        "/accounts/{id}": {"get": _op("One SIP account", params=("id",)),
                           "put": _op("Change a SIP account (only the fields given)",
                                      body="Account", params=("id",)),
                           "delete": _op("Remove a SIP account", params=("id",))},
        "/lines/{index}": {"put": _op("Change a line (0-based; only the fields given), its "
                                      "calling features included", body="Line",
                                      params=("index",))},
        "/features": {"get": _op("The star codes"),
                      "put": _op("Change star codes (only the fields given; \"\" = off)",
                                 body="FeatureCodes")},
        "/network": {"put": _op("Change the network settings", body="Network")},
        "/device": {"put": _op("Change region, time zone, name, log level", body="Device")},
        "/phone/{line}/{action}": {"post": _op(
            "Virtual phone (sim board): lift, hangup, flash, dtmf, rotary; body "
            "{\"digits\": \"...\"} for dialling", params=("line", "action"))},
        "/password": {"post": _op("Change the admin password: {current, new}; revokes "
                                  "every token", body=True, ok="204")},
        "/config/export": {"get": _op("The configuration file (TOML); ?secrets=true to "
                                      "include passwords")},
        "/config/import": {"post": _op("Replace the configuration with a TOML file; "
                                       "validated before anything is written",
                                       binary="application/toml")},
        "/dialplan/test": {"post": _op("Test digits against a dial plan: {plan, digits, line}; "
                                       "without plan, the line's saved one (line 0 unless "
                                       "given), with the star codes", body=True)},
        "/reboot": {"post": _op("Reboot (through the image's backend)")},
        "/factory-reset": {"post": _op("Erase every setting: {password}", body=True)},
        "/firmware": {"post": _op("Install a RAUC bundle (the body is the .raucb file): "
                                  "checked, then handed to the installer; 202 with the state, "
                                  "413 over the size cap, 409 while another update runs",
                                  ok="202", binary="application/octet-stream"),
                      "get": _op("The firmware update's state: idle, receiving, installing, "
                                 "succeeded or failed, percent, step, message, output")},
        "/sip-trace": {"get": _op("The recent SIP messages as a pcap file "
                                  "(application/vnd.tcpdump.pcap); 409 when SIP is not running"),
                       "delete": _op("Clear the SIP trace", ok="204")},
        "/openapi.json": {"get": _op("This document")},
    }
