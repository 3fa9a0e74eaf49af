-- The mailspec database schema, version 1 (MariaDB 10.5+ / MySQL 8).
-- The first three tables are the classic virtual-mail how-to's; the others hold what the
-- language adds. Every row belongs to a served domain (domain_id), so removing a domain
-- removes its rows (ON DELETE CASCADE); rows of server-wide filters have no domain.
-- Values are stored exactly as Postfix and Dovecot look them up: lower-case addresses
-- and A-label domain names, compared byte for byte (utf8mb4_bin).

CREATE TABLE mailspec_schema (
  -- One row: the schema version. `mailspec apply` refuses a database of another version.
  version INT UNSIGNED NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO mailspec_schema (version) VALUES (1);

CREATE TABLE virtual_domains (
  -- Domains with mailboxes (Postfix virtual_mailbox_domains).
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(253) NOT NULL UNIQUE,
  message_size_limit BIGINT UNSIGNED NULL  -- bytes; the domain's `limits { message_size }`
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE virtual_users (
  -- Mailboxes: Dovecot's passdb and userdb, Postfix virtual_mailbox_maps.
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  domain_id INT UNSIGNED NOT NULL,
  email VARCHAR(320) NOT NULL UNIQUE,
  password VARCHAR(255) NULL,              -- {SCHEME}hash; NULL: nobody can log in
  quota BIGINT UNSIGNED NULL,              -- bytes; NULL: no quota
  send_only BOOLEAN NOT NULL DEFAULT FALSE, -- refuses inbound mail; no mail store lookups
  sieve_script VARCHAR(400) NULL,          -- per-mailbox script, relative to Dovecot's directory
  FOREIGN KEY (domain_id) REFERENCES virtual_domains (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE virtual_aliases (
  -- Postfix virtual_alias_maps, one row per target: aliases, mailbox aliases, forwards
  -- (a kept copy is a row to the mailbox itself), list members, catch-alls (`@domain`)
  -- and the names of domain aliases (`x@alias` -> `x@domain`).
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  domain_id INT UNSIGNED NOT NULL,
  source VARCHAR(320) NOT NULL,
  destination VARCHAR(320) NOT NULL,
  UNIQUE (source, destination),
  FOREIGN KEY (domain_id) REFERENCES virtual_domains (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE virtual_alias_domains (
  -- Domain aliases (Postfix virtual_alias_domains): other names of domain_id.
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  domain_id INT UNSIGNED NOT NULL,
  name VARCHAR(253) NOT NULL UNIQUE,
  FOREIGN KEY (domain_id) REFERENCES virtual_domains (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE sender_logins (
  -- Postfix smtpd_sender_login_maps: which logins may use `sender` (own addresses,
  -- mailbox aliases and send-as rights). domain_id is the login's domain.
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  domain_id INT UNSIGNED NOT NULL,
  sender VARCHAR(320) NOT NULL,
  login VARCHAR(320) NOT NULL,
  UNIQUE (sender, login),
  FOREIGN KEY (domain_id) REFERENCES virtual_domains (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE recipient_rules (
  -- Postfix check_recipient_access: send-only mailboxes and refused recipients.
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  domain_id INT UNSIGNED NULL,
  address VARCHAR(320) NOT NULL UNIQUE,    -- an address or a domain
  action VARCHAR(255) NOT NULL,
  FOREIGN KEY (domain_id) REFERENCES virtual_domains (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE sender_rules (
  -- Postfix check_sender_access: refused senders (server filters).
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  address VARCHAR(320) NOT NULL UNIQUE,    -- an address or a domain
  action VARCHAR(255) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE list_policies (
  -- Lists whose posting is restricted: list address -> smtpd restriction class
  -- (defined in main.cf), under the list's domain and each of its aliases.
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  domain_id INT UNSIGNED NOT NULL,
  address VARCHAR(320) NOT NULL UNIQUE,
  restriction_class VARCHAR(200) NOT NULL,
  FOREIGN KEY (domain_id) REFERENCES virtual_domains (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE list_senders (
  -- Who may post to a members-only or announcer list, and on what condition
  -- (OK, or permit_sasl_authenticated when the list requires auth).
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  domain_id INT UNSIGNED NOT NULL,
  restriction_class VARCHAR(200) NOT NULL,
  sender VARCHAR(320) NOT NULL,
  action VARCHAR(255) NOT NULL,
  UNIQUE (restriction_class, sender),
  FOREIGN KEY (domain_id) REFERENCES virtual_domains (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
