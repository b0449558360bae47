"""The one small exception tree of netmon's core.

Edges translate these: ``OptionsError`` in mitmproxy, ``click.ClickException`` in the CLI and an error
page in the captive portal. Messages say what, where and how to fix, on one line.
"""


class NetmonError(Exception):
    """Base of every error netmon raises on purpose."""


class ConfigError(NetmonError):
    """A configuration, library or policy file is invalid.

    ``where`` is a location such as ``library/en/suicide.txt:12`` or ``policy/school.yaml: groups.year7``.
    """

    def __init__(self, where: str, message: str) -> None:
        self.where = where
        self.message = message
        super().__init__(f"{where}: {message}" if where else message)


class StoreError(NetmonError):
    """The incident store cannot be reached or written."""


class DeliveryError(NetmonError):
    """An alert or report could not be delivered (the outbox will retry)."""
