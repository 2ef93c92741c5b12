"""`odqa serve`: an HTTP API and a web page in front of one loaded ``ODQAPipeline``.

``batching`` gathers questions that arrive together into one pipeline call, ``app`` is the FastAPI
application (``create_app(pipeline)`` works in a notebook or a test too), ``cli`` the command, and
``static/index.html`` the page (no build step, no CDN). Needs ``pip install "odqa[serve]"``.
"""
