"""``teeprover serve all``: the supervisor that starts, watches and stops every service, and the first-start
set-up of the embedded default (development parameters, demo keys)."""
