-- Each payment's local day in its account's decision zone at the moment it was paid
-- (docs/payments.md; the day the file gave, for a date-only payment), written with the payment:
-- the reports count money by day in SQL, which knows no time zones. Rows stored before this
-- column get it when the store opens (dialer/store/outcomes.py, `fill_payment_days`).
ALTER TABLE payments ADD COLUMN paid_day TEXT;
UPDATE payments SET paid_day = paid_on WHERE paid_on IS NOT NULL;
CREATE INDEX payments_day ON payments (account_pk, paid_day, amount_minor);
CREATE INDEX payments_without_day ON payments (id) WHERE paid_day IS NULL;
-- The calls on which a borrower promised, with what the reports group them by: the promise report
-- reads them through this small index instead of the whole attempts table.
CREATE INDEX attempts_promised ON attempts (account_pk, campaign_id, step) WHERE outcome = 'promise_to_pay';
