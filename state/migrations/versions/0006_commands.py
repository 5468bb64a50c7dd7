"""commands by mail: `#lorebot` commands, muted senders, the items of each reply

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("replies") as b:
        b.add_column(sa.Column("items", sa.JSON(), nullable=False, server_default="[]"))
    op.create_table(
        "commands",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("msgid", sa.String(998), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("list_name", sa.String(200), nullable=False),
        sa.Column("in_reply_to", sa.String(998), nullable=False),
        sa.Column("series_id", sa.Integer(), sa.ForeignKey("series.id"), nullable=True),
        sa.Column("series_key", sa.String(400), nullable=False),
        sa.Column("sender", sa.String(320), nullable=False),
        sa.Column("sender_name", sa.Text(), nullable=False),
        sa.Column("command", sa.String(40), nullable=False),
        sa.Column("argument", sa.Text(), nullable=False),
        sa.Column("quote", sa.Text(), nullable=False),
        sa.Column("fingerprints", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("applied_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("msgid", "seq"),
    )
    op.create_index("ix_commands_in_reply_to", "commands", ["in_reply_to"])
    op.create_index("ix_commands_series_id", "commands", ["series_id"])
    op.create_index("ix_commands_series_key", "commands", ["series_key"])
    op.create_index("ix_commands_state", "commands", ["state"])
    op.create_table(
        "muted",
        sa.Column("address", sa.String(320), primary_key=True),
        sa.Column("command_msgid", sa.String(998), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("muted")
    op.drop_table("commands")
    with op.batch_alter_table("replies") as b:
        b.drop_column("items")
