"""Streamlit widgets and rendering shared by the pages (pages -> components -> core).

Every page, Home included, imports this package before any other code of the app's, so the
process's start-up settings are applied here, once per server process: glibc's malloc arenas
and torch's thread count from the container's real limits (``core.startup``; no torch import).
"""

from core import startup as _startup

_startup.apply()
