"""spcreid: reproducibility workflow for unsupervised clothing-change person ReID (Sync-Person-Cloud)."""

__version__ = "0.1.0"
