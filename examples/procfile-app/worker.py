"""A background worker (the Procfile's worker process): says it is alive once a minute."""

import time

while True:
    print("worker: alive", flush=True)
    time.sleep(60)
