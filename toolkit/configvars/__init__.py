"""Config vars: an app's environment variables per environment, released like code.

Each key is one SSM parameter, ``/rodeo/<app>/<env>/<KEY>`` (``String``, or
``SecureString`` for a secret), whose own versions SSM keeps. A *config
version* N is an item of the app's DynamoDB table naming, for each key, the
parameter version it holds; a release pins an (AMI, config version) pair and
its instances load exactly those parameter versions at boot.

- ``versions``: pure: parsing and checking ``KEY=VALUE`` input, config versions, the diff a change makes.
- ``store``: SSM parameters and the config version records (the only AWS calls).
- ``pin``: what a release pins of the config: the checked config version and the user data naming it.

``invoke config.set/unset/list`` (check, record, release) is ``toolkit.configchange``: a config change is a
release, so it sits above ``toolkit.release``, which in turn reads config versions from here.
"""
