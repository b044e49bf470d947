"""Choosing the broker: the rabbitmq extra is optional and its absence is explained."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import unused_port

from tests.support import run_healthmon

# Runs healthmon with aio_pika made unimportable, as on an install without the extra.
WITHOUT_AIO_PIKA = """
import sys
sys.modules["aio_pika"] = None
from healthmon.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_rabbitmq_without_the_extra_says_what_to_install(tmp_path: Path) -> None:
    """broker.kind = rabbitmq without aio-pika stops the start naming the extra to install."""
    config = tmp_path / "config.toml"
    config.write_text(f'[web]\nport = {unused_port()}\n[broker]\nkind = "rabbitmq"\n')
    result = run_healthmon("--config", str(config), code=WITHOUT_AIO_PIKA)
    assert result.returncode == 1
    assert "pip install 'healthmon[rabbitmq]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_split_roles_need_a_shared_broker(tmp_path: Path) -> None:
    """A ws process on the in-memory broker could never hear a monitor: refused, with why."""
    config = tmp_path / "config.toml"
    config.write_text(f"[web]\nport = {unused_port()}\n")
    result = run_healthmon("--config", str(config), "--role", "ws")
    # The flag and the file cannot be combined: a usage mistake, exit 2.
    assert result.returncode == 2
    assert 'set [broker] kind = "rabbitmq"' in result.stderr


def test_unreachable_rabbitmq_is_a_clear_error(tmp_path: Path) -> None:
    """A RabbitMQ that is not there stops the start within seconds, without the password."""
    port = unused_port()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[web]\nport = {unused_port()}\n[broker]\nkind = "rabbitmq"\n'
        f'url = "amqp://guest:hunter2@127.0.0.1:{port}/"\n'
    )
    result = run_healthmon("--config", str(config))
    assert result.returncode == 1
    assert f"cannot connect to RabbitMQ at amqp://guest:***@127.0.0.1:{port}/" in result.stderr
    assert "hunter2" not in result.stderr
    assert "Traceback" not in result.stderr
