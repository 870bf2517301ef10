-- The floor of any design: one statement, one transaction, one round trip.
SELECT 1;
