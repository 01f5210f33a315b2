"""The console: a web page served by the stack itself (docs/console.md).

`static/` holds the page and its ES modules (no build step); `assets.py`
answers `GET /` and `GET /console/{version}/{file}` for ConsoleFunction.
The page talks only to the public API, with the secret key the user signs
in with.
"""
