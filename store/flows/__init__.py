"""Flows: each whole step a person takes, as one call that Slack and web handlers make.

A flow finds what it needs (asking `store.access` where an incident is involved), makes
every change of the step in the caller's transaction, and writes its own audit rows,
refusals included (the caller passes who is acting and from which address). Pages get
plain data back, with any text they show already decrypted: handlers and templates never
hold a `Cipher`. The small queries and rules flows are made of stay in the domain
modules (`store.actions`, `store.referrals`, `store.alerts`, ...).

- `incidents`: an incident's page, marking its alerts read, sharing it;
- `actions`: adding an action, with its alerts, re-categorisation and referral changes;
- `alerts`: Mark as read in Slack;
- `referrals`: the referrals board, snoozing a referral's nudges;
- `pupils`: the pupil search and a pupil's chronology;
- `reports`: the reports and their CSV downloads;
- `admin`: the audit log and resetting an authenticator;
- `signin`: signing in and out, one-time links, the second factor;
- `concerns`: filing a concern from the Slack modal.
"""
