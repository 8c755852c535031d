"""`python -m rollout.convert`: print the migration table (docs/migration-table.md is its output)."""

from rollout.convert.mapping import migration_table_markdown

print(migration_table_markdown(), end="")
