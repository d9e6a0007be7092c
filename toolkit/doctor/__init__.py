"""``invoke doctor``: a read-only preflight of an environment's account.

``facts.gather`` reads the account (Describe*, Get*, List* and the IAM policy
simulator; never a write), ``checks`` turns those facts into one line per
check, and ``run.doctor`` ties them together into a ``DoctorResult``.
"""

# Every AWS action doctor calls: `invoke iam-policy --for doctor`.
from toolkit.iam import DOCTOR_ACTIONS as ACTIONS

__all__ = ["ACTIONS"]
