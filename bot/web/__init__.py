"""The status web page and JSON API of `lorebot serve`."""

from bot.web.app import create_app

__all__ = ["create_app"]
