"""Local web page and JSON API (aiohttp + Jinja2), server-rendered, no JavaScript needed."""
