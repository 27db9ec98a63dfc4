"""The web UI behind app.py: its background start-up (backend), chat handlers (chat), the
sources panel (sources), the library and uploads (library) and how it is served (serving).

Everything here but `chat` is plain Python that tests call without a browser.
"""
