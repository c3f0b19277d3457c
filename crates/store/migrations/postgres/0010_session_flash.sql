-- A notice for the admin center's next page, set by the server after an action and shown
-- once: the banner never takes its text from a URL. Kept with the session, so it reaches the
-- next page whichever replica serves it.
ALTER TABLE sessions ADD COLUMN flash TEXT;
