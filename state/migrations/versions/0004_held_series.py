"""held series: when a series held for a fault of ours is retried

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("series") as b:
        b.add_column(sa.Column("retry_at", sa.DateTime(), nullable=True))
        b.add_column(sa.Column("holds", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("series") as b:
        b.drop_column("holds")
        b.drop_column("retry_at")
