-- Who may join a channel by themselves (joinChannel): 'open' (anyone
-- signed in) or 'invite' (only those an owner adds). NULL is the type's
-- default, which the chat product decides: livestream channels are open,
-- messaging channels by invitation.
ALTER TABLE channels ADD COLUMN IF NOT EXISTS join_policy text;
