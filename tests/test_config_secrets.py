"""Passwords never show up in repr, str, f-strings, logs, exceptions or error messages."""

from __future__ import annotations

import copy
import dataclasses
import logging
import pickle
from pathlib import Path

import pytest

from tipring.config import (
    AccountConfig,
    Config,
    ConfigError,
    ConfigStore,
    LineConfig,
    Secret,
    WebConfig,
    config_to_dict,
    parse_config,
)

PASSWORD = "hunter2-very-secret"
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"


def config_with_secrets() -> Config:
    return Config(
        accounts=(AccountConfig(id="sip1", user="100", domain="pbx.example",
                                password=Secret(PASSWORD)),),
        lines=(LineConfig(account="sip1"),),
        web=WebConfig(admin_password_hash=Secret(HASH)),
    )


def assert_clean(text: str) -> None:
    assert PASSWORD not in text
    assert HASH not in text
    assert "hunter2" not in text


def test_secret_hides_its_value_everywhere_but_reveal() -> None:
    secret = Secret(PASSWORD)
    percent = "%s %r" % (secret, secret)  # noqa: UP031 -- the style logging uses
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r}", f"{secret:>30}",
                  percent, str([secret]), str({"k": secret})):
        assert_clean(shown)
    assert "********" in repr(secret)
    assert secret.reveal() == PASSWORD
    assert secret.is_set and not Secret().is_set


def test_secret_is_immutable_has_no_dict_and_survives_copies() -> None:
    secret = Secret(PASSWORD)
    with pytest.raises(AttributeError):
        secret._value = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        vars(secret)
    for clone in (copy.copy(secret), copy.deepcopy(secret), pickle.loads(pickle.dumps(secret))):
        assert clone == secret and clone.reveal() == PASSWORD
    assert Secret("a") != Secret("b") and Secret("a") != "a"
    assert len({Secret("a"), Secret("a")}) == 1
    with pytest.raises(TypeError):
        Secret(1234)  # type: ignore[arg-type]


def test_config_repr_str_asdict_and_display_dict_contain_no_secret() -> None:
    config = config_with_secrets()
    assert_clean(repr(config))
    assert_clean(str(config))
    assert_clean(f"{config}")
    assert_clean(repr(dataclasses.asdict(config)))
    assert_clean(repr(config_to_dict(config)))
    assert config_to_dict(config, reveal_secrets=True)["accounts"][0]["password"] == PASSWORD


def test_logged_config_and_exceptions_contain_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    config = config_with_secrets()
    logger = logging.getLogger("tipring.test")
    with caplog.at_level(logging.DEBUG):
        logger.info("config: %s", config)
        logger.info("config: %r", config)
        logger.info(f"account: {config.accounts[0]}")
        try:
            raise RuntimeError(f"failed with {config.accounts[0].password}")
        except RuntimeError:
            logger.exception("boom")
    assert "config:" in caplog.text
    assert_clean(caplog.text)


def test_validation_errors_never_quote_secret_values() -> None:
    cases = [
        f'[[accounts]]\nid = "a"\nuser = "1"\ndomain = "x.example"\npassword = {1234567}\n',
        '[web]\nadmin_password_hash = ["hunter2"]\n',
        '[[accounts]]\nid = "a"\nuser = "1"\ndomain = "x.example"\npasswrd = "hunter2"\n',
    ]
    for text in cases:
        with pytest.raises(ConfigError) as caught:
            parse_config(text)
        assert_clean(str(caught.value))
        assert "1234567" not in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        parse_config(cases[0])
    assert str(caught.value) == "accounts[0].password: expected a string, got an integer"


def test_store_problems_and_logs_contain_no_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = ConfigStore(tmp_path / "config.toml")
    store.save(config_with_secrets())
    text = store.path.read_text()
    assert PASSWORD in text  # the file must hold it (0600, see the store tests)
    # Break the file in a way that puts the secret next to the error.
    store.path.write_text(text.replace('expires = 3600', 'expires = "soon"'))
    with caplog.at_level(logging.DEBUG, logger="tipring.config"):
        result = store.load()
    assert result.source == "last-good"
    assert_clean(caplog.text)
    assert_clean("\n".join(result.problems))
    assert_clean(repr(result))
    assert any("accounts[0].expires" in problem for problem in result.problems)
