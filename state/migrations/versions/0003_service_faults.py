"""service faults: reply claims and retries, claim heartbeats, recorded faults

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("series") as b:
        b.add_column(sa.Column("heartbeat_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("replies") as b:
        b.add_column(
            sa.Column("claimed_by", sa.String(length=200), nullable=False, server_default="")
        )
        b.add_column(sa.Column("claimed_at", sa.DateTime(), nullable=True))
        b.add_column(sa.Column("heartbeat_at", sa.DateTime(), nullable=True))
        b.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        b.create_index("ix_replies_state", ["state"], unique=False)
    op.create_table(
        "faults",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("faults")
    with op.batch_alter_table("replies") as b:
        b.drop_index("ix_replies_state")
        b.drop_column("attempts")
        b.drop_column("heartbeat_at")
        b.drop_column("claimed_at")
        b.drop_column("claimed_by")
    with op.batch_alter_table("series") as b:
        b.drop_column("heartbeat_at")
