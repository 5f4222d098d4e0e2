"""The security officers' console (``/console/``): OIDC sign-in, three exclusive duties, pages
rendered on the server (Jinja2, no JavaScript), every page and action decided by accessgov's own engine."""
