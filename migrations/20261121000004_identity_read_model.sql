-- Identity (issue 3): verification, locks, two-factor, KYC and suspension in the accounts read model.
ALTER TABLE accounts
    ADD COLUMN mfa_enabled       boolean NOT NULL DEFAULT false,
    ADD COLUMN failed_logins     integer NOT NULL DEFAULT 0,
    ADD COLUMN locked_until      timestamptz,
    ADD COLUMN suspended_at      timestamptz,
    ADD COLUMN suspension_reason text,
    ADD COLUMN kyc_status        text    NOT NULL DEFAULT 'not_submitted',
    ADD COLUMN kyc_national_id   text,
    ADD COLUMN kyc_legal_name    text,
    ADD COLUMN kyc_country       text,
    ADD COLUMN kyc_submitted_at  timestamptz,
    ADD COLUMN kyc_reviewed_at   timestamptz,
    ADD COLUMN kyc_reviewer      uuid,
    ADD COLUMN kyc_reason        text;

-- Login by phone and OTP by SMS only consider verified numbers (unique through unique_claims).
CREATE INDEX accounts_verified_phone_idx ON accounts (phone) WHERE phone_verified;
CREATE INDEX accounts_kyc_pending_idx ON accounts (kyc_submitted_at) WHERE kyc_status = 'pending';
CREATE INDEX account_sessions_active_idx ON account_sessions (account_id) WHERE status = 'active';
