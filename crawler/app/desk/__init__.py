"""The listener and the triage desk: one Starlette app (``app.build``) served by uvicorn
(``server``), inside the daemon's event loop or alone (``newswatch desk``).

``access`` says who may read /metrics and the feeds (the loopback rule, tokens); ``auth``
holds users, sessions, CSRF and the login limit; ``pages`` the desk's pages. docs/desk.md
explains the choices.
"""
