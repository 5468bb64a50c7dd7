"""Which findings a list's authors get by mail (pure): the list's mail policy.

Only a Finding can be mailed, and only one of a check the list mails:
checkpatch is page-only by default (a list may ask for its ERRORs), since a
reply full of style CHECKs buries the one build break that matters.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.core.results import Finding, Severity
from config.settings import MailPolicySettings

DEFAULT = MailPolicySettings()


def mailable(findings: Iterable[Finding], policy: MailPolicySettings = DEFAULT) -> list[Finding]:
    """The findings the policy lets reach an author's mail, in their order."""
    out = []
    for f in findings:
        if f.check in policy.checks or (
            f.check == "checkpatch" and policy.checkpatch_errors and f.severity == Severity.ERROR
        ):
            out.append(f)
    return out


def flooded(patches_with_findings: int, policy: MailPolicySettings = DEFAULT) -> bool:
    """Whether one summary replaces the patch mails (too many patches have findings)."""
    return patches_with_findings > policy.max_patch_mails
