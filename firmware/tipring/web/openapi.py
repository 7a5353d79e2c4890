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
from tipring.config.passwords import MAX_LENGTH, MIN_LENGTH
from tipring.config.schema import FeatureCodes, SshConfig

from .tokens import MAX_LIFETIME_S, MAX_NAME, MIN_LIFETIME_S

# Component name -> the config table its JSON body holds.
TABLES: dict[str, type] = {
    "Account": AccountConfig, "Line": LineConfig, "FeatureCodes": FeatureCodes,
    "Network": NetworkConfig, "Device": DeviceConfig, "Ssh": SshConfig,
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


JSON = "application/json"
ERROR = {"$ref": "#/components/schemas/Error"}
# Why each error status comes back, as the handlers and the access middleware send it.
ERRORS = {
    "400": "malformed: the body is not a JSON object, or a query parameter is unknown or its "
           "value not understood",
    "401": "no valid bearer token (or, where a password is sent, the wrong password)",
    "404": "no such thing (account, token, line, action)",
    "409": "not now: the state does not allow it (another update runs, SIP is off, ...)",
    "413": "the body is larger than the device accepts",
    "422": "invalid; one {field, reason} per problem",
    "429": "too many wrong passwords: wait retry_after_s seconds",
    "501": "not available on this board",
}


def _op(summary: str, *, body: str | bool = False, ok: str = "200", public: bool = False,
        params: tuple[str, ...] = (), binary: str | None = None, returns: str | None = JSON,
        errors: tuple[int, ...] = (), query: dict[str, Any] | None = None,
        result: dict[str, Any] | None = None) -> dict[str, Any]:
    """One operation; `body` names a component schema (or True for a free-form object),
    `binary` a media type the request body is sent as, `returns` the success reply's media
    type (None: no body) and `result` its JSON schema (an object unless given), `errors` the
    statuses beyond those every such operation can give."""
    codes = set(errors) | {400} | ({413, 422} if body or binary else set())
    if not public:
        codes.add(401)
    success: dict[str, Any] = {"description": "done"}
    if returns is not None:
        shape = result or {"type": "object"}
        success["content"] = {returns: {"schema": shape if returns == JSON
                                        else {"type": "string"}}}
    out: dict[str, Any] = {
        "summary": summary,
        "responses": {ok: success, **{str(code): {
            "description": ERRORS[str(code)],
            "content": {JSON: {"schema": ERROR}}} for code in sorted(codes)}},
    }
    if public:
        out["security"] = []
    if body:
        schema = ({"$ref": f"#/components/schemas/{body}"} if isinstance(body, str)
                  else {"type": "object"})
        out["requestBody"] = {"required": True, "content": {JSON: {"schema": schema}}}
    if binary:
        out["requestBody"] = {"required": True, "content": {binary: {
            "schema": {"type": "string", "contentMediaType": binary}}}}
    parameters = [{"name": name, "in": "query", "required": False, "schema": schema}
                  for name, schema in (query or {}).items()]
    if params:
        parameters += [{"name": p, "in": "path", "required": True,
                        "schema": ({"type": "integer", "minimum": 0}
                                   if p in ("index", "line") else {"type": "string"})}
                       for p in params]
    if parameters:
        out["parameters"] = parameters
    return out


def _optional_body(op: dict[str, Any], schema: str) -> dict[str, Any]:
    op["requestBody"] = {"required": False, "content": {JSON: {"schema": {
        "$ref": f"#/components/schemas/{schema}"}}}}
    return op


def _body_of(required: tuple[str, ...], **properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": list(required), "properties": properties}


TEXT = {"type": "string"}
# The small request bodies that are not config tables.
REQUESTS: dict[str, dict[str, Any]] = {
    "TokenRequest": _body_of(
        ("password",), password=TEXT,
        name={"type": "string", "maxLength": MAX_NAME,
              "description": "printable characters only"},
        expires_in={"type": "integer", "minimum": MIN_LIFETIME_S, "maximum": MAX_LIFETIME_S}),
    "PasswordChange": _body_of(
        ("current", "new"), current=TEXT,
        new={"type": "string", "minLength": MIN_LENGTH, "maxLength": MAX_LENGTH,
             "description": "at least 5 different characters, not a well-known password"}),
    "DialPlanTest": _body_of((), plan=TEXT, digits=TEXT,
                             line={"type": "integer", "minimum": 0}),
    "FactoryReset": _body_of(("password",), password=TEXT),
    "Keypad": _body_of((), digits={"type": "string", "maxLength": 32}),
}


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "errors": {"type": "array", "items": {
            "type": "object", "required": ["field", "reason"],
            "properties": {"field": {"type": "string"}, "reason": {"type": "string"}}}},
        "retry_after_s": {"type": "integer"},
    },
}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "TipRing ATA API", "version": tipring.__version__,
                 "description": "Configure and watch a TipRing analog telephone adapter."},
        "servers": [{"url": "/api/v1"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR_SCHEMA,
                        **{name: table_schema(cls) for name, cls in TABLES.items()},
                        **REQUESTS},
        },
        "security": [{"bearer": []}],
        "paths": _paths(),
    }


