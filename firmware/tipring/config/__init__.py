"""TipRing configuration: typed schema, validation, TOML file store with a last good copy.

Pure layer (stdlib only, no asyncio, sockets or threads). The runtime loads with
`ConfigStore(path).load()` and runs with `result.config` whatever the file holds; the web UI
validates with `validate`/`parse_config` and saves with `ConfigStore.save`.
"""

from .document import (
    END_MARKER,
    canonical_config,
    config_from_dict,
    config_to_dict,
    parse_config,
    parse_config_bytes,
    render_config,
    validate,
)
from .errors import ConfigError, FieldError
from .migrations import CURRENT_SCHEMA_VERSION, MIGRATIONS, migration
from .schema import (
    MAX_LINES,
    SUPPORTED_REGIONS,
    AccountConfig,
    Config,
    DeviceConfig,
    LineConfig,
    NetworkConfig,
    SipConfig,
    WebConfig,
    default_config,
)
from .secret import Secret
from .store import LAST_GOOD_SUFFIX, ConfigStore, LoadResult, check_file

__all__ = [
    "CURRENT_SCHEMA_VERSION",
    "END_MARKER",
    "LAST_GOOD_SUFFIX",
    "MAX_LINES",
    "MIGRATIONS",
    "SUPPORTED_REGIONS",
    "AccountConfig",
    "Config",
    "ConfigError",
    "ConfigStore",
    "DeviceConfig",
    "FieldError",
    "LineConfig",
    "LoadResult",
    "NetworkConfig",
    "Secret",
    "SipConfig",
    "WebConfig",
    "canonical_config",
    "check_file",
    "config_from_dict",
    "config_to_dict",
    "default_config",
    "migration",
    "parse_config",
    "parse_config_bytes",
    "render_config",
    "validate",
]
