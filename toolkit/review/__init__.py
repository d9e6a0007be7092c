"""Review apps: a short-lived copy of the app per branch or pull request, on its own host name (Heroku's review apps).

``invoke review.up`` bakes (or reuses) the release image at a ref and runs it
as an environment of its own behind the parent environment's load balancer:
a listener rule on the host ``<name>.<review.domain>``, its own target group,
an Auto Scaling group of one instance from a launch template of its own, and
the parent's config vars with its own overrides. ``review.down`` removes all
of it, ``review.list`` shows them, ``review.prune`` removes the idle ones.

- ``names``: pure: a review app's name from a ref, and the names of its resources.
- ``facts``: what exists in AWS for one review app (and which review apps exist).
- ``plan``: pure: what ``up`` and ``down`` do, given the facts; ``--plan`` prints it.
- ``steps``: the AWS calls that carry a plan out, each safe to repeat.
- ``record``: the review app's item in the app's table (ref, AMI, when made and last deployed).
- ``apps``: the commands: ``up``, ``down``, ``list_apps``, ``prune`` and their typed results.
"""
