-- The account-messages reactor's own view of where to reach each account, kept in the same
-- transaction as its checkpoint so that it never depends on another projection's progress.
CREATE TABLE message_recipients
(
    account_id uuid PRIMARY KEY,
    name       text NOT NULL,
    email      text NOT NULL,
    phone      text
);
