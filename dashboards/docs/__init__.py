"""Generated documentation: one page per dashboard and one runbook entry per alert, from the observables.

``placement`` says where each observable is drawn (dashboard and stable panel
id); ``runbooks`` renders the runbook page and the link and first lines every
alert carries; ``pages`` renders the dashboard pages. All of it is committed
and checked by ``--check`` like every other artifact.
"""
