-- Placeholder so that 029_link_previews.sql applies on the previews branch
-- alone (tern wants no gaps). The lead deletes this file on merge: the
-- real 028 comes from another branch of issue 21 (uploads).
SELECT 1;
