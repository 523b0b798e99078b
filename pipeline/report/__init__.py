"""Figures and printable reports: the only place the project draws (SVG for reports and the
console; PNG through matplotlib only when a command is asked for a ``--figure``)."""
