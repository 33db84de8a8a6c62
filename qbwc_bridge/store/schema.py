"""The tables. SQLAlchemy Core, because every write is a guarded statement whose row count
matters and every read returns a domain dataclass, never a live ORM object."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Money = Numeric(14, 2)
Quantity = Numeric(18, 5)
Price = Numeric(18, 5)  # qbXML PRICETYPE: up to five decimals
Timestamp = DateTime(timezone=True)
Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite only autoincrements INTEGER

companies = Table(
    "companies",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("username", String(100), nullable=False, unique=True),
    Column("password_hash", String(300), nullable=False),
    Column("api_key_hash", String(300)),
    Column("settings", JSON, nullable=False, default=dict),
    Column("owner_id", String(38), nullable=False),
    Column("file_id", String(38), nullable=False),
    Column("qbxml_version", String(10)),
    Column("company_file", String(500)),
    # The company file this company is paired with (its first run, or `company pair`), and
    # the one the last run found open: FileID data extension, company name, path.
    Column("paired_file_id", String(38)),
    Column("paired_company_name", String(200)),
    Column("paired_file_path", String(500)),
    Column("paired_at", Timestamp),
    Column("seen_file_id", String(38)),
    Column("seen_company_name", String(200)),
    Column("web_connector_version", String(40)),
    # Adaptive pacing: QuickBooks' measured seconds per request (moving average).
    Column("seconds_per_request", Numeric(10, 4)),
    Column("inventory_due_at", Timestamp),
    Column("inventory_synced_from", Timestamp),
    Column("inventory_cursor", BigInteger, nullable=False, default=0),
    # The export of QuickBooks' transactions (revision 0008): exported_transactions'
    # cursor, when the next export is due, and where the last complete one started.
    Column("export_cursor", BigInteger, nullable=False, default=0),
    Column("export_due_at", Timestamp),
    Column("exported_from", Timestamp),
    Column("created_at", Timestamp, nullable=False),
)

login_failures = Table(
    "login_failures",
    metadata,
    # "user:<name>" or "addr:<ip>": throttled independently.
    Column("key", String(200), primary_key=True),
    Column("failures", Integer, nullable=False, default=0),
    Column("first_failure_at", Timestamp, nullable=False),
    Column("locked_until", Timestamp),
)

# The Web Connector's clientVersion comes before authenticate, with no login: kept by
# address, it is matched to the company that authenticates from there next.
client_versions = Table(
    "client_versions",
    metadata,
    Column("address", String(100), primary_key=True),
    Column("version", String(40), nullable=False),
    Column("seen_at", Timestamp, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("company_id", Id, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    # Only a hash of the ticket is kept: a leaked database does not hand out live runs.
    Column("ticket_hash", LargeBinary(32), nullable=False, unique=True),
    Column("status", String(20), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("last_seen_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("closed_at", Timestamp),
    Column("qbxml_version", String(10)),
    Column("country", String(4)),
    Column("company_file", String(500)),
    Column("web_connector_version", String(40)),
    Column("last_error", Text),
    Column("stage", String(20), nullable=False, default="negotiate"),
    Column("batch_size", Integer, nullable=False, default=0),
    Column("exchanges", Integer, nullable=False, default=0),
    Column("inventory_due", Boolean, nullable=False, default=False),
    Column("inventory_state", JSON),
    Column("summary", JSON),
    Column("export_due", Boolean, nullable=False, default=False),
    Column("export_state", JSON),
)
# At most one open run per company, enforced by the database itself.
Index(
    "uq_runs_one_open_per_company",
    runs.c.company_id,
    unique=True,
    postgresql_where=text("status = 'open'"),
    sqlite_where=text("status = 'open'"),
)

exchanges = Table(
    "exchanges",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_id", Id, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("request_xml", Text, nullable=False),
    # requestID -> what it was for: {"k": kind, "o": order id, "p": payment id, "n": name}
    Column("request_map", JSON, nullable=False),
    Column("sent_at", Timestamp, nullable=False),
    Column("response_xml", Text),
    Column("hresult", String(40)),
    Column("message", Text),
    Column("received_at", Timestamp),
    UniqueConstraint("run_id", "seq"),
)

orders = Table(
    "orders",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("company_id", Id, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("order_number", String(100), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("payload", Text, nullable=False),  # canonical JSON (intake.canonical_json)
    Column("status", String(20), nullable=False),
    Column("stage", String(20), nullable=False, default="check"),
    Column("txn_kind", String(20), nullable=False),
    Column("customer_name", String(100), nullable=False),
    Column("customer_list_id", String(40)),
    Column("invoice_customer", String(200)),
    Column("qb_txn_id", String(40)),
    Column("qb_ref_number", String(20)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("add_sent", Boolean, nullable=False, default=False),
    Column("error", Text),
    Column("error_code", Integer),
    # A person's answer to a RefNumber conflict (domain.orders.Resolution).
    Column("resolution", String(16)),
    Column("lease_run_id", Id),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    # Posting rules (revision 0009): an undo asked for (`unpost`); the transaction as the
    # bridge's add left it; the order's day (daily summaries); the daily summary it is in
    # (summaries.id); on a daily summary itself, its Memo.
    Column("unpost", Boolean, nullable=False, default=False),
    Column("qb_edit_sequence", String(40)),
    Column("qb_time_modified", String(40)),
    Column("order_date", Date),
    Column("summary_id", Id),
    Column("summary_memo", Text),
    UniqueConstraint("company_id", "order_number", name="uq_orders_company_order_number"),
)
Index("ix_orders_claim", orders.c.company_id, orders.c.status, orders.c.id)
# A run reads the orders it still works on, in id order, and counts them (revision 0004).
Index("ix_orders_lease", orders.c.lease_run_id, orders.c.status, orders.c.id)
# The export asks which of a page's transactions the bridge added (revision 0008).
Index("ix_orders_qb_txn_id", orders.c.company_id, orders.c.qb_txn_id)

payments = Table(
    "payments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", Id, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("reference_number", String(100), nullable=False, default=""),
    Column("amount", Money, nullable=False),
    Column("status", String(20), nullable=False),
    Column("stage", String(20), nullable=False, default="check"),
    Column("qb_txn_id", String(40)),
    Column("error", Text),
    Column("add_sent", Boolean, nullable=False, default=False),
    # As the bridge's ReceivePaymentAdd left it (revision 0009), for an undo.
    Column("qb_edit_sequence", String(40)),
    Column("qb_time_modified", String(40)),
    UniqueConstraint("order_id", "position"),
)

product_updates = Table(
    "product_updates",
    metadata,
    Column("company_id", Id, ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True),
    Column("sku", String(200), primary_key=True),
    Column("quantity_on_hand", Quantity),
    Column("quantity_on_order", Quantity),
    Column("quantity_on_sales_order", Quantity),
    Column("qb_list_id", String(40)),
    Column("qb_time_modified", String(40)),
    Column("updated_at", Timestamp, nullable=False),
    Column("cursor", BigInteger, nullable=False),
    # The item's details, where QuickBooks sent them: Name, SalesDesc, SalesPrice,
    # AverageCost, PurchaseCost (revision 0011).
    Column("name", String(100)),
    Column("description", Text),
    Column("sales_price", Price),
    Column("average_cost", Price),
    Column("purchase_cost", Price),
)
Index("ix_product_updates_cursor", product_updates.c.company_id, product_updates.c.cursor)

channels = Table(
    "channels",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("company_id", Id, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False, unique=True),
    Column("kind", String(20), nullable=False),
    Column("url", String(500), nullable=False),
    Column("username", String(200), nullable=False, default=""),
    # Sealed (sealing.py): the plain secret is never stored.
    Column("sealed_secret", Text, nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("every_minutes", Integer, nullable=False),
    Column("order_statuses", JSON, nullable=False),
    Column("store_names", JSON, nullable=False),
    # The sync timers (Connex's LastDownloadUtc / LastDownloadUtcEnd).
    Column("window_start", Timestamp, nullable=False),
    Column("window_end", Timestamp, nullable=False),
    Column("last_pull", JSON),
    # What it receives (webhook: event types) and how far it has received it: a
    # product_updates cursor (custom store) or an outbox event id (webhook).
    Column("events", JSON, nullable=False, default=list),
    Column("push_cursor", BigInteger, nullable=False, default=0),
    Column("last_delivery_at", Timestamp),
    Column("push_error", Text),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)
Index("ix_channels_company", channels.c.company_id)

# What the worker does for each channel, leased like a run: one holder at a time.
tasks = Table(
    "tasks",
    metadata,
    Column("channel_id", Id, ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(20), primary_key=True),
    Column("due_at", Timestamp, nullable=False),
    # Asked for now (the company's Web Connector logged in, `pull`): taken before due_at.
    Column("requested_at", Timestamp),
    Column("lease_token", String(64)),
    Column("lease_expires_at", Timestamp),
    Column("last_started_at", Timestamp),
    Column("last_finished_at", Timestamp),
)
Index("ix_tasks_due", tasks.c.due_at)

# Events for the channels, written in the same transaction as the change that causes them
# (an order's outcome, product_updates rows that changed), delivered later by the worker.
outbox_events = Table(
    "outbox_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("company_id", Id, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("order_id", Id),  # order_outcome: the order (its outcome is read at delivery)
    # Cursors (from, to]: of product_updates (stock_levels) or of exported_transactions
    # (quickbooks_transactions).
    Column("from_cursor", BigInteger),
    Column("to_cursor", BigInteger),
    Column("created_at", Timestamp, nullable=False),
)
Index("ix_outbox_events_company", outbox_events.c.company_id, outbox_events.c.id)

# The one delivery of a channel on its way: the same id and body on every attempt, until
# the receiver answers 2xx (then the channel's cursor moves to ``to_cursor``).
deliveries = Table(
    "deliveries",
    metadata,
    Column("channel_id", Id, ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True),
    Column("delivery_id", String(64), nullable=False),
    Column("event", String(40), nullable=False),
    Column("body", Text, nullable=False),
    Column("to_cursor", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("first_attempt_at", Timestamp),
    Column("next_attempt_at", Timestamp, nullable=False),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("created_at", Timestamp, nullable=False),
)

# QuickBooks' sales transactions read back out for the channels (revision 0008), one row
# per transaction: its JMAUser order (payload), a change cursor like product_updates'.
exported_transactions = Table(
    "exported_transactions",
    metadata,
    Column("company_id", Id, ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True),
    Column("qb_txn_id", String(40), primary_key=True),
    Column("txn_type", String(20), nullable=False),
    Column("qb_time_modified", String(40), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("cursor", BigInteger, nullable=False),
    Column("created_by_bridge", Boolean, nullable=False, default=False),
    Column("queued_order_number", String(100)),
    Column("updated_at", Timestamp, nullable=False),
)
Index(
    "ix_exported_transactions_cursor",
    exported_transactions.c.company_id,
    exported_transactions.c.cursor,
)


# --- posting rules (revision 0009) ------------------------------------------------------

# A company's mappings: a channel's name for something (kind) → QuickBooks' name for it.
posting_mappings = Table(
    "posting_mappings",
    metadata,
    Column("company_id", Id, ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(20), primary_key=True),
    Column("source_key", String(200), primary_key=True),  # domain.posting.source_key(source)
    Column("source", String(200), nullable=False),
    Column("target", String(200), nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)

# Items a run's check found QuickBooks lacks (create_missing_items), until one is added or
# found: a run adds each before the transaction that needs it, once.
missing_items = Table(
    "missing_items",
    metadata,
    Column("company_id", Id, ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True),
    Column("item_key", String(200), primary_key=True),  # domain.posting.item_key(name)
    Column("name", String(200), nullable=False),
    Column("noted_at", Timestamp, nullable=False),
)

# The daily summaries (posting = daily_summary): one per channel, day, kind and sequence
# (0, then supplementary ones), each posted as the order ``order_id`` (its RefNumber's
# order, summary-<ref>); its members carry its id in orders.summary_id.
summaries = Table(
    "summaries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("company_id", Id, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("channel", String(100), nullable=False),
    Column("day", Date, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("ref_number", String(11), nullable=False),
    Column("order_id", Id, nullable=False),
    Column("order_count", Integer, nullable=False),
    Column("total", Money, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    UniqueConstraint(
        "company_id", "channel", "day", "kind", "seq", name="uq_summaries_company_day"
    ),
)
Index("ix_orders_summary", orders.c.summary_id)


# --- the Connex-compatible REST API (revision 0010) --------------------------------------

# The channel (Connex's "user connection") an order came in through POST
# /api/orders/createorders: its UserConnectionId, a channels.id (kept when the channel goes).
orders.append_column(Column("user_connection_id", Id))
Index("ix_orders_connection", orders.c.company_id, orders.c.user_connection_id)

# A company's users of the REST API: a name that picks the company, a slow password hash,
# and how far its DatabaseDownload/List has taken exported_transactions (a cursor there).
api_users = Table(
    "api_users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("company_id", Id, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False, unique=True),
    Column("password_hash", String(300), nullable=False),
    Column("download_cursor", BigInteger, nullable=False, default=0),
    Column("created_at", Timestamp, nullable=False),
)
Index("ix_api_users_company", api_users.c.company_id)

# The bearer tokens a login hands out; only a hash (SHA-256) of each is kept, so a leaked
# database hands out no live token.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_hash", LargeBinary(32), primary_key=True),
    Column("api_user_id", Id, ForeignKey("api_users.id", ondelete="CASCADE"), nullable=False),
    Column("company_id", Id, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
)
Index("ix_api_tokens_user", api_tokens.c.api_user_id)
Index("ix_api_tokens_expires", api_tokens.c.expires_at)


# --- what the Connex-compatible lists read (revision 0011) --------------------------------

# What orders/list's searchText looks in, lower case, one per line: the order number, the
# customer as QuickBooks knows it, and the CustomerName the order was sent with (its first
# SENT_CUSTOMER_CHARS characters); store.orders.search_text writes it with the order.
SENT_CUSTOMER_CHARS = 200
SEARCH_TEXT_CHARS = 500
orders.append_column(Column("search_text", String(SEARCH_TEXT_CHARS)))
# orders/list: a company's orders newest day first, with every column its filters test (daily
# summaries left out, a date range, a connection, searchText), so a page, however deep, and
# the count of matching orders read this index alone.
Index(
    "ix_orders_list",
    orders.c.company_id,
    orders.c.order_date,
    orders.c.id,
    orders.c.summary_memo,
    orders.c.user_connection_id,
    orders.c.search_text,
)

# The SKUs of each order's lines (each once), by sku_key (store.inventory.sku_key: QuickBooks
# compares names without case), for products/list's unknownSkusCount: the SKUs of waiting
# orders without a product_updates row of that key. Written with the order.
SKU_KEY_CHARS = 500
order_skus = Table(
    "order_skus",
    metadata,
    Column("order_id", Id, ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True),
    Column("sku_key", String(SKU_KEY_CHARS), primary_key=True),
    Column("company_id", Id, nullable=False),
    Column("sku", Text, nullable=False),  # as the order's first line with the key spells it
)
Index("ix_order_skus_key", order_skus.c.company_id, order_skus.c.sku_key, order_skus.c.order_id)
product_updates.append_column(Column("sku_key", String(SKU_KEY_CHARS)))
Index("ix_product_updates_key", product_updates.c.company_id, product_updates.c.sku_key)


# --- the admin console (revision 0012) ----------------------------------------------------

# The operators who log in to /admin: a name and a slow password hash.
admin_users = Table(
    "admin_users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("password_hash", String(300), nullable=False),
    Column("created_at", Timestamp, nullable=False),
)

# The console's server-side sessions: only a hash (SHA-256) of each cookie's token is kept;
# the CSRF token every form of the session carries; logout deletes the row.
admin_sessions = Table(
    "admin_sessions",
    metadata,
    Column("token_hash", LargeBinary(32), primary_key=True),
    Column("admin_user_id", Id, ForeignKey("admin_users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
)
Index("ix_admin_sessions_user", admin_sessions.c.admin_user_id)
Index("ix_admin_sessions_expires", admin_sessions.c.expires_at)
# The console's pages of one company's orders, newest first, and its search by customer.
Index("ix_orders_company", orders.c.company_id, orders.c.id)
Index("ix_orders_customer", orders.c.company_id, orders.c.customer_name)


# --- the Connex lists' sorts and searches (revision 0013) ---------------------------------

# Each SKU key a company's orders have named, once, written with the order (in key order, so
# concurrent intakes take their locks in one order): products/list's unknownSkusCount reads
# these (about a thousand) instead of stepping through order_skus a key at a time.
sku_keys = Table(
    "sku_keys",
    metadata,
    Column("company_id", Id, ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True),
    Column("sku_key", String(SKU_KEY_CHARS), primary_key=True),
)

# How many orders each company's channels have queued (daily summaries are not counted):
# each intake adds a row, orders/list sums them (compacting them into one now and then)
# instead of counting 100 000 orders. Orders are never deleted but with their company.
order_tallies = Table(
    "order_tallies",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("company_id", Id, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("orders", BigInteger, nullable=False),
)
Index("ix_order_tallies_company", order_tallies.c.company_id)

# products/list sorted by any of its columns (domain.connex.PRODUCT_SORTS): an index each, so
# a page is read in order from one end or the other instead of sorting every row.
PRODUCT_SORT_COLUMNS = (
    "quantity_on_hand",
    "quantity_on_order",
    "quantity_on_sales_order",
    "sales_price",
    "average_cost",
    "purchase_cost",
    "updated_at",
)
for _name in PRODUCT_SORT_COLUMNS:
    Index(f"ix_product_updates_by_{_name}", product_updates.c.company_id, product_updates.c[_name])

# searchText on PostgreSQL: trigram indexes (the pg_trgm extension) find the rows that
# contain a text without reading every row. SQLite has none: its LIKE reads the narrow index.
POSTGRESQL_ONLY_INDEXES = frozenset({"ix_product_updates_sku_trgm", "ix_orders_search_trgm"})
Index(
    "ix_product_updates_sku_trgm",
    product_updates.c.sku_key,
    postgresql_using="gin",
    postgresql_ops={"sku_key": "gin_trgm_ops"},
).ddl_if(dialect="postgresql")
Index(
    "ix_orders_search_trgm",
    orders.c.search_text,
    postgresql_using="gin",
    postgresql_ops={"search_text": "gin_trgm_ops"},
).ddl_if(dialect="postgresql")
