"""run notes and build plan

Notes (facts about a run, never mailed) and the build check's plan (variants
built and dropped) are kept beside the run instead of as findings.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as b:
        b.add_column(sa.Column("notes", sa.JSON(), nullable=False, server_default="[]"))
        b.add_column(sa.Column("plan", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("runs") as b:
        b.drop_column("plan")
        b.drop_column("notes")
