"""The lab console: review with the gate and bead figures, the screening log, patient trends and
bead QC in a browser, plus a small JSON API (DESIGN.md, Additions). Served by ``mhladr serve``;
built with FastAPI, Jinja2 templates and uvicorn, server-rendered HTML without JavaScript."""