def query_parameters() -> dict[tuple[str, str], frozenset[str]]:
    """(method, path under /api/v1) -> the query parameters it takes; the API refuses others,
    so a mistyped one (`?secret=true`) is an error instead of being quietly ignored."""
    return {(method.upper(), path): frozenset(p["name"] for p in op.get("parameters", ())
                                              if p["in"] == "query")
            for path, item in _paths().items() for method, op in item.items()}


def _paths() -> dict[str, Any]:
    return {
        "/token": {"post": _op("Get a bearer token: {password, name?, expires_in? (s)}; the "
                               "token is in this reply only (the device keeps its SHA-256)",
                               body="TokenRequest", public=True, errors=(401, 429)),
                   "delete": _op("Revoke this token", ok="204", returns=None)},
        "/tokens": {"get": _op("API tokens: id, name, created, last_used, expires (Unix "
                               "seconds); never the tokens")},
        "/tokens/{id}": {"delete": _op("Revoke a token by id", ok="204", params=("id",),
                                       returns=None, errors=(404,))},
        "/status": {"get": _op("Lines (with registration in words and the current call "
                               "with live RTP statistics), board, configuration source "
                               "and system facts")},
        "/calls": {"get": _op("The call log, newest first (?limit=N): time (Unix seconds), "
                              "started (ISO 8601 in the device's time zone, with its "
                              "offset), line, direction, number, name, duration_s, outcome, "
                              "status, reason, codec, rtp", errors=(400,),
                              query={"limit": {"type": "integer", "minimum": 0}})},
        "/config": {"get": _op("The configuration; secrets show only whether they are set")},
        "/logs": {"get": _op("Recent log lines")},
        "/accounts": {"get": _op("SIP accounts", result={"type": "array",
                                                          "items": {"type": "object"}}),
                      "post": _op("Add a SIP account", body="Account")},
        "/accounts/{id}": {"get": _op("One SIP account", params=("id",), errors=(404,)),
                           "put": _op("Change a SIP account (only the fields given)",
                                      body="Account", params=("id",), errors=(404,)),
                           "delete": _op("Remove a SIP account", params=("id",),
                                         errors=(404, 422))},
        "/lines/{index}": {"put": _op("Change a line (0-based; only the fields given), its "
                                      "calling features included", body="Line",
                                      params=("index",), errors=(404,))},
        "/features": {"get": _op("The star codes"),
                      "put": _op("Change star codes (only the fields given; \"\" = off)",
                                 body="FeatureCodes")},
        "/network": {"put": _op("Change the network settings", body="Network")},
        "/device": {"put": _op("Change region, time zone, name, log level", body="Device")},
        "/ssh": {"get": _op("SSH access: enabled, authorized_keys, each key's type, bits, "
                            "comment and fingerprint (SHA256:..., as ssh-keygen -l), and "
                            "status {on, detail}: whether the SSH server runs now"),
                 "put": _op("Switch SSH on or off and set the public keys it takes (only the "
                            "fields given); on needs at least one key (no password logins)",
                            body="Ssh")},
        "/phone/{line}/{action}": {"post": _optional_body(_op(
            "Virtual phone (sim board): lift, hangup, flash, dtmf, rotary; body "
            "{\"digits\": \"...\"} for dialling", params=("line", "action"),
            errors=(400, 404, 409, 413)), "Keypad")},
        "/password": {"post": _op("Change the admin password: {current, new}; revokes "
                                  "every token", body="PasswordChange", ok="204", returns=None,
                                  errors=(401, 429))},
        "/config/export": {"get": _op("The configuration file (TOML); ?secrets=true to "
                                      "include passwords", returns="application/toml", errors=(400,),
                                      query={"secrets": {"type": "string",
                                                         "enum": ["true", "false"]}})},
        "/config/import": {"post": _op("Replace the configuration with a TOML file; "
                                       "validated before anything is written",
                                       binary="application/toml")},
        "/dialplan/test": {"post": _op("Test digits against a dial plan: {plan, digits, line}; "
                                       "without plan, the line's saved one (line 0 unless "
                                       "given), with the star codes", body="DialPlanTest",
                                       errors=(404,))},
        "/reboot": {"post": _op("Reboot (through the image's backend)", errors=(501,))},
        "/factory-reset": {"post": _op("Erase every setting: {password}", body="FactoryReset",
                                         errors=(401, 429, 501))},
        "/firmware": {"post": _op("Install a RAUC bundle (the body is the .raucb file): "
                                  "checked, then handed to the installer; 202 with the state, "
                                  "413 over the size cap, 409 while another update runs",
                                  ok="202", binary="application/octet-stream",
                                  errors=(400, 409)),
                      "get": _op("The firmware update's state: idle, receiving, installing, "
                                 "succeeded or failed, percent, step, message, output")},
        "/sip-trace": {"get": _op("The recent SIP messages as a pcap file "
                                  "(application/vnd.tcpdump.pcap); 409 when SIP is not running",
                                  returns="application/vnd.tcpdump.pcap", errors=(409,)),
                       "delete": _op("Clear the SIP trace", ok="204", returns=None,
                                     errors=(409,))},
        "/openapi.json": {"get": _op("This document")},
    }
