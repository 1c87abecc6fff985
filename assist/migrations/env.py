"""Alembic environment of the store: run programmatically by assist.feedback (`assist db upgrade`) on the
connection it is handed, SQLite or PostgreSQL."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
