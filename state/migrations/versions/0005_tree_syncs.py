"""tree syncs and cache usage: the age of each tree's last good sync, the cache's sizes

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tree_syncs",
        sa.Column("tree", sa.String(200), primary_key=True),
        sa.Column("last_try_at", sa.DateTime(), nullable=True),
        sa.Column("last_ok_at", sa.DateTime(), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=False, server_default="0"),
        sa.Column("error", sa.Text(), nullable=False, server_default=""),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("heads", sa.JSON(), nullable=False, server_default="{}"),
        sa.Column("changed_at", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "cache_usage",
        sa.Column("kind", sa.String(40), primary_key=True),
        sa.Column("bytes", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("entries", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("measured_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cache_usage")
    op.drop_table("tree_syncs")
