"""mhladr pipeline: reading, settings, storage, rules, sinks, reports and the command line."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mhladr")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"
