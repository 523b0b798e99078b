"""Figures and printable reports (the only place the project draws; matplotlib Agg)."""
