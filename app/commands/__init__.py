"""One module per ``mhladr`` sub-command; each defines ``register(subparsers)`` and imports what
its command needs only when the command runs."""
