"""Stand-in for the audit trail, which is being built on the ``audit`` branch and replaces this at merge.

Only the interface is here, so the CMDB services can already name every event they must record.
"""


def audit_record(
    *,
    actor,
    action: str,
    target=None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    from_state: str = "",
    to_state: str = "",
    reason: str = "",
    changes: dict | None = None,
) -> None:
    return None
