"""De-identified chart reports and BI extracts of the KPI marts, published only when every checkpoint passed."""

from reports.publish import PublishAuditFailed, PublishError, PublishRefused, PublishResult, publish

__all__ = ["PublishAuditFailed", "PublishError", "PublishRefused", "PublishResult", "publish"]
