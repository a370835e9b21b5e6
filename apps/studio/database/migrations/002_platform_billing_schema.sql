-- 002: billing model for organizations. Plans are a small catalog, an
-- organization subscribes to one plan at a time, invoices record what was
-- charged, and usage collects metered consumption per project.
-- Amounts are integer minor units (cents) so no rounding ever happens in SQL.

CREATE TABLE platform.plans (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    slug             text        NOT NULL,
    name             text        NOT NULL,
    price_cents      integer     NOT NULL DEFAULT 0,
    currency         text        NOT NULL DEFAULT 'usd',
    billing_interval text        NOT NULL DEFAULT 'month',
    -- Quotas live in jsonb because they change with pricing, not with code.
    limits           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    is_public        boolean     NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT plans_slug_key UNIQUE (slug),
    CONSTRAINT plans_price_cents_check CHECK (price_cents >= 0),
    CONSTRAINT plans_currency_check CHECK (currency ~ '^[a-z]{3}$'),
    CONSTRAINT plans_billing_interval_check CHECK (billing_interval IN ('month', 'year'))
);

CREATE TABLE platform.subscriptions (
    id                   uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id      uuid        NOT NULL
        REFERENCES platform.organizations (id) ON DELETE CASCADE,
    -- RESTRICT: a plan that someone is paying for must not silently vanish.
    plan_id              uuid        NOT NULL
        REFERENCES platform.plans (id) ON DELETE RESTRICT,
    status               text        NOT NULL DEFAULT 'active',
    current_period_start timestamptz NOT NULL DEFAULT now(),
    current_period_end   timestamptz NOT NULL,
    canceled_at          timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT subscriptions_status_check
        CHECK (status IN ('trialing', 'active', 'past_due', 'canceled')),
    CONSTRAINT subscriptions_period_check CHECK (current_period_end > current_period_start)
);

-- Canceled subscriptions are kept as history; only one may be live per org.
CREATE UNIQUE INDEX subscriptions_live_organization_id_key
    ON platform.subscriptions (organization_id) WHERE status <> 'canceled';
CREATE INDEX subscriptions_plan_id_idx ON platform.subscriptions (plan_id);

CREATE TABLE platform.invoices (
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id   uuid        NOT NULL
        REFERENCES platform.organizations (id) ON DELETE CASCADE,
    -- SET NULL: invoices are financial records and outlive a subscription row.
    subscription_id   uuid
        REFERENCES platform.subscriptions (id) ON DELETE SET NULL,
    number            text        NOT NULL,
    status            text        NOT NULL DEFAULT 'draft',
    currency          text        NOT NULL DEFAULT 'usd',
    amount_due_cents  bigint      NOT NULL DEFAULT 0,
    amount_paid_cents bigint      NOT NULL DEFAULT 0,
    period_start      timestamptz NOT NULL,
    period_end        timestamptz NOT NULL,
    issued_at         timestamptz,
    paid_at           timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT invoices_number_key UNIQUE (number),
    CONSTRAINT invoices_status_check
        CHECK (status IN ('draft', 'open', 'paid', 'void', 'uncollectible')),
    CONSTRAINT invoices_amounts_check
        CHECK (amount_due_cents >= 0 AND amount_paid_cents BETWEEN 0 AND amount_due_cents),
    CONSTRAINT invoices_period_check CHECK (period_end > period_start)
);

CREATE INDEX invoices_organization_id_created_at_idx
    ON platform.invoices (organization_id, created_at DESC);
CREATE INDEX invoices_subscription_id_idx ON platform.invoices (subscription_id);

-- Usage is high-volume and append-mostly, hence a bigint identity key rather
-- than a uuid. One row per project, metric and period lets collectors upsert.
CREATE TABLE platform.usage (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id   uuid        NOT NULL
        REFERENCES platform.projects (id) ON DELETE CASCADE,
    metric       text        NOT NULL,
    period_start timestamptz NOT NULL,
    period_end   timestamptz NOT NULL,
    quantity     numeric     NOT NULL DEFAULT 0,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT usage_project_metric_period_key UNIQUE (project_id, metric, period_start),
    CONSTRAINT usage_metric_check CHECK (metric IN (
        'database_size_bytes', 'egress_bytes', 'storage_size_bytes',
        'monthly_active_users', 'function_invocations', 'realtime_messages')),
    CONSTRAINT usage_quantity_check CHECK (quantity >= 0),
    CONSTRAINT usage_period_check CHECK (period_end > period_start)
);

-- Enterprise is priced per contract, so its list price is 0 and it is not public.
INSERT INTO platform.plans (slug, name, price_cents, limits, is_public) VALUES
    ('free',       'Free',       0,     '{"projects": 2, "database_size_bytes": 524288000}', true),
    ('pro',        'Pro',        2500,  '{"projects": null, "database_size_bytes": 8589934592}', true),
    ('team',       'Team',       59900, '{"projects": null, "database_size_bytes": 8589934592}', true),
    ('enterprise', 'Enterprise', 0,     '{}', false);
