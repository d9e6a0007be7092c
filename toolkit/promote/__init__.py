"""``invoke promote``: release in one environment the AMI live in another (Heroku's ``pipelines:promote``).

``facts`` gathers both environments (reads only), ``plan`` decides (pure),
``transfer`` shares and copies the AMI, ``run`` carries it out and releases.
"""
