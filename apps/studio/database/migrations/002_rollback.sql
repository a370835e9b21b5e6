-- Rollback of 002: drops the billing tables (and with them the seeded plans),
-- children before parents so no CASCADE is needed.
DROP TABLE platform.usage;
DROP TABLE platform.invoices;
DROP TABLE platform.subscriptions;
DROP TABLE platform.plans;
