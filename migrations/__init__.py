"""Alembic migrations for Vigil's schema (run with `vigil db upgrade`)."""
