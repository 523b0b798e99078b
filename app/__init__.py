"""The front door: the ``mhladr`` command line (and the lab console), above the flows and the
pipeline. It parses what a person or a script asks, calls the flows or the pipeline, and
formats the answer; nothing below imports it."""
