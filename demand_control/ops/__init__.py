"""Ops and jobs with side effects (notify owners, write back to the ERP, tell customers) live here."""
